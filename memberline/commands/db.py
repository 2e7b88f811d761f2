"""``memberline db upgrade|current|check``: Alembic migrations of the member database."""

from __future__ import annotations

import argparse

from memberline.cli import add_command
from memberline.config import Config


# crm_bridge.migrate (Alembic, SQLAlchemy, the models) is imported by the handlers, not here:
# every `memberline` command imports this module just to build the parser.
def _upgrade(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import migrate

    migrate.upgrade(cfg.database.url, args.revision)
    print(f"database at {args.revision}")
    return 0


def _current(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import migrate

    migrate.current(cfg.database.url)
    return 0


def _check(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import migrate

    migrate.check(cfg.database.url)
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
