"""The ``memberline`` command line.

Subcommands are discovered, not listed here: every module in
``memberline/commands/`` exposes ``register(subparsers)`` and adds its own
subcommand(s) with :func:`add_command`, setting ``handler`` to a function
``handler(args, config) -> int``. ``memberline bench <name>`` works the same way
with modules in ``memberline/benches/`` (see ``memberline/commands/bench.py``).

Options every command understands (before or after the subcommand name):
``--config FILE``, ``--db URL``, ``--log-level LEVEL``, ``--log-json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from memberline.config import Config, ConfigError, load_config
from memberline.logs import setup_logging

Handler = Callable[[argparse.Namespace, Config], int]
"""A subcommand: receives the parsed arguments and the loaded config, returns the exit code."""


class OperatorError(Exception):
    """Something the operator can fix (no database, a busy port, a bad value): ``main`` prints
    it as one line, ``memberline: <message>``, and exits 2 -- never a traceback."""


def _common_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="FILE", default=default, help="TOML configuration file")
    parser.add_argument(
        "--db", metavar="URL", default=default, help="database URL (overrides config)"
    )
    parser.add_argument(
        "--log-level",
        default=argparse.SUPPRESS if suppress else "WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (default WARNING)",
    )
    parser.add_argument(
        "--log-json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="structured (JSON lines) logs on stderr",
    )


_COMMON = argparse.ArgumentParser(add_help=False)
_common_options(_COMMON, suppress=True)


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler | None,
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add a subcommand that understands the common options; ``handler`` may be None for a group."""
    parser = subparsers.add_parser(
        name, help=help, description=description or help, parents=[_COMMON]
    )
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def discover(package: str) -> Iterator[ModuleType]:
    """Import every module of ``package`` (sorted by name) that has a ``register``."""
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, "register"):
            yield module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memberline",
        description="Memberline: call-centre telephony for membership programmes.",
    )
    _common_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in discover("memberline.commands"):
        module.register(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    cfg = load_config(getattr(args, "config", None))
    db = getattr(args, "db", None)
    if db:
        cfg = dataclasses.replace(cfg, database=dataclasses.replace(cfg.database, url=db))
    return cfg


def _database_error(exc: Exception) -> str | None:
    """One line for a database error that escaped a command (the database went away, a table
    is missing after all); None for anything else, which stays a traceback: a bug."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    if not isinstance(exc, DBAPIError):
        return None
    reason = str(exc.orig).splitlines()[0][:200] if exc.orig is not None else type(exc).__name__
    hint = ""
    if isinstance(exc, (OperationalError, ProgrammingError)) and (
        "no such table" in reason or "does not exist" in reason
    ):
        hint = "; run `memberline db upgrade`"
    return f"database error: {reason}{hint}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, json_lines=args.log_json)
    try:
        cfg = config_from_args(args)
    except ConfigError as exc:
        print(f"memberline: configuration error: {exc}", file=sys.stderr)
        return 2
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.parse_args([*(argv or sys.argv[1:]), "--help"])
        return 2
    try:
        return handler(args, cfg)
    except ConfigError as exc:
        print(f"memberline: configuration error: {exc}", file=sys.stderr)
        return 2
    except OperatorError as exc:
        print(f"memberline: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = _database_error(exc)
        if line is None:
            raise
        print(f"memberline: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
