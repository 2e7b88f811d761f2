"""Typed views of the hub's push and result dicts (pure: no Textual, no I/O).

The hub protocol (:mod:`cti.hubproto.messages`) names the data shapes (``Profile``,
``MemberSummary``, ``AgentState`` ...) without pinning every key, so the parsers here
are tolerant: they accept the obvious aliases (``id``/``member_id``,
``points``/``points_balance`` ...) and never raise on a missing key. Whatever the hub
sends, the console shows what it can and a dash for the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

Record = Mapping[str, Any]
"""One row of history as the hub sent it (a purchase, an inquiry, a ledger line ...)."""


def _first(data: Record, *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = data.get(key)
        if value is not None:
            return value
    return default


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (or epoch seconds) as an aware datetime; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _records(value: Any) -> tuple[Record, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    return tuple(r for r in value if isinstance(r, Mapping))


def _agent_label(value: Any) -> str:
    if isinstance(value, Mapping):
        code, name = _str(value.get("code")), _str(value.get("name"))
        return f"{name} ({code})" if name and code else name or code
    return _str(value)


@dataclass(frozen=True)
class AgentInfo:
    code: str
    name: str
    role: str
    extension: str

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"


@dataclass(frozen=True)
class WinbackReason:
    code: str
    label_en: str
    label_zh: str
    needs_note: bool

    @property
    def label(self) -> str:
        return f"{self.label_en} · {self.label_zh}"


@dataclass(frozen=True)
class Session:
    """The login result: who we are and the configured codes."""

    agent: AgentInfo
    pause_reasons: tuple[str, ...]
    dispositions: tuple[tuple[str, str], ...]
    """(hotkey, code) pairs, in the configured order."""
    winback_reasons: tuple[WinbackReason, ...] = ()
    """Why a member stopped buying: asked at the wrap-up of an answered win-back call."""

    @classmethod
    def parse(cls, data: Record) -> Session:
        agent = data.get("agent") or {}
        dispositions: list[tuple[str, str]] = []
        for item in data.get("dispositions") or ():
            if isinstance(item, Sequence) and not isinstance(item, str) and len(item) >= 2:
                dispositions.append((str(item[0]), str(item[1])))
            elif isinstance(item, Mapping):
                dispositions.append((_str(item.get("hotkey")), _str(item.get("code"))))
        return cls(
            agent=AgentInfo(
                code=_str(agent.get("code")),
                name=_str(agent.get("name")),
                role=_str(agent.get("role")) or "agent",
                extension=_str(agent.get("extension")),
            ),
            pause_reasons=tuple(str(r) for r in data.get("pause_reasons") or ()),
            dispositions=tuple(dispositions),
            winback_reasons=tuple(
                WinbackReason(str(r[0]), str(r[1]), str(r[2]), bool(r[3]) if len(r) > 3 else False)
                for r in data.get("winback_reasons") or ()
                if isinstance(r, Sequence) and not isinstance(r, str) and len(r) >= 3
            ),
        )


AGENT_STATES = ("logged_out", "available", "ringing", "on_call", "wrap_up", "paused")


@dataclass(frozen=True)
class AgentState:
    state: str
    reason: str | None
    since: dt.datetime | None
    calls_today: int = 0
    talk_s_today: int = 0
    code: str = ""
    name: str = ""
    queues: tuple[str, ...] = ()
    next_pause: str | None = None
    """A pause asked for during a call or wrap-up, applied when the wrap-up ends."""
    unfinished: int = 0
    """Unfinished wrap-ups (``agents_list`` rows for supervisors)."""

    @classmethod
    def parse(cls, data: Record) -> AgentState:
        queues = data.get("queues")
        return cls(
            next_pause=data.get("next_pause") or None,
            unfinished=_int(data.get("unfinished")),
            state=_str(data.get("state")) or "logged_out",
            reason=data.get("reason") or None,
            since=parse_time(data.get("since")),
            calls_today=_int(data.get("calls_today")),
            talk_s_today=_int(data.get("talk_s_today")),
            code=_str(_first(data, "agent", "code")),
            name=_str(data.get("name")),
            queues=tuple(str(q) for q in queues) if isinstance(queues, list) else (),
        )


@dataclass(frozen=True)
class CallState:
    call_id: str
    state: str
    direction: str
    member_id: int | None
    since: dt.datetime | None
    hangup_by: str | None
    wrapup_due: bool | None = None
    """The hub says this agent owes the call's disposition (None: a hub that does not say)."""
    agent: str = ""
    """The agent who answered it (owns it)."""
    campaign: str = ""

    @classmethod
    def parse(cls, data: Record) -> CallState:
        member_id = data.get("member_id")
        due = data.get("wrapup_due")
        return cls(
            wrapup_due=bool(due) if isinstance(due, bool) else None,
            agent=_str(data.get("agent")),
            campaign=_str(data.get("campaign")),
            call_id=_str(data.get("call_id")),
            state=_str(data.get("state")),
            direction=_str(data.get("direction")),
            member_id=_int(member_id) if member_id is not None else None,
            since=parse_time(data.get("since")),
            hangup_by=data.get("hangup_by") or None,
        )


@dataclass(frozen=True)
class MemberSummary:
    member_id: int
    member_no: str
    name: str
    tier: str
    phone_masked: str
    points: int | None = None
    maintaining_agent: str = ""

    @classmethod
    def parse(cls, data: Record) -> MemberSummary:
        phones = data.get("phones_masked") or data.get("phones")
        phone = _first(data, "phone_masked", "number_masked", "phone_e164", "phone")
        if phone is None and isinstance(phones, list) and phones:
            phone = phones[0]
        points = _first(data, "points_balance", "points")
        return cls(
            member_id=_int(_first(data, "member_id", "id")),
            member_no=_str(data.get("member_no")),
            name=_str(data.get("name")),
            tier=_str(data.get("tier")),
            phone_masked=_str(phone),
            points=_int(points) if points is not None else None,
            maintaining_agent=_maintainer(data),
        )


@dataclass(frozen=True)
class Preview:
    """A preview campaign's card: one member offered to this agent (``preview`` push)."""

    entry_id: int
    campaign: str
    reason: str
    attempts: int
    member: MemberSummary
    withdrawn: bool = False

    @classmethod
    def parse(cls, data: Record) -> Preview:
        member = data.get("member")
        return cls(
            entry_id=_int(data.get("entry_id")),
            campaign=_str(data.get("campaign")),
            reason=_str(data.get("reason")),
            attempts=_int(data.get("attempts")),
            member=MemberSummary.parse(member if isinstance(member, dict) else {}),
            withdrawn=bool(data.get("withdrawn")),
        )


def _maintainer(data: Record) -> str:
    """The maintaining agent from ``maintaining_agent`` (dict or text) or the flat columns."""
    label = _agent_label(_first(data, "maintaining_agent", "maintainer"))
    if label:
        return label
    name = _str(data.get("maintaining_agent_name"))
    code = _str(data.get("maintaining_agent_code"))
    if name or code:
        return f"{name} ({code})" if name and code else name or code
    agent_id = data.get("maintaining_agent_id")
    return f"#{agent_id}" if agent_id is not None else ""


@dataclass(frozen=True)
class Profile:
    """Everything the pop and the profile screen show about one member."""

    member_id: int
    member_no: str
    name: str
    tier: str
    phones_masked: tuple[str, ...]
    member_since: str
    points: int
    lifecycle: str
    rfm: str
    maintaining_agent: str
    timezone: str
    locale: str
    next_best_actions: tuple[str, ...]
    purchases: tuple[Record, ...] = ()
    inquiries: tuple[Record, ...] = ()
    complaints: tuple[Record, ...] = ()
    calls: tuple[Record, ...] = ()
    surveys: tuple[Record, ...] = ()
    ledger: tuple[Record, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    fillable: tuple[str, ...] = ()
    """Missing items of the file the agent can fill in now (F10), from the missing_data hint."""

    @property
    def phone_masked(self) -> str:
        return self.phones_masked[0] if self.phones_masked else ""

    @classmethod
    def parse(cls, data: Record) -> Profile:
        member = data.get("member") if isinstance(data.get("member"), Mapping) else data
        assert isinstance(member, Mapping)
        phones = _first(data, "phones_masked", "phones")
        if phones is None:
            phones = _first(member, "phones_masked", "phones")
        if isinstance(phones, list):
            phone_list = tuple(
                _str(p.get("number_masked") or p.get("e164") or p.get("masked"))
                if isinstance(p, Mapping)
                else _str(p)
                for p in phones
            )
        else:
            single = _first(member, "phone_masked", "number_masked")
            phone_list = (str(single),) if single else ()
        segment = data.get("segment") if isinstance(data.get("segment"), Mapping) else member
        assert isinstance(segment, Mapping)
        rfm = _first(segment, "rfm", "rfm_class", default="")
        if isinstance(rfm, Mapping):
            rfm = "".join(_str(rfm.get(k)) for k in ("r", "f", "m"))
        nba = _first(data, "next_best_actions", "next_best_action", "nba", "hints", default=())
        zh = _str(member.get("locale")).startswith("zh")
        fillable: tuple[str, ...] = ()
        for hint in nba if isinstance(nba, list) else ():
            if isinstance(hint, Mapping) and hint.get("code") == "missing_data":
                facts = hint.get("data")
                if isinstance(facts, Mapping):
                    fillable = tuple(str(f) for f in facts.get("fillable") or ())
        if isinstance(nba, str):
            actions: tuple[str, ...] = (nba,)
        elif isinstance(nba, Mapping):
            actions = (_nba_text(nba, zh),)
        else:
            actions = tuple(_nba_text(a, zh) if isinstance(a, Mapping) else str(a) for a in nba)
        return cls(
            member_id=_int(_first(member, "member_id", "id")),
            member_no=_str(member.get("member_no")),
            name=_str(member.get("name")),
            tier=_str(member.get("tier")),
            phones_masked=phone_list,
            member_since=_str(_first(member, "member_since", "joined_on"))[:10],
            points=_int(_first(member, "points_balance", "points")),
            lifecycle=_str(_first(segment, "lifecycle")),
            rfm=_str(rfm),
            maintaining_agent=_maintainer(member),
            timezone=_str(member.get("timezone")) or "Asia/Shanghai",
            locale=_str(member.get("locale")),
            next_best_actions=actions,
            fillable=fillable,
            purchases=_records(data.get("purchases")),
            inquiries=_records(_first(data, "inquiries", "open_inquiries")),
            complaints=_records(data.get("complaints")),
            calls=_records(_first(data, "calls", "call_history")),
            surveys=_records(_first(data, "surveys", "survey_responses")),
            ledger=_records(_first(data, "points_ledger", "ledger")),
            extra=dict(data),
        )

    def with_points(self, balance: int, entry: Record | None = None) -> Profile:
        """The same profile after a redemption: new balance, the new ledger line first."""
        ledger = (entry, *self.ledger) if entry is not None else self.ledger
        return replace(self, points=balance, ledger=ledger)


def _nba_text(item: Record, zh: bool = False) -> str:
    keys = ("text_zh", "text", "title", "action", "label") if zh else ("text", "title", "action")
    text = _str(_first(item, *keys))
    why = _str(_first(item, "reason", "why"))
    return f"{text} — {why}" if text and why else text or why


@dataclass(frozen=True)
class ScreenPop:
    call_id: str
    queue: str
    caller_number: str
    caller_name: str
    kind: str
    """member | chooser | unknown"""
    profile: Profile | None
    matches: tuple[MemberSummary, ...]
    your_member: bool = False
    """The caller is a member this agent maintains (maintainer-first routing)."""
    ivr: str = ""
    """What the caller just heard on the self-service hotline."""

    @classmethod
    def parse(cls, data: Record) -> ScreenPop:
        caller = data.get("caller") or {}
        profile = data.get("profile")
        return cls(
            call_id=_str(data.get("call_id")),
            queue=_str(data.get("queue")),
            caller_number=_str(caller.get("number_masked")),
            caller_name=_str(caller.get("name")),
            kind=_str(data.get("kind")) or ("member" if profile else "unknown"),
            profile=Profile.parse(profile) if isinstance(profile, Mapping) else None,
            matches=tuple(MemberSummary.parse(m) for m in _records(data.get("matches"))),
            your_member=data.get("your_member") is True,
            ivr=_str(data.get("ivr")),
        )


@dataclass(frozen=True)
class Campaign:
    campaign_id: int
    name: str
    kind: str
    mode: str
    status: str
    total: int
    done: int
    outcomes: Mapping[str, int]

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 0.0

    @classmethod
    def parse(cls, data: Record) -> Campaign:
        outcomes_raw = _first(data, "outcomes", "dispositions", default={})
        outcomes = (
            {str(k): _int(v) for k, v in outcomes_raw.items()}
            if isinstance(outcomes_raw, Mapping)
            else {}
        )
        progress = data.get("progress")
        entries = data.get("entries")
        total = _int(data.get("total"), _int(entries) if not isinstance(entries, Mapping) else 0)
        if isinstance(entries, Mapping) and not total:
            total = sum(_int(v) for v in entries.values())
        done = _int(_first(data, "done", "completed"))
        if isinstance(progress, Mapping):
            total = _int(_first(progress, "total", "entries"), total)
            done = _int(_first(progress, "done", "completed"), done)
        elif isinstance(progress, int | float) and not done:
            done = round(float(progress) * total)
        return cls(
            campaign_id=_int(_first(data, "campaign_id", "id")),
            name=_str(data.get("name")),
            kind=_str(data.get("kind")),
            mode=_str(data.get("mode")),
            status=_str(data.get("status")),
            total=total,
            done=done,
            outcomes=outcomes,
        )


@dataclass(frozen=True)
class Wallboard:
    agents: tuple[AgentState, ...]
    waiting: int
    ringing: int
    talking: int
    abandon_rate: float | None
    abandon_cap: float | None
    contact_rate: float | None
    utilization: float | None
    history: Mapping[str, tuple[float, ...]]
    """Series for the sparklines (the last hour), keyed like the figures."""
    outbox_review: int = 0
    """Outbox messages that may have been sent and need a person (``outbox list --review``)."""

    @classmethod
    def parse(cls, data: Record) -> Wallboard:
        history_raw = data.get("history") or {}
        history: dict[str, tuple[float, ...]] = {}
        if isinstance(history_raw, Mapping):
            for key, series in history_raw.items():
                if isinstance(series, list):
                    values = [_float(v) for v in series]
                    history[str(key)] = tuple(v for v in values if v is not None)
        return cls(
            agents=tuple(AgentState.parse(a) for a in _records(data.get("agents"))),
            waiting=_int(data.get("waiting")),
            ringing=_int(data.get("ringing")),
            talking=_int(data.get("talking")),
            abandon_rate=_float(data.get("abandon_rate")),
            abandon_cap=_float(data.get("abandon_cap")),
            contact_rate=_float(data.get("contact_rate")),
            utilization=_float(data.get("utilization")),
            history=history,
            outbox_review=_int(data.get("outbox_review")),
        )


@dataclass(frozen=True)
class SurveyRow:
    period: str
    responses: int
    csat: float | None
    nps: float | None

    @classmethod
    def parse(cls, data: Record) -> SurveyRow:
        return cls(
            period=_str(_first(data, "week", "period", "label", "key", "date")),
            responses=_int(_first(data, "responses", "n", "count", "started")),
            csat=_float(_first(data, "csat", "csat_pct")),
            nps=_float(data.get("nps")),
        )


def format_duration(seconds: float) -> str:
    """``75`` -> ``01:15``; an hour or more -> ``1:02:03``."""
    s = max(0, int(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def format_pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"
