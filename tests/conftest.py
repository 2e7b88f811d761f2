"""Shared fixtures.

The asyncio loop is session-scoped (pyproject) because Twisted's reactor is
process-global and is installed on that loop once, here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from memberline.runtime import ensure_reactor_running


@pytest_asyncio.fixture(scope="session", autouse=True, loop_scope="session")
async def _twisted_reactor() -> AsyncIterator[None]:
    ensure_reactor_running()
    yield
    await asyncio.sleep(0)
