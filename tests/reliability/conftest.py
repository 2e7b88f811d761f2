"""``sqlite_engine``: a migrated SQLite database for the reliability tests whose faults are not
engine-specific (PostgreSQL behaviour is covered by the package suites)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from crm_bridge.db import make_engine


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()
