"""``memberline greetings run [--date D]``: queue the day's birthday and holiday greetings.

The same job runs inside ``memberline serve`` every day at ``care.greeting_run_at``
(:func:`memberline.stack.greetings_loop`). Each member gets each occasion once a year however
often either runs (:mod:`dialer.greetings`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING

from memberline.cli import add_command
from memberline.config import Config

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from dialer.greetings import GreetingRun


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def run_for(engine: Engine, cfg: Config, day: dt.date) -> GreetingRun:
    from dialer.greetings import run_greetings

    c = cfg.care
    return run_greetings(
        engine,
        day,
        country=c.greeting_country,
        holidays=c.greeting_holidays,
        catch_up_days=c.greeting_catch_up_days,
    )


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from memberline.dbopen import open_database

    day = args.date or dt.date.today()
    engine = open_database(cfg.database.url)
    try:
        run = run_for(engine, cfg, day)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"date": day.isoformat(), "occasions": run.occasions,
                          "queued": run.queued}, ensure_ascii=False))  # fmt: skip
        return 0
    print(f"greetings for {day}: occasions {', '.join(run.occasions) or 'none'}")
    for key, n in sorted(run.queued.items()):
        print(f"  {key}: {n} queued")
    print(f"{run.total} greeting(s) queued; the outbox sends them outside quiet hours")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "greetings", None, "birthday and holiday greetings")
    gsub = parser.add_subparsers(dest="greetings_command", metavar="ACTION")
    gsub.required = True
    p = add_command(
        gsub, "run", _run, "queue the day's greetings (once per member, occasion, year)"
    )
    p.add_argument("--date", type=_date, metavar="DATE", help="YYYY-MM-DD (default: today)")
    p.add_argument("--json", action="store_true")
