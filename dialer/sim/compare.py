"""Run every algorithm on one scenario, side by side (what ``memberline bench dialer`` prints)."""

from __future__ import annotations

from typing import Any

from dialer.pacing import AmdMode, PredictiveConfig
from dialer.sim.engine import SimResult, Simulation
from dialer.sim.policies import (
    VicidialConfig,
    VicidialPolicy,
    predictive_policy,
    progressive_policy,
)
from dialer.sim.scenario import Scenario

LEVELS = [round(1.0 + 0.1 * i, 1) for i in range(21)]  # 1.0 .. 3.0


def run_predictive(
    sc: Scenario,
    amd: AmdMode = AmdMode.AUTO,
    config: PredictiveConfig | None = None,
    hours: float | None = None,
) -> SimResult:
    return Simulation(sc, predictive_policy(config), amd, hours=hours).run()


def run_progressive(
    sc: Scenario, amd: AmdMode = AmdMode.AUTO, hours: float | None = None
) -> SimResult:
    return Simulation(sc, progressive_policy(), amd, hours=hours).run()


def run_vicidial(
    sc: Scenario,
    amd: AmdMode = AmdMode.AUTO,
    max_level: float = 3.0,
    name: str = "vicidial",
    hours: float | None = None,
) -> SimResult:
    policy = VicidialPolicy(VicidialConfig(adaptive_maximum_level=max_level), name=name)
    return Simulation(sc, policy, amd, hours=hours).run()


def vicidial_compliant(
    sc: Scenario, amd: AmdMode = AmdMode.AUTO, hours: float | None = None
) -> tuple[SimResult, float | None]:
    """Hindsight tuning: the highest ``adaptive_maximum_level`` in 1.0..3.0 (step 0.1) whose run
    keeps ``abandon_rate`` within the cap. Scans from the top and stops at the first compliant
    level (that is the highest). None = no level complied (the 1.0 run is returned)."""
    last: SimResult | None = None
    for level in reversed(LEVELS):
        res = run_vicidial(sc, amd, level, name="vicidial_compliant", hours=hours)
        last = res
        if res.abandon_rate <= sc.abandon_cap:
            return res, level
    assert last is not None
    return last, None


def compare(
    sc: Scenario, amd: AmdMode = AmdMode.AUTO, hours: float | None = None
) -> dict[str, Any]:
    pred = run_predictive(sc, amd, hours=hours)
    prog = run_progressive(sc, amd, hours=hours)
    vici = run_vicidial(sc, amd, hours=hours)
    comp, level = vicidial_compliant(sc, amd, hours=hours)
    limit = sc.limit_talk_min_per_agent_hour
    comp_fig: dict[str, Any] = comp.figures()
    comp_fig["adaptive_maximum_level"] = level
    return {
        "scenario": sc.name,
        "agents": sc.agents,
        "hours": hours if hours is not None else sc.hours,
        "abandon_cap": sc.abandon_cap,
        "limit_talk_min_per_agent_hour": round(limit, 3),
        "predictive_fraction_of_limit": round(pred.talk_min_per_agent_hour / limit, 4),
        "algorithms": {
            "predictive": pred.figures(),
            "progressive": prog.figures(),
            "vicidial": vici.figures(),
            "vicidial_compliant": comp_fig,
        },
    }
