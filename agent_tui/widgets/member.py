"""The member profile: header, next-best-action panel and history tabs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from agent_tui.cells import column_widths, crop
from agent_tui.model import Profile, Record, parse_time


def header_lines(profile: Profile) -> tuple[str, str]:
    """The two header lines of a profile (pure; the pop shows them at once)."""
    first = (
        f"{profile.name}  {profile.tier or '—'}  No. {profile.member_no or '—'}  "
        f"☎ {profile.phone_masked or '—'}"
    )
    segment = " / ".join(
        p for p in (profile.lifecycle, f"RFM {profile.rfm}" if profile.rfm else "") if p
    )
    second = (
        f"Since {profile.member_since or '—'}  Points {profile.points:,}  "
        f"{segment or '—'}  Maintainer {profile.maintaining_agent or '—'}"
    )
    return first, second


class ProfileHeader(Static):
    """Name, tier, member number, masked phone; since, points, segment, maintainer."""

    DEFAULT_CSS = """
    ProfileHeader { height: auto; padding: 0 1; }
    """

    def show(self, profile: Profile | None, caller: str = "") -> None:
        if profile is None:
            self.update(
                Text(f"Caller {caller or 'unknown'} — no member selected yet", style="bold")
            )
            return
        first, second = header_lines(profile)
        text = Text(first, style="bold")
        text.append("\n")
        text.append(second)
        self.update(text)


class NextBestAction(Static):
    """What to offer or ask this member now (from the hub)."""

    DEFAULT_CSS = """
    NextBestAction { height: auto; padding: 0 1; }
    """

    def show(self, profile: Profile | None) -> None:
        if profile is None or not profile.next_best_actions:
            self.update("Next best action: —")
            return
        text = Text("Next best action: ", style="bold")
        text.append("; ".join(profile.next_best_actions))
        self.update(text)


def _date(value: Any, tz: dt.tzinfo) -> str:
    parsed = parse_time(value)
    if parsed is None:
        return str(value)[:16] if value else "—"
    return parsed.astimezone(tz).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class Column:
    header: str
    keys: tuple[str, ...]
    kind: str = "text"
    """text | time | int | money"""

    def cell(self, record: Record, tz: dt.tzinfo) -> str:
        value = next((record[k] for k in self.keys if record.get(k) is not None), None)
        if self.kind == "time":
            return _date(value, tz)
        if value is None:
            return "—"
        if self.kind == "signed":
            return f"{int(value):+,}"
        if self.kind == "int":
            return f"{int(value):,}"
        if self.kind == "money":
            currency = record.get("currency", "")
            return f"{float(value):,.2f} {currency}".strip()
        if self.kind == "seconds":
            from agent_tui.model import format_duration

            return format_duration(float(value))
        return str(value)


TABS: dict[str, tuple[str, tuple[Column, ...]]] = {
    "purchases": (
        "Purchases",
        (
            Column("When", ("purchased_at", "at"), "time"),
            Column("Amount", ("amount",), "money"),
            Column("Category", ("category",)),
            Column("Store", ("store",)),
        ),
    ),
    "inquiries": (
        "Inquiries",
        (
            Column("When", ("created_at", "at"), "time"),
            Column("Status", ("status",)),
            Column("Category", ("category",)),
            Column("Subject", ("subject",)),
        ),
    ),
    "complaints": (
        "Complaints",
        (
            Column("When", ("created_at", "at"), "time"),
            Column("Severity", ("severity",)),
            Column("Status", ("status",)),
            Column("Category", ("category",)),
            Column("Description", ("description",)),
        ),
    ),
    "calls": (
        "Calls",
        (
            Column("When", ("started_at", "at", "created_at"), "time"),
            Column("Dir", ("direction",)),
            Column("Agent", ("agent", "agent_name")),
            Column("Outcome", ("disposition", "outcome")),
            Column("Talk", ("talk_s", "duration_s"), "seconds"),
        ),
    ),
    "surveys": (
        "Surveys",
        (
            Column("When", ("answered_at", "completed_at", "created_at", "at"), "time"),
            Column("Survey", ("survey", "survey_name")),
            Column("CSAT", ("csat", "score")),
            Column("NPS", ("nps",)),
        ),
    ),
    "ledger": (
        "Points",
        (
            Column("When", ("occurred_at", "at"), "time"),
            Column("Change", ("delta",), "signed"),
            Column("Balance", ("balance_after",), "int"),
            Column("Reason", ("reason",)),
        ),
    ),
}


def fill_table(
    table: DataTable[str],
    columns: Sequence[Column],
    records: Sequence[Record],
    tz: dt.tzinfo,
    max_width: int = 36,
) -> None:
    """Fill a table, every column as wide as its widest cell in terminal cells (CJK = 2)."""
    rows = [[c.cell(r, tz) for c in columns] for r in records]
    widths = column_widths([c.header for c in columns], rows, max_width)
    table.clear(columns=True)
    for col, width in zip(columns, widths, strict=True):
        table.add_column(col.header, width=width)
    for row in rows:
        table.add_row(*(crop(v, w) for v, w in zip(row, widths, strict=True)))


class HistoryTabs(Widget):
    """Purchases, inquiries, complaints, calls, surveys and the points ledger."""

    DEFAULT_CSS = """
    HistoryTabs { height: 1fr; }
    HistoryTabs DataTable { height: 1fr; }
    HistoryTabs #points-balance { height: 1; padding: 0 1; }
    """

    def __init__(self, tz: dt.tzinfo, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tz = tz
        self._profile: Profile | None = None
        self._dirty: set[str] = set()

    def compose(self) -> ComposeResult:
        with TabbedContent(id="history"):
            for key, (title, _cols) in TABS.items():
                with TabPane(title, id=f"tab-{key}"):
                    if key == "ledger":
                        with Vertical():
                            yield Static(id="points-balance")
                            yield DataTable(
                                id=f"table-{key}", cursor_type="row", zebra_stripes=True
                            )
                    else:
                        yield DataTable(id=f"table-{key}", cursor_type="row", zebra_stripes=True)

    def show(self, profile: Profile | None, *, defer: bool = False) -> None:
        """Show a profile's history: the visible tab now (or, with ``defer``, emptied now
        and filled by :meth:`fill_visible` once the pop's first frame is out), the other
        tabs when they are first opened. Never shows a previous caller's rows."""
        self._profile = profile
        self._dirty = set(TABS)
        balance = f"Balance {profile.points:,} points" if profile is not None else ""
        self.query_one("#points-balance", Static).update(balance)
        if defer:
            # Hidden, not drawn, for the pop's first frame: an emptied table still paints
            # every blank line of its height, the costliest part of that frame.
            self.visible = False
            for table in self.query(DataTable):
                table.clear()
        else:
            self.fill_visible()

    def fill_visible(self) -> None:
        active = self.query_one(TabbedContent).active.removeprefix("tab-")
        self._fill(active or "purchases")
        self.visible = True

    def _fill(self, key: str) -> None:
        if key not in self._dirty:
            return
        self._dirty.discard(key)
        _title, cols = TABS[key]
        records = _RECORDS[key](self._profile) if self._profile is not None else ()
        fill_table(self.query_one(f"#table-{key}", DataTable), cols, records, self.tz)

    def cycle(self, step: int) -> None:
        """Show the next (``step`` 1) or previous (-1) tab and give its list the focus, so
        the arrow keys scroll it: the history is reachable without a mouse."""
        tabbed = self.query_one(TabbedContent)
        keys = list(TABS)
        current = tabbed.active.removeprefix("tab-") or keys[0]
        key = keys[(keys.index(current) + step) % len(keys)]
        tabbed.active = f"tab-{key}"
        self._fill(key)
        self.query_one(f"#table-{key}", DataTable).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._fill(event.pane.id.removeprefix("tab-") if event.pane.id else "purchases")


_RECORDS: dict[str, Callable[[Profile], Sequence[Record]]] = {
    "purchases": lambda p: p.purchases,
    "inquiries": lambda p: p.inquiries,
    "complaints": lambda p: p.complaints,
    "calls": lambda p: p.calls,
    "surveys": lambda p: p.surveys,
    "ledger": lambda p: p.ledger,
}
