"""``memberline bench dialer``: every pacing algorithm on the same seeded scenario, as JSON.

``--scenario NAME`` (a shipped scenario, or ``all``) or ``--scenario-file FILE.toml``;
``--seeds N`` (default 5: the scenario's seed and the next ones; median and worst seed are
reported per algorithm), ``--hours H`` to shorten a run, ``--amd on|off|auto`` (default auto:
the AMD governor, as the campaign runner runs it).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from memberline.benches._common import LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config

AMD_MODES = ("on", "off", "auto")
"""The values of :class:`dialer.pacing.AmdMode`: a copy, so that building the CLI parser does
not import the pacing package (tests/memberline/test_cli_startup.py checks they agree)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from dialer.sim.scenario import scenario_names  # light: tomllib and the scenario files

    p = add_command(sub, "dialer", run, "predictive dialer vs progressive and VICIdial, simulated")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--scenario",
        default="standard",
        help=f"shipped scenario ({', '.join(scenario_names())}) or 'all' (default standard)",
    )
    src.add_argument("--scenario-file", metavar="FILE.toml", help="a scenario TOML file")
    p.add_argument(
        "--amd",
        choices=AMD_MODES,
        default="auto",
        help="AMD mode, as a campaign's amd_mode (default auto: the AMD governor)",
    )
    p.add_argument("--hours", type=float, default=None, help="override the scenario's hours")
    p.add_argument("--seeds", type=int, default=5, help="seeds per algorithm (default 5)")


def run(args: argparse.Namespace, config: Config) -> int:
    from dialer.pacing import AmdMode
    from dialer.sim.compare import compare
    from dialer.sim.scenario import (
        ScenarioError,
        load_scenario_file,
        named_scenario,
        scenario_names,
    )

    if not 1 <= args.seeds <= 50:
        print("memberline bench dialer: --seeds must be in 1..50", file=sys.stderr)
        return 2
    if args.hours is not None and not 0 < args.hours <= 24:
        print("memberline bench dialer: --hours must be in (0, 24]", file=sys.stderr)
        return 2
    stamp = LoadStamp()
    amd = AmdMode(args.amd)
    try:
        if args.scenario_file:
            scenarios = [load_scenario_file(args.scenario_file)]
        elif args.scenario == "all":
            scenarios = [named_scenario(n) for n in scenario_names()]
        else:
            scenarios = [named_scenario(args.scenario)]
    except ScenarioError as exc:
        print(f"memberline bench dialer: {exc}", file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    for sc in scenarios:
        t0 = time.perf_counter()
        res = compare(sc, amd, hours=args.hours, seeds=args.seeds)
        res["elapsed_s"] = round(time.perf_counter() - t0, 2)
        results.append(res)
    out: dict[str, Any] = results[0] if len(results) == 1 else {"scenarios": results}
    emit(out, stamp, runs=len(results), indent=2)
    return 0
