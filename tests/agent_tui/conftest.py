"""Fixtures of the console tests: the real hub stack on loopback (see ``stack.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from crm_bridge.db import make_engine
from tests.agent_tui.stack import Stack, console_stack


@pytest_asyncio.fixture
async def stack(sqlite_url: str) -> AsyncIterator[Stack]:
    engine = make_engine(sqlite_url)
    try:
        async with console_stack(engine) as st:
            yield st
    finally:
        engine.dispose()
