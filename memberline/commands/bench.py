"""``memberline bench NAME``: benchmarks that print one JSON object (never timed tests)."""

from __future__ import annotations

import argparse

from memberline.cli import add_command, discover


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "bench", None, "run a benchmark and print JSON")
    bench_sub = parser.add_subparsers(dest="bench", metavar="BENCH")
    bench_sub.required = True
    for module in discover("memberline.benches"):
        module.register(bench_sub)
