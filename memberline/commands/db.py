"""``memberline db upgrade|current|check``: Alembic migrations of the member database."""

from __future__ import annotations

import argparse

from memberline.cli import OperatorError, add_command
from memberline.config import Config


# crm_bridge.migrate (Alembic, SQLAlchemy, the models) is imported by the handlers, not here:
# every `memberline` command imports this module just to build the parser.
def _upgrade(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import migrate

    migrate.upgrade(cfg.database.url, args.revision)
    print(f"database at {args.revision}")
    return 0


def _existing(cfg: Config) -> None:
    """``current`` and ``check`` read a database, they never create one (SQLite would)."""
    from memberline.dbopen import database_problem

    problem, _ = database_problem(cfg.database.url, at_head=False)
    if problem is not None:
        raise OperatorError(problem)


def _current(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import migrate

    _existing(cfg)
    migrate.current(cfg.database.url)
    return 0


def _check(args: argparse.Namespace, cfg: Config) -> int:
    from alembic.util import CommandError

    from crm_bridge import migrate
    from memberline.dbopen import UPGRADE_HINT

    _existing(cfg)
    try:
        migrate.check(cfg.database.url)
    except CommandError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = f"; {UPGRADE_HINT}" if "not up to date" in first else ""
        raise OperatorError(f"db check: {first}{hint}") from None
    print("models and migrations agree")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "db", None, "database migrations (upgrade, current, check)")
    db_sub = parser.add_subparsers(dest="db_command", metavar="ACTION")
    db_sub.required = True
    up = add_command(db_sub, "upgrade", _upgrade, "apply migrations up to REVISION (default head)")
    up.add_argument("revision", nargs="?", default="head")
    add_command(db_sub, "current", _current, "show the database's revision")
    add_command(db_sub, "check", _check, "fail if models and migrations drifted")
