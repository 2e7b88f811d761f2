"""Pacing decisions on constructed snapshots (exact where the rule is exact, bounds otherwise)."""

from __future__ import annotations

import itertools
import random

import pytest

from dialer.pacing import (
    AbandonCounts,
    AmdGovernor,
    AmdMode,
    AmdState,
    DialMode,
    OutcomeEstimator,
    PacingModel,
    PacingSnapshot,
    PredictivePacer,
    decide,
    ivr,
    preview,
    progressive,
)

H = 30


def trained_model(reach: float = 0.4, live: float = 0.7, n: int = 3000) -> PacingModel:
    """A model measured from synthetic outcomes (the pacer never sees a scenario's truth)."""
    rng = random.Random(7)
    est = OutcomeEstimator(H)
    for _ in range(n):
        ok = rng.random() < reach
        est.record_attempt(reached_queue=ok, reach_delay_s=rng.lognormvariate(2.4, 0.4))
        est.record_connection(live=rng.random() < live, machine_handle_s=5.0)
    for _ in range(1500):
        est.record_agent_cycle(rng.lognormvariate(4.97, 0.6), rng.lognormvariate(3.3, 0.45))
    return est.model()


MODEL = trained_model()


def snap(**kw: object) -> PacingSnapshot:
    base: dict[str, object] = {
        "agents_free": 2,
        "wrap_elapsed_s": [5.0, 20.0, 28.0, 40.0],
        "talk_elapsed_s": [10.0, 60.0, 100.0, 150.0, 170.0, 200.0, 240.0, 300.0, 30.0, 90.0],
        "inflight_elapsed_s": [1.0, 3.0, 8.0],
        "queued": 0,
        "model": MODEL,
        "abandons": AbandonCounts(10, 1000, 3, 200, 0.03),
    }
    base.update(kw)
    return PacingSnapshot(**base)  # type: ignore[arg-type]


def test_progressive_one_call_per_free_agent_minus_lines_in_use() -> None:
    s = snap(agents_free=5, inflight_elapsed_s=[1.0, 2.0], queued=1)
    assert progressive(s).calls == 2
    assert progressive(snap(agents_free=1, inflight_elapsed_s=[1.0, 2.0])).calls == 0


def test_preview_dials_only_on_request() -> None:
    assert preview(snap(preview_requests=3)).calls == 3
    assert preview(snap(preview_requests=0)).calls == 0


def test_ivr_respects_concurrency_cap() -> None:
    s = snap(concurrency_cap=10, ivr_active=4, inflight_elapsed_s=[1.0, 2.0, 3.0])
    assert ivr(s).calls == 3
    assert ivr(snap(concurrency_cap=3, ivr_active=4)).calls == 0
    assert decide(DialMode.IVR, s).calls == 3


def test_decide_dispatches_by_mode() -> None:
    s = snap(agents_free=4, inflight_elapsed_s=[], preview_requests=1)
    assert decide(DialMode.PREVIEW, s).calls == 1
    assert decide(DialMode.PROGRESSIVE, s).calls == 4
    assert decide(DialMode.PREDICTIVE, s).calls >= 4


def test_predictive_never_below_progressive_and_within_supply_bound() -> None:
    pacer = PredictivePacer()
    for free in range(0, 8):
        s = snap(agents_free=free, abandons=AbandonCounts(0, 500, 0, 100, 0.03))
        d = pacer.decide(s)
        assert d.calls >= progressive(s).calls
        # expected calls needing an agent never exceed free + expected-free agents (+ margin)
        assert d.expected_reach <= d.expected_supply + pacer.config.supply_margin + 1e-9
        assert d.expected_supply >= free
        assert "predictive" in d.reason


def test_predictive_dials_ahead_when_budget_is_unspent() -> None:
    s = snap(agents_free=3, inflight_elapsed_s=[], abandons=AbandonCounts(0, 1000, 0, 200, 0.03))
    d = PredictivePacer().decide(s)
    assert d.calls > 3  # more calls than free agents: answer rate is ~40 %
    assert "allowed" in d.reason


def test_predictive_brakes_as_window_rate_nears_the_cap() -> None:
    calm = AbandonCounts(5, 1000, 1, 200, 0.03)
    warm = AbandonCounts(28, 1000, 6, 200, 0.03)  # 2.8 %: over the 2.55 % target
    hot = AbandonCounts(30, 1000, 6, 200, 0.03)  # 3.0 %: at the cap
    hot_hour = AbandonCounts(20, 1000, 13, 200, 0.03)  # 6.5 % in the last hour
    free = 3
    n_calm = PredictivePacer().decide(snap(agents_free=free, abandons=calm)).calls
    n_warm = PredictivePacer().decide(snap(agents_free=free, abandons=warm)).calls
    n_hot = PredictivePacer().decide(snap(agents_free=free, abandons=hot)).calls
    n_hour = PredictivePacer().decide(snap(agents_free=free, abandons=hot_hour)).calls
    floor = progressive(snap(agents_free=free)).calls
    assert n_calm > n_warm >= floor
    assert n_hot == floor
    assert n_hour == floor


def test_predictive_warm_up_is_progressive() -> None:
    est = OutcomeEstimator(H)
    s = snap(agents_free=4, inflight_elapsed_s=[], model=est.model())
    d = PredictivePacer().decide(s)
    assert d.calls == 4
    assert "warm-up" in d.reason


def test_small_team_all_busy_dials_little() -> None:
    # 5 agents, all early in long calls: nobody free within the horizon, so no call
    s = snap(
        agents_free=0,
        wrap_elapsed_s=[],
        talk_elapsed_s=[20.0, 40.0, 60.0, 35.0, 50.0],
        inflight_elapsed_s=[],
        abandons=AbandonCounts(1, 200, 0, 70, 0.03),
    )
    d = PredictivePacer().decide(s)
    assert d.calls <= 1
    assert d.expected_reach <= d.expected_supply + 1.0


def test_predictive_more_wrap_ending_means_more_calls() -> None:
    early = snap(agents_free=1, wrap_elapsed_s=[1.0, 2.0, 3.0], inflight_elapsed_s=[])
    late = snap(agents_free=1, wrap_elapsed_s=[40.0, 45.0, 50.0], inflight_elapsed_s=[])
    assert PredictivePacer().decide(late).calls >= PredictivePacer().decide(early).calls


def test_estimator_learns_rates_and_conditional_tables() -> None:
    m = MODEL
    assert m.reach_rate == pytest.approx(0.4, abs=0.03)
    assert m.live_fraction == pytest.approx(0.7, abs=0.03)
    for row in (m.talk_row(50), m.wrap_row(10), m.inflight_reach(5)):
        assert len(row) == H + 1
        assert all(a <= b + 1e-12 for a, b in itertools.pairwise(row))
        assert 0.0 <= row[0] and row[-1] <= 1.0
    # a wrap-up that has lasted long is more likely to end soon than one just begun
    assert m.wrap_row(40)[10] > m.wrap_row(0)[10]


def test_amd_governor_turns_amd_off_when_false_positives_break_the_budget() -> None:
    gov = AmdGovernor(AmdMode.AUTO, 0.03)
    assert gov.state is AmdState.TRIAL and gov.verify_probability() == 1.0
    rng = random.Random(1)
    for _ in range(400):
        gov.record_verified(verdict_machine=rng.random() < 0.10, live=True, verify_probability=1.0)
    assert gov.state is AmdState.OFF
    assert not gov.analysing
    assert "AMD off" in gov.reason


def test_amd_governor_keeps_accurate_amd_on() -> None:
    gov = AmdGovernor(AmdMode.AUTO, 0.03)
    for i in range(2000):
        gov.record_verified(verdict_machine=i % 500 == 0, live=True, verify_probability=1.0)
    assert gov.state is AmdState.ON
    assert 0.0 < gov.verify_probability() < 1.0


def test_amd_fixed_modes() -> None:
    assert AmdGovernor(AmdMode.ON, 0.03).analysing
    assert AmdGovernor(AmdMode.ON, 0.03).verify_probability() == 0.0
    assert not AmdGovernor(AmdMode.OFF, 0.03).analysing


def test_a_change_in_the_list_restarts_a_low_calibration() -> None:
    """The observed / predicted abandons ratio is learned on one list; when the estimator
    detects a change point (``model.changes`` grows) a ratio below the prior starts over from
    the prior (on a 0.05 -> 0.35 jump the old x0.22 let the pacer drop a call in six for a
    quarter of an hour), and a ratio above it is kept: a false alarm never makes it bolder."""
    import dataclasses

    start = PredictivePacer().config.calibration_start
    shifted = dataclasses.replace(MODEL, changes=MODEL.changes + 1)

    def run(abandon_step: float) -> PredictivePacer:
        pacer = PredictivePacer()
        ab = 10.0
        for i in range(200):
            ab += abandon_step
            pacer.decide(snap(now_s=float(i), abandons=AbandonCounts(ab, 1000, 3, 200, 0.03)))
        return pacer

    quiet = run(0.0)  # calls placed, no abandon: the ratio falls below the prior
    assert quiet.calibration < start
    quiet.decide(snap(now_s=201.0, model=shifted))
    assert quiet.calibration == pytest.approx(start, abs=0.01)  # this decision adds a little
    noisy = run(0.5)  # abandons keep coming while the model predicted few
    high = noisy.calibration
    assert high > start
    noisy.decide(snap(now_s=201.0, model=shifted, abandons=AbandonCounts(110, 1000, 3, 200, 0.03)))
    assert noisy.calibration >= high * 0.99


def test_a_detected_change_point_reaches_the_model() -> None:
    """``PacingModel.changes`` counts the estimator's change points at once (not at the next
    full rebuild), so the pacer can forget what it learned on the old list."""
    rng = random.Random(3)
    est = OutcomeEstimator(H)
    for _ in range(3000):
        est.record_attempt(reached_queue=rng.random() < 0.17, reach_delay_s=12.0)
    m0 = est.model()
    for _ in range(300):
        est.record_attempt(reached_queue=rng.random() < 0.47, reach_delay_s=12.0)
        if est.reach.changes > 0:
            break
    assert est.reach.changes > 0
    m1 = est.model()
    assert m1.changes == est.reach.changes + est.live.changes > m0.changes
