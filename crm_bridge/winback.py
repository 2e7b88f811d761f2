"""Win-back analysis: why dormant members stopped buying, and whether the call brought them back.

Definitions (one place; the CLI table, the HTML page and the JSON all use them):

- a **contact** is one member on one win-back campaign (``dormant_winback``) with at least
  one call attempt started in the period; several attempts to the same member are one
  contact;
- **reached**: one of its attempts was answered (``answered_at`` set); the contact's time is
  the first answer, or the last attempt when never reached;
- **reason**: the reason recorded at the wrap-up of the answered call (``call_attempts.reason``);
- **won back within N days**: the member bought within N days after the contact's time;
  the **win-back rate** at N days is won / contacts old enough to tell (contact time at
  least N days before the report's ``now``), for reached and not-reached contacts apart
  (the not-reached are the baseline: members who came back without a conversation).

One SELECT reads a row per contact (its attempts grouped, the member's next purchase after
the contact, tier, maintainer, home store = the store of the latest purchase); the grouping
into buckets is done in Python on those rows.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select, type_coerce
from sqlalchemy.orm import Session, aliased

from crm_bridge.models import (
    Agent,
    CallAttempt,
    Campaign,
    CampaignKind,
    Member,
    Purchase,
    UTCDateTime,
)

__all__ = ["By", "WinbackGroup", "WinbackReport", "winback_report"]

WINDOWS = (30, 60)


class By(enum.StrEnum):
    STORE = "store"
    MAINTAINER = "maintainer"
    TIER = "tier"
    REASON = "reason"


@dataclass
class WinbackGroup:
    key: str
    label: str
    contacts: int = 0
    reached: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    eligible: dict[tuple[bool, int], int] = field(default_factory=dict)
    """(reached, window days) -> contacts old enough to judge."""
    won: dict[tuple[bool, int], int] = field(default_factory=dict)
    """(reached, window days) -> of those, members who bought within the window."""

    @property
    def not_reached(self) -> int:
        return self.contacts - self.reached

    def rate(self, reached: bool, days: int) -> float | None:
        n = self.eligible.get((reached, days), 0)
        return None if n == 0 else 100.0 * self.won.get((reached, days), 0) / n

    def add(
        self, reached: bool, reason: str | None, age_days: float, gap_days: float | None
    ) -> None:
        self.contacts += 1
        if reached:
            self.reached += 1
            code = reason or "(none)"
            self.reasons[code] = self.reasons.get(code, 0) + 1
        for days in WINDOWS:
            if age_days >= days:
                k = (reached, days)
                self.eligible[k] = self.eligible.get(k, 0) + 1
                if gap_days is not None and gap_days <= days:
                    self.won[k] = self.won.get(k, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "contacts": self.contacts,
            "reached": self.reached,
            "not_reached": self.not_reached,
            "reasons": dict(sorted(self.reasons.items())),
            **{
                f"winback_{days}d_{'reached' if r else 'not_reached'}": {
                    "eligible": self.eligible.get((r, days), 0),
                    "won": self.won.get((r, days), 0),
                    "rate_pct": self.rate(r, days),
                }
                for days in WINDOWS
                for r in (True, False)
            },
        }


@dataclass(frozen=True)
class WinbackReport:
    since: dt.datetime
    now: dt.datetime
    by: By
    groups: list[WinbackGroup]
    total: WinbackGroup
    reason_labels: dict[str, tuple[str, str]]
    """code -> (English, Chinese)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "now": self.now.isoformat(),
            "by": self.by.value,
            "groups": [g.to_dict() for g in self.groups],
            "total": self.total.to_dict(),
        }


def _contacts(session: Session, since: dt.datetime) -> Any:
    reached_at = func.min(CallAttempt.answered_at)
    contacts = (
        select(
            CallAttempt.member_id.label("member_id"),
            reached_at.label("reached_at"),
            func.max(CallAttempt.started_at).label("last_at"),
            func.max(case((CallAttempt.answered_at.is_not(None), CallAttempt.reason))).label(
                "reason"
            ),
        )
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .where(
            Campaign.kind == CampaignKind.DORMANT_WINBACK,
            CallAttempt.started_at >= since,
            CallAttempt.member_id.is_not(None),
            CallAttempt.entry_id.is_not(None),
        )
        .group_by(CallAttempt.entry_id, CallAttempt.member_id)
        .subquery("contacts")
    )
    at = func.coalesce(contacts.c.reached_at, contacts.c.last_at)
    next_purchase = (
        select(func.min(Purchase.purchased_at))
        .where(Purchase.member_id == contacts.c.member_id, Purchase.purchased_at > at)
        .scalar_subquery()
    )
    home_store = (
        select(Purchase.store)
        .where(Purchase.member_id == contacts.c.member_id)
        .order_by(Purchase.purchased_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    maint = aliased(Agent)
    return (
        select(
            contacts.c.reached_at,
            type_coerce(at, UTCDateTime()).label("at"),
            contacts.c.reason,
            type_coerce(next_purchase, UTCDateTime()).label("next_purchase"),
            Member.tier,
            maint.code,
            maint.name,
            home_store.label("store"),
        )
        .select_from(contacts)
        .join(Member, Member.id == contacts.c.member_id)
        .outerjoin(maint, maint.id == Member.maintaining_agent_id)
    )


def winback_report(
    session: Session,
    since: dt.date | dt.datetime,
    by: By | str = By.REASON,
    *,
    now: dt.datetime | None = None,
    reasons: Sequence[tuple[str, str, str]] = (),
) -> WinbackReport:
    """The win-back figures for contacts from ``since`` (a date = its 00:00 UTC)."""
    by = By(by)
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(since, dt.datetime):
        since = dt.datetime(since.year, since.month, since.day, tzinfo=dt.UTC)
    labels = {code: (en, zh) for code, en, zh in reasons}
    groups: dict[str, WinbackGroup] = {}
    total = WinbackGroup("all", "All")
    for reached_at, at, reason, nxt, tier, m_code, m_name, store in session.execute(
        _contacts(session, since)
    ):
        reached = reached_at is not None
        age = (now - at).total_seconds() / 86400
        gap = None if nxt is None or nxt > now else (nxt - at).total_seconds() / 86400
        if by is By.REASON:
            key = (reason or "(none)") if reached else "(not reached)"
            en_zh = labels.get(key)
            label = f"{en_zh[0]} · {en_zh[1]}" if en_zh else key
        elif by is By.TIER:
            key = label = str(getattr(tier, "value", tier))
        elif by is By.MAINTAINER:
            key = m_code or "(none)"
            label = f"{m_name} ({m_code})" if m_code else "(no maintainer)"
        else:
            key = label = store or "(no purchase)"
        g = groups.setdefault(key, WinbackGroup(key, label))
        g.add(reached, reason, age, gap)
        total.add(reached, reason, age, gap)
    return WinbackReport(
        since=since,
        now=now,
        by=by,
        groups=sorted(groups.values(), key=lambda g: (-g.contacts, g.key)),
        total=total,
        reason_labels=labels,
    )


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


HEAD = ("Contacts", "Reached", "Not reached", "Won 30d (reached)", "Won 60d (reached)",
        "Won 30d (not reached)", "Won 60d (not reached)")  # fmt: skip


def row_cells(g: WinbackGroup) -> list[str]:
    def won(r: bool, d: int) -> str:
        return f"{fmt(g.rate(r, d))} ({g.won.get((r, d), 0)}/{g.eligible.get((r, d), 0)})"

    return [str(g.contacts), str(g.reached), str(g.not_reached),
            won(True, 30), won(True, 60), won(False, 30), won(False, 60)]  # fmt: skip


def format_table(report: WinbackReport) -> list[list[str]]:
    head = [report.by.value.capitalize(), *HEAD]
    return [
        head,
        *([g.label, *row_cells(g)] for g in report.groups),
        ["Total", *row_cells(report.total)],
    ]


def render_html(report: WinbackReport) -> str:
    from crm_bridge.report_html import Page, Table, render_page
    from surveys.charts import bar_chart

    palette = (
        "#2f7ed8",
        "#8e44ad",
        "#e67e22",
        "#27ae60",
        "#c0392b",
        "#16a085",
        "#f1c40f",
        "#7f8c8d",
    )
    t = report.total
    reason_rows = sorted(t.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    charts = [
        bar_chart(
            "Why members stopped buying (reached contacts)",
            [
                (report.reason_labels.get(code, (code, ""))[0], n, palette[i % len(palette)])
                for i, (code, n) in enumerate(reason_rows)
            ],
            x_title="reason recorded at the wrap-up",
        ),
        bar_chart(
            "Contacts reached / not reached",
            [("reached", t.reached, "#27ae60"), ("not reached", t.not_reached, "#c0392b")],
        ),
        bar_chart(
            "Won back: bought within 30 / 60 days (reached vs not reached)",
            [
                ("30d reached", t.won.get((True, 30), 0), "#27ae60"),
                ("60d reached", t.won.get((True, 60), 0), "#1e8449"),
                ("30d not reached", t.won.get((False, 30), 0), "#e67e22"),
                ("60d not reached", t.won.get((False, 60), 0), "#a04000"),
            ],
            x_title="members who bought again",
        ),
    ]
    table = format_table(report)
    reasons_table = Table(
        "Reasons",
        ("Reason", "原因", "Contacts", "Share"),
        [
            [
                *report.reason_labels.get(code, (code, "")),
                str(n),
                fmt(100.0 * n / t.reached if t.reached else None),
            ]
            for code, n in reason_rows
        ],
    )
    page = Page(
        title="Win-back report · 流失会员挽回",
        subtitle=f"contacts since {report.since.date().isoformat()} · grouped by {report.by.value}"
        f" · generated {report.now.strftime('%Y-%m-%d %H:%M UTC')}",
        kpis=(
            (str(t.contacts), "Contacts"),
            (str(t.reached), "Reached"),
            (fmt(t.rate(True, 30)), "Win-back rate 30 days (reached)"),
            (fmt(t.rate(True, 60)), "Win-back rate 60 days (reached)"),
            (fmt(t.rate(False, 60)), "Came back anyway, 60 days (not reached)"),
        ),
        charts=charts,
        tables=(Table(f"By {report.by.value}", table[0], table[1:-1], table[-1]), reasons_table),
        notes="A contact is one member on one win-back campaign with a call in the period; reached ="
        " an answered call. Won back within N days = a purchase within N days after the call"
        " (the first answered call, else the last attempt); a rate counts only contacts at least"
        " N days old (won/eligible in brackets). Not-reached contacts are the baseline.",
    )
    return render_page(page)
