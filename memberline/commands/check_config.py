"""``memberline check-config [--config FILE]``: validate the file, then try every connection.

The file itself is validated by :func:`memberline.config.load_config` before this
handler runs (a bad file exits 2 with the key named). Then: the database (connect,
schema at the Alembic head), AMI (TCP, banner, Login/Logoff), the hub, FastAGI and
webhook listen addresses, SMTP (connect, EHLO, STARTTLS/login when configured) and
Twilio (the account, when a sid is set). One line per check; exit 1 if any failed.
When SMS or email go to a local sink instead of a provider a ``WARN`` line says so, and
the exit code is 1 unless ``--allow-sinks`` is given (the demo and tests). Secrets are
never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from memberline.cli import add_command
from memberline.config import Config

if TYPE_CHECKING:  # imported where used: memberline.checks imports SQLAlchemy
    from memberline.checks import Check


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(
        f"{'ok  ' if c.ok else 'WARN' if c.warning else 'FAIL'}  {c.name:<{width}}  {c.message}"
        for c in checks
    )


def handler(args: argparse.Namespace, config: Config) -> int:
    from memberline.checks import run_checks

    checks = asyncio.run(run_checks(config, limit_s=args.timeout))
    failed = [c for c in checks if not c.ok and not c.warning]
    warned = [c for c in checks if c.warning]
    bad = bool(failed) or (bool(warned) and not args.allow_sinks)
    if args.json:
        print(
            json.dumps({"ok": not bad, "checks": [c.__dict__ for c in checks]}, ensure_ascii=False)
        )
    else:
        print(f"configuration: {getattr(args, 'config', None) or '(built-in defaults)'} is valid")
        print(format_checks(checks))
        if failed:
            print(f"{len(failed)} problem(s)")
        elif warned and not args.allow_sinks:
            print(f"{len(warned)} warning(s): messages go to local sinks (--allow-sinks accepts)")
        elif warned:
            print("all checks passed (local sinks allowed)")
        else:
            print("all checks passed")
    return 1 if bad else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "check-config",
        handler,
        "validate the configuration and try every connection (DB, AMI, binds, SMTP, Twilio)",
    )
    p.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="per-check timeout (default 5 s)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument(
        "--allow-sinks",
        action="store_true",
        help="exit 0 although SMS/email go to a local sink (demo, tests)",
    )
