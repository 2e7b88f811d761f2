"""Helpers for tests of any package: fresh migrated databases (SQLite or PostgreSQL).

PostgreSQL tests need ``MEMBERLINE_TEST_PG_URL`` (``.ci/pg-start`` prints it); each call of
:func:`fresh_pg_database` creates a new database on that server so tests never share state.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_bridge.db import normalise_url
from crm_bridge.migrate import upgrade

PG_ENV = "MEMBERLINE_TEST_PG_URL"


def pg_server_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def fresh_sqlite_database(directory: Path, *, migrate: bool = True) -> str:
    url = f"sqlite:///{directory / f'memberline-{uuid.uuid4().hex[:8]}.db'}"
    if migrate:
        upgrade(url)
    return url


def fresh_pg_database(server_url: str, *, migrate: bool = True) -> str:
    name = f"ml_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = (
        make_url(normalise_url(server_url)).set(database=name).render_as_string(hide_password=False)
    )
    if migrate:
        upgrade(url)
    return url


def drop_pg_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
