"""Opening the member database from a command: an existing database, migrated, or one line
saying what to do.

SQLite creates a missing file on the first connect, so a command run without ``--db`` (or
with a typo in it) used to leave an empty ``memberline.db`` behind and then fail with
``no such table``. Every command that works on an existing database opens it through
:func:`open_database`: the file's existence is checked *before* connecting, and the schema's
Alembic revision is compared with the code's head. Only ``memberline db upgrade``,
``memberline demo``/``demo-data`` and ``members import`` create a database, on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from memberline.cli import OperatorError

if TYPE_CHECKING:
    from sqlalchemy import Engine

UPGRADE_HINT = "run `memberline db upgrade` (with the same --db/--config)"


def safe_url(url: str) -> str:
    """The database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    from crm_bridge.db import normalise_url

    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    from sqlalchemy.engine import make_url

    from crm_bridge.db import normalise_url

    u = make_url(normalise_url(url))
    if not u.drivername.startswith("sqlite") or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def database_problem(url: str, *, at_head: bool = True) -> tuple[str | None, str | None]:
    """``(problem, revision)``: what is wrong with the database at ``url`` as one line (None
    when it is usable) and its Alembic revision. Never creates a SQLite file."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from crm_bridge.db import make_engine
    from crm_bridge.migrate import alembic_config

    shown = safe_url(url)
    try:
        path = sqlite_path(url)
    except Exception:
        return f"{shown}: invalid database URL", None
    if path is not None and not path.is_file():
        return (
            f"no database at {path}: pass --db URL, or create it with "
            f"`memberline db upgrade --db {path}`",
            None,
        )
    try:
        engine = make_engine(url)
    except Exception as exc:
        return f"{shown}: invalid database URL ({type(exc).__name__})", None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
        heads = ScriptDirectory.from_config(alembic_config(url)).get_heads()
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        return f"{shown}: cannot open the database: {reason}", None
    finally:
        engine.dispose()
    if not at_head:
        return None, current
    if current is None:
        return f"{shown}: the database is not migrated; {UPGRADE_HINT}", None
    if current not in heads:
        return (
            f"{shown}: the database is at revision {current}, this code expects "
            f"{', '.join(heads)}; {UPGRADE_HINT}",
            current,
        )
    return None, current


def open_database(url: str, *, at_head: bool = True) -> Engine:
    """The engine for an existing database whose schema is at the code's head (``at_head``;
    otherwise any revision); raises :class:`OperatorError` with one line otherwise."""
    from crm_bridge.db import make_engine

    problem, _ = database_problem(url, at_head=at_head)
    if problem is not None:
        raise OperatorError(problem)
    return make_engine(url)
