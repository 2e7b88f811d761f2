"""Shared fixtures.

The asyncio loop is session-scoped (pyproject) because Twisted's reactor is
process-global and is installed on that loop once, here.

Database fixtures: ``db_url`` runs a test on SQLite and, when
``MEMBERLINE_TEST_PG_URL`` is set (CI always sets it, see .ci/run), on PostgreSQL
too; ``engine`` is an Engine on that fresh, migrated database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine

from crm_bridge.db import make_engine
from crm_bridge.testing import (
    drop_pg_database,
    fresh_pg_database,
    fresh_sqlite_database,
    pg_server_url,
)
from memberline.runtime import ensure_reactor_running

PG_SKIP_REASON = 'no PostgreSQL server: set MEMBERLINE_TEST_PG_URL (eval "$(.ci/pg-start)"); CI always runs these'


@pytest_asyncio.fixture(scope="session", autouse=True, loop_scope="session")
async def _twisted_reactor() -> AsyncIterator[None]:
    ensure_reactor_running()
    yield
    await asyncio.sleep(0)


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield fresh_sqlite_database(tmp_path)
        return
    server = pg_server_url()
    if server is None:
        pytest.skip(PG_SKIP_REASON)
    url = fresh_pg_database(server)
    yield url
    drop_pg_database(server, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return fresh_sqlite_database(tmp_path)


@pytest.fixture
def pg_url() -> Iterator[str]:
    server = pg_server_url()
    if server is None:
        pytest.skip(PG_SKIP_REASON)
    url = fresh_pg_database(server)
    yield url
    drop_pg_database(server, url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()
