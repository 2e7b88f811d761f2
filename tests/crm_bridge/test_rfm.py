"""RFM for supervisors: the grid, the named segments, monthly snapshots and movement, a
campaign for a segment, the hub command, the CLI and the HTML page."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from crm_bridge.db import session_scope
from crm_bridge.lists import build_rfm_segment_list
from crm_bridge.models import CallListEntry, CampaignKind, Member, RfmSnapshot
from crm_bridge.rfm import SEGMENTS, render_html, rfm_report, segment_of, take_snapshot
from crm_bridge.segments import refresh_rfm
from tests.chromium import layout, needs_chromium

from .helpers import NOW, agent, campaign, member, purchase

D = dt.timedelta(days=1)


def test_segments_cover_the_grid_once() -> None:
    cells = [(r, f) for r in range(1, 6) for f in range(1, 6)]
    names = [segment_of(r, f) for r, f in cells]
    assert set(names) == set(SEGMENTS)
    assert segment_of(5, 5) == "champions" and segment_of(1, 5) == "at_risk"
    assert segment_of(3, 1) == "needs_attention" and segment_of(5, 1) == "potential"
    for name, ((rlo, rhi), (flo, fhi), _en, _zh) in SEGMENTS.items():
        inside = [(r, f) for r, f in cells if rlo <= r <= rhi and flo <= f <= fhi]
        assert all(segment_of(r, f) == name for r, f in inside)


def build(engine: Engine) -> dict[str, int]:
    """10 buyers with rising recency and frequency, and 2 members who never bought."""
    ids = {}
    with session_scope(engine) as s:
        wang = agent(s, "1001", "王芳")
        for i in range(10):
            m = member(
                s, f"买家{i}", phones=(f"+86138000000{i:02d}",), maintaining_agent_id=wang.id
            )
            for k in range(i + 1):  # member i bought i+1 times, the last one (10 - i) * 20 days ago
                purchase(s, m, NOW - (10 - i) * 20 * D - k * D, "100.00")
            ids[f"b{i}"] = m.id
        for i in range(2):
            ids[f"n{i}"] = member(s, f"未购{i}", phones=(f"+86139000000{i:02d}",)).id
        refresh_rfm(s, NOW)
    return ids


def test_grid_snapshot_and_movement(engine: Engine) -> None:
    ids = build(engine)
    month = NOW.date().replace(day=1)
    prev = (month - D).replace(day=1)
    with session_scope(engine) as s:
        rep = rfm_report(s, NOW.date())
    assert rep.members == 12 and not rep.has_previous and rep.moves == {}
    assert rep.cells[(1, 1)].members == 2 + 2  # never bought (1-1) + the two oldest buyers
    assert rep.cells[(5, 5)].members == 2 and rep.cells[(5, 5)].spend == Decimal("1900.00")
    assert sum(n for n, _ in rep.segments.values()) == 12
    with session_scope(engine) as s:  # the report took this month's snapshot, once
        assert take_snapshot(s, NOW.date()) == 12
        assert s.scalar(select(func.count()).select_from(RfmSnapshot)) == 12
        # last month: every buyer was a champion; one of the non-buyers was not scored
        s.execute(insert(RfmSnapshot), [
            {"month": prev, "member_id": mid, "r_score": 5, "f_score": 5, "monetary": Decimal(1)}
            for key, mid in ids.items() if key != "n1"
        ])  # fmt: skip
    with session_scope(engine) as s:
        rep = rfm_report(s, NOW.date())
    assert rep.has_previous
    assert rep.moves[("new", "hibernating")] == 1
    # NTILE(5) over 10 buyers: buyer i scores R = F = i // 2 + 1
    assert rep.moves[("champions", "champions")] == 4  # buyers 6-9
    assert rep.moves[("champions", "loyal")] == 2  # buyers 4, 5
    assert rep.moves[("champions", "hibernating")] == 5  # buyers 0-3 and n0
    assert sum(rep.moves.values()) == 12
    data = json.loads(json.dumps(rep.to_dict()))
    assert {"from": "new", "to": "hibernating", "members": 1} in data["moves"]


def test_campaign_for_a_segment(engine: Engine) -> None:
    ids = build(engine)
    with session_scope(engine) as s:
        c = campaign(s, CampaignKind.CUSTOM).id
        r = build_rfm_segment_list(s, c, NOW, "champions")
        assert r.added == 4
        got = set(s.scalars(select(CallListEntry.member_id).where(CallListEntry.campaign_id == c)))
        assert got == {ids[f"b{i}"] for i in (6, 7, 8, 9)}
        assert set(s.scalars(select(CallListEntry.assigned_agent_id))) == {
            s.scalar(select(Member.maintaining_agent_id).where(Member.id == ids["b9"]))
        }
        with pytest.raises(ValueError, match="segment"):
            build_rfm_segment_list(s, c, NOW, "whales")


async def test_hub_rfm_grid_and_segment_campaign(engine: Engine) -> None:
    from cti.hubproto import ErrorCode, ProtocolError
    from tests.cti.hub_support import Console, running_hub, seed

    seed(engine)
    with session_scope(engine) as s:
        refresh_rfm(s, dt.datetime.now(dt.UTC))
    async with running_hub(engine) as hub, Console(hub, "9001") as sup, Console(hub, "1001") as a1:
        grid = (await sup.request("rfm_grid"))["rfm"]
        assert len(grid["cells"]) == 25 and set(grid["segments"]) == set(SEGMENTS)
        with pytest.raises(ProtocolError) as err:
            await a1.request("rfm_grid")
        assert err.value.code is ErrorCode.FORBIDDEN
        made = await sup.request("campaign_create", name="rfm-hib", kind="custom",
                                 settings={"segment": "hibernating"})  # fmt: skip
        assert made["entries"] >= 1
        with pytest.raises(ProtocolError) as err:
            await sup.request("campaign_create", name="rfm-x", kind="custom",
                              settings={"segment": "whales"})  # fmt: skip
        assert err.value.code is ErrorCode.BAD_REQUEST


def test_cli_report_rfm(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_bridge.db import make_engine
    from memberline.cli import main

    engine = make_engine(sqlite_url)
    build(engine)
    engine.dispose()
    html = tmp_path / "rfm.html"
    assert main(["report", "rfm", "--refresh", "--db", sqlite_url, "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "R5" in out and "Champions · 重要价值" in out and "movement from next month" in out
    assert main(["report", "rfm", "--json", "--db", sqlite_url]) == 0
    assert json.loads(capsys.readouterr().out)["cells"][0] == {
        "r": 5,
        "f": 5,
        "segment": "champions",
        "members": 2,
        "spend": "1900.00",
    }


@needs_chromium
def test_html_lays_out_in_headless_chromium(engine: Engine, tmp_path: Path) -> None:
    build(engine)
    with session_scope(engine) as s:
        html = render_html(rfm_report(s, NOW.date()))
    assert "<script" not in html and "重要价值" in html
    got = layout(html, tmp_path)
    assert len(got["charts"]) == 1 and got["tables"] == 3
    for chart in got["charts"]:
        assert chart["overlaps"] == [] and chart["outside"] == [], chart
    assert got["scrollWidth"] <= got["clientWidth"]


async def test_serve_refreshes_rfm_once_a_day_and_keeps_monthly_snapshots(engine: Engine) -> None:
    """``serve``'s RFM loop: at start and then daily, but once a day however often it runs
    (each restart runs it again: a new loop with ``stop`` set makes exactly one pass), and the
    month's first refresh leaves the snapshot the report's movement reads."""
    import asyncio

    from crm_bridge.models import MemberSegment
    from memberline.config import Config
    from memberline.stack import rfm_loop

    shanghai = dt.timezone(dt.timedelta(hours=8))
    with session_scope(engine) as s:
        m = member(s, "李伟", phones=("+8613800000001",))
        purchase(s, m, NOW - dt.timedelta(days=3))

    def state() -> tuple[set[dt.datetime], list[tuple[dt.date, int]]]:
        with session_scope(engine) as s:
            at = set(s.scalars(select(MemberSegment.computed_at)))
            snaps = s.execute(select(RfmSnapshot.month, func.count()).group_by(RfmSnapshot.month)
                              .order_by(RfmSnapshot.month)).all()  # fmt: skip
        return at, [(d, n) for d, n in snaps]

    async def one_pass(now: dt.datetime) -> None:
        stop = asyncio.Event()
        stop.set()
        async with asyncio.timeout(30):
            await rfm_loop(engine, Config(), stop, clock=lambda: now)

    morning = dt.datetime(2026, 11, 30, 8, 0, tzinfo=shanghai)
    await one_pass(morning)
    assert state() == ({morning.astimezone(dt.UTC)}, [(dt.date(2026, 11, 1), 1)])
    await one_pass(morning + dt.timedelta(hours=15))  # 23:00, a restart the same day
    assert state() == ({morning.astimezone(dt.UTC)}, [(dt.date(2026, 11, 1), 1)])
    next_day = morning + dt.timedelta(days=1)  # 1 December: refreshed, December's snapshot
    await one_pass(next_day)
    assert state() == (
        {next_day.astimezone(dt.UTC)},
        [(dt.date(2026, 11, 1), 1), (dt.date(2026, 12, 1), 1)],
    )
    # the loop left running refreshes at start, then stops when asked
    stop = asyncio.Event()
    later = next_day + dt.timedelta(days=1)
    task = asyncio.create_task(rfm_loop(engine, Config(), stop, clock=lambda: later))
    async with asyncio.timeout(30):
        while state()[0] != {later.astimezone(dt.UTC)}:  # noqa: ASYNC110 - worker thread
            await asyncio.sleep(0.05)
    stop.set()
    async with asyncio.timeout(10):
        await task
