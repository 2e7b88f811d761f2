"""Simulator: determinism, scenario files, the rolling-window metric, the bench command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dialer.pacing import AmdMode
from dialer.sim.compare import run_predictive, run_progressive, run_vicidial
from dialer.sim.engine import max_window_rate
from dialer.sim.scenario import (
    ScenarioError,
    load_scenario_file,
    named_scenario,
    scenario_names,
)
from memberline.cli import main

GOOD = """
agents = 8
hours = 0.5
answer_rate = 0.28
machine_rate = 0.12
amd_accuracy = 0.9
amd_delay_s = 2.0
ring_time_s = [12, 5]
talk_time_s = [180, 120]
wrap_time_s = [30, 15]
ring_timeout_s = 25
abandon_cap = 0.03
seed = 3
"""


def test_same_seed_same_figures() -> None:
    sc = named_scenario("standard")
    a = run_predictive(sc, hours=0.5).figures()
    b = run_predictive(sc, hours=0.5).figures()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    v1 = run_vicidial(sc, hours=0.5).figures()
    v2 = run_vicidial(sc, hours=0.5).figures()
    assert v1 == v2


def test_other_seed_other_figures() -> None:
    sc = named_scenario("standard")
    other = dataclasses.replace(sc, seed=sc.seed + 1)
    assert run_progressive(sc, hours=0.5).figures() != run_progressive(other, hours=0.5).figures()


def test_named_scenarios_match_the_issue() -> None:
    assert scenario_names() == ["evening", "large", "low-contact", "small-team", "standard"]
    std = named_scenario("standard")
    assert (std.agents, std.hours, std.answer_rate, std.machine_rate) == (20, 8, 0.28, 0.12)
    assert std.ring_time_s == (12, 5) and std.talk_time_s == (180, 120)
    assert std.wrap_time_s == (30, 15) and std.ring_timeout_s == 25
    assert std.limit_talk_min_per_agent_hour == pytest.approx(60 * 180 / 210)
    assert named_scenario("small-team").agents == 5
    large = named_scenario("large")
    assert (large.agents, large.hours) == (100, 4)
    low = named_scenario("low-contact")
    assert (low.answer_rate, low.machine_rate) == (0.12, 0.2)
    evening = named_scenario("evening")
    assert dataclasses.replace(evening, answer_rate=0.28, shifts=(), name="standard") == std
    assert evening.rates_at(0) == (0.12, 0.12)
    assert evening.rates_at(3 * 3600 - 1) == (0.12, 0.12)
    assert evening.rates_at(3 * 3600) == (0.30, 0.12)


def test_scenario_file_loads(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(GOOD)
    sc = load_scenario_file(f)
    assert sc.name == "mine" and sc.agents == 8 and sc.seed == 3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("seed = 3", ""), "missing key(s): seed"),
        (("seed = 3", "seed = 3\ncolour = 'red'"), "unknown key(s): colour"),
        (("ring_timeout_s = 25", "ring_timeout_s = 10"), "ring_timeout_s must be in [15, 120]"),
        (("agents = 8", "agents = 2.5"), "agents must be an integer"),
        (("answer_rate = 0.28", "answer_rate = 0.95"), "answer_rate + machine_rate"),
        (("talk_time_s = [180, 120]", "talk_time_s = [180]"), "talk_time_s must be [mean, sd]"),
        (("abandon_cap = 0.03", "abandon_cap = 'low'"), "abandon_cap must be a number"),
        (("hours = 0.5", "hours = ["), "not valid TOML"),
    ],
)
def test_scenario_file_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(GOOD.replace(*edit))
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(f)
    assert message in str(info.value)
    assert "bad.toml" in str(info.value)


def test_unknown_named_scenario() -> None:
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'"):
        named_scenario("nope")


def test_max_window_rate() -> None:
    events = [(t * 60.0, 0) for t in range(120)]
    events[70] = (70 * 60.0, 1)
    events[71] = (71 * 60.0, 1)
    assert max_window_rate(events, 3600.0, 7200.0) == pytest.approx(2 / 60)
    assert max_window_rate([(1.0, 1), (2.0, 0)], 3600.0, 1800.0) == 0.5


def test_bench_dialer_prints_one_json_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "tiny.toml"
    f.write_text(GOOD.replace("hours = 0.5", "hours = 0.25"))
    assert main(["bench", "dialer", "--scenario-file", str(f), "--seeds", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"] == "tiny"
    assert out["seeds"] == [3, 4] and out["amd"] == "auto"
    assert out["limit_talk_min_per_agent_hour"] == pytest.approx(51.429, abs=1e-3)
    for algo in ("predictive", "progressive", "vicidial", "vicidial_compliant"):
        summary = out["algorithms"][algo]
        for key in (
            "talk_min_per_agent_hour",
            "fraction_of_limit",
            "abandon_rate",
            "max_hour_abandon_rate",
        ):
            assert key in summary["median"]
        assert set(summary["worst"]) == {
            "abandon_rate",
            "max_hour_abandon_rate",
            "talk_min_per_agent_hour",
            "fraction_of_limit",
        }
        assert [run["seed"] for run in summary["seeds"]] == [3, 4]
        worst_hour = max(run["max_hour_abandon_rate"] for run in summary["seeds"])
        assert summary["worst"]["max_hour_abandon_rate"]["max_hour_abandon_rate"] == worst_hour
    assert 0 < out["predictive_fraction_of_limit"] < 1
    assert "run_within_cap_every_seed" in out["targets_met"]


def test_bench_dialer_rejects_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("agents = 3\n")
    assert main(["bench", "dialer", "--scenario-file", str(f)]) == 2
    assert "missing key(s)" in capsys.readouterr().err


def test_amd_on_abandons_false_positives_whatever_the_pacing() -> None:
    sc = named_scenario("standard")
    res = run_progressive(sc, AmdMode.ON, hours=1.0)
    # 90 % accuracy: about 10 % of live answers are hung up by AMD
    assert 0.05 < res.amd_abandon_rate < 0.15
    assert res.pacing_abandon_rate == 0.0
