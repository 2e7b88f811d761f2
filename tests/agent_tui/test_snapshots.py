"""Snapshots of the pop, wrap-up, search, wallboard, unfinished-calls (agent) and unfinished
wrap-ups per agent (supervisor) screens at 80x24 and 120x40.

Regenerate after an intended change: ``pytest tests/agent_tui/test_snapshots.py --snapshot-update``
(Textual and Rich versions are pinned by the venv; a version bump churns the SVGs).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent_tui.snapshot_app import SCREENS, offline_app


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_screen_snapshot(snap_compare: Any, screen: str, size: tuple[int, int]) -> None:
    assert snap_compare(offline_app(), terminal_size=size, run_before=SCREENS[screen])
