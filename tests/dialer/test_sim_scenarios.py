"""Scenario regression on short runs: bounds, not exact figures."""

from __future__ import annotations

from dialer.sim.compare import run_predictive, run_progressive, run_vicidial
from dialer.sim.scenario import named_scenario


def test_standard_two_hours_predictive_beats_progressive_within_cap() -> None:
    sc = named_scenario("standard")
    pred = run_predictive(sc, hours=2.0)
    prog = run_progressive(sc, hours=2.0)
    assert prog.abandon_rate == 0.0
    assert pred.talk_min_per_agent_hour > prog.talk_min_per_agent_hour + 3.0
    assert pred.abandon_rate <= 0.045  # the cap is held over the legal window; 2 h is noisy
    assert pred.amd_abandon_rate <= 0.005  # the AMD governor turned 90 %-accurate AMD off
    assert pred.utilization < 180 / 210


def test_vicidial_defaults_drop_far_above_the_cap() -> None:
    res = run_vicidial(named_scenario("standard"), hours=1.5)
    assert res.abandon_rate > 0.10


def test_small_team_predictive_stays_safe() -> None:
    sc = named_scenario("small-team")
    pred = run_predictive(sc, hours=3.0)
    prog = run_progressive(sc, hours=3.0)
    assert pred.talk_min_per_agent_hour >= prog.talk_min_per_agent_hour - 1.0
    assert pred.abandon_rate <= 0.05
