"""The self-service hotline: a FastAGI IVR where a member hears their tier, points balance and
the next points expiry, in Chinese or English, with ``0`` to reach an agent.

Dialplan (``docs/asterisk/extensions.conf``, context ``hotline``)::

    [hotline]
    exten => s,1,Answer()
     same => n,AGI(agi://127.0.0.1:4573/hotline)
     same => n,GotoIf($["${HOTLINE_RESULT}" = "agent"]?from-pstn,members,1)
     same => n,Hangup()

The caller ID identifies the member (one match). Several members on that number: the caller
keys in their member number, which must be one of them. An unknown number: the member
number, then the last four digits of a phone on file (so a stranger cannot hear someone
else's balance). Prompts are files in ``sounds/<lang>/`` (``memberline prompts
render``); numbers and dates are spoken word by word (:mod:`surveys.hotline_say`).

What the member heard is kept as a call row (``call_attempts``: ``attempt_key``
``hotline:<uniqueid>``, outcome ``hotline``, the call's Linkedid, the summary in ``notes``),
so the member's history shows it and the pop of the agent who takes the call (same
Linkedid) says what the member just heard. The channel variables ``HOTLINE_RESULT``
(``agent`` | ``done`` | ``hangup``), ``MEMBER_ID`` and ``HOTLINE_HEARD`` are set for the
dialplan and the CDR.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_bridge.db import run_db
from crm_bridge.lookup import find_members_by_phone
from crm_bridge.models import (
    HOTLINE_OUTCOME,
    AuditLog,
    CallAttempt,
    Direction,
    Member,
    MemberPhone,
    PointsLedger,
)
from surveys.agi import ChannelHungUp, SurveyAgiRequest, asterisk_language
from surveys.hotline_say import date_prompts, number_prompts

log = logging.getLogger(__name__)

__all__ = ["HOTLINE_PROMPTS", "HotlineAgi", "HotlineFacts", "heard_summary"]

ROUTE = "hotline"
OUTCOME = HOTLINE_OUTCOME
MEMBER_NO_PREFIXES = ("M",)
"""Printed member numbers are a letter and digits (``M00000042``); keypads give digits only."""
TIERS = ("standard", "silver", "gold", "platinum")
MAX_REPEATS = 5
"""How many times one call hears its figures (``1`` = again) before goodbye."""

HOTLINE_PROMPTS: dict[str, dict[str, str]] = {
    # name: {locale: text}; "both" prompts are spoken in both languages (before we know who calls)
    "hotline-welcome": {
        "zh-CN": "您好，欢迎致电会员服务热线。",
        "en": "Hello, welcome to the member hotline.",
    },
    "hotline-enter-member": {
        "zh-CN": "请输入您的会员号，以井号键结束。",
        "en": "Please enter your member number, then press the hash key.",
    },
    "hotline-enter-phone": {
        "zh-CN": "为核实身份，请输入您登记的手机号码的后四位。",
        "en": "To confirm it is you, please enter the last four digits of your registered phone number.",
    },
    "hotline-not-found": {
        "zh-CN": "抱歉，没有找到这个会员号。",
        "en": "Sorry, we could not find that member number.",
    },
    "hotline-tier-standard": {"zh-CN": "您是普通会员。", "en": "You are a Standard member."},
    "hotline-tier-silver": {"zh-CN": "您是银卡会员。", "en": "You are a Silver member."},
    "hotline-tier-gold": {"zh-CN": "您是金卡会员。", "en": "You are a Gold member."},
    "hotline-tier-platinum": {"zh-CN": "您是白金会员。", "en": "You are a Platinum member."},
    "hotline-balance": {"zh-CN": "您的积分余额为", "en": "Your points balance is"},
    "hotline-points": {"zh-CN": "分。", "en": "points."},
    "hotline-expiry-lead": {"zh-CN": "其中", "en": ""},
    "hotline-expiry-mid": {"zh-CN": "分将于", "en": "points expire on"},
    "hotline-expiry-end": {"zh-CN": "到期。", "en": ""},
    "hotline-no-expiry": {
        "zh-CN": "您目前没有即将到期的积分。",
        "en": "None of your points are due to expire.",
    },
    "hotline-menu": {
        "zh-CN": "重听请按1，转人工服务请按0，结束请挂机。",
        "en": "To hear this again press 1. To speak to an agent press 0. Or hang up to finish.",
    },
    "hotline-menu-unknown": {
        "zh-CN": "转人工服务请按0，结束请挂机。",
        "en": "To speak to an agent press 0, or hang up to finish.",
    },
    "hotline-transfer": {
        "zh-CN": "正在为您转接客服人员，请稍候。",
        "en": "Connecting you to an agent, please hold.",
    },
    "hotline-goodbye": {"zh-CN": "感谢您的来电，再见。", "en": "Thank you for calling. Goodbye."},
}
BILINGUAL = ("hotline-welcome", "hotline-enter-member", "hotline-not-found", "hotline-menu-unknown")
"""Played before the member (and so their language) is known: rendered in both languages,
the channel's language first."""


@dataclass(frozen=True)
class HotlineFacts:
    member_id: int
    member_no: str
    locale: str
    tier: str
    balance: int
    expiry: tuple[dt.date, int] | None
    """The soonest date earned points expire, and how many (capped at the balance)."""


@dataclass
class Heard:
    """What the caller has been told so far (items whose prompts played to the end)."""

    facts: HotlineFacts | None = None
    items: list[str] = field(default_factory=list)
    outcome: str = "hangup"
    identified_by: str = ""
    """``caller_id``, ``member_no`` (one of the members on a shared number) or
    ``member_no+phone`` (unknown number: member number and the last four phone digits)."""


def heard_summary(facts: HotlineFacts | None, items: list[str]) -> str:
    """One line for the agent's pop and the member's history, English then Chinese."""
    if facts is None:
        return "Hotline: caller not identified / 热线：未识别会员"
    en: list[str] = []
    zh: list[str] = []
    if "tier" in items:
        en.append(f"tier {facts.tier.title()}")
        zh.append({"standard": "普通会员", "silver": "银卡会员", "gold": "金卡会员",
                   "platinum": "白金会员"}.get(facts.tier, facts.tier))  # fmt: skip
    if "balance" in items:
        en.append(f"balance {facts.balance:,} points")
        zh.append(f"积分余额 {facts.balance}")
    if "expiry" in items:
        if facts.expiry is None:
            en.append("no points expiring")
            zh.append("暂无到期积分")
        else:
            day, pts = facts.expiry
            en.append(f"{pts:,} points expire {day.isoformat()}")
            zh.append(f"{pts} 积分于 {day.isoformat()} 到期")
    if not en:
        return "Hotline: identified, heard nothing yet / 热线：已识别，尚未听完"
    return f"Hotline heard: {', '.join(en)} / 热线已播报：{'，'.join(zh)}"


# ---------------------------------------------------------------------------- database


def _facts(s: Session, member_id: int, today: dt.date) -> HotlineFacts | None:
    m = s.get(Member, member_id)
    if m is None:
        return None
    row = s.execute(
        select(PointsLedger.expires_on)
        .where(
            PointsLedger.member_id == member_id,
            PointsLedger.delta > 0,
            PointsLedger.expires_on >= today,
        )
        .order_by(PointsLedger.expires_on)
        .limit(1)
    ).first()
    expiry = None
    if row is not None and row[0] is not None and m.points_balance > 0:
        day: dt.date = row[0]
        pts = s.scalar(
            select(func.sum(PointsLedger.delta)).where(
                PointsLedger.member_id == member_id,
                PointsLedger.delta > 0,
                PointsLedger.expires_on == day,
            )
        )
        expiry = (day, min(int(pts or 0), m.points_balance))
    return HotlineFacts(
        m.id, m.member_no, m.locale, str(m.tier.value).lower(), m.points_balance, expiry
    )


def _by_caller(s: Session, caller: str, region: str) -> list[int]:
    return [m.member_id for m in find_members_by_phone(s, caller, region)]


def _by_number(s: Session, digits: str) -> int | None:
    forms = {digits}
    for prefix in MEMBER_NO_PREFIXES:
        for width in {len(digits), 6, 7, 8, 9, 10}:
            forms.add(prefix + digits.zfill(width))
    ids = list(s.scalars(select(Member.id).where(Member.member_no.in_(forms))))
    return ids[0] if len(ids) == 1 else None


def _phone_ends(s: Session, member_id: int, last4: str) -> bool:
    phones = s.scalars(select(MemberPhone.e164).where(MemberPhone.member_id == member_id))
    return any(len(last4) == 4 and p.endswith(last4) for p in phones)


def _record(
    s: Session,
    key: str,
    linkedid: str,
    member_id: int | None,
    notes: str,
    started: dt.datetime,
    identified_by: str = "",
) -> None:
    """The call row of the hotline leg (idempotent per channel) and, when a member's figures
    were read out, an audit row saying so and how the caller was identified."""
    row = s.scalars(select(CallAttempt).where(CallAttempt.attempt_key == key)).one_or_none()
    if row is None and member_id is not None:
        s.add(
            AuditLog(
                actor="hotline",
                action="hotline.self_service",
                member_id=member_id,
                details={"call_id": linkedid, "identified_by": identified_by},
            )
        )
    if row is None:
        row = CallAttempt(
            attempt_key=key,
            direction=Direction.INBOUND,
            linkedid=linkedid,
            started_at=started,
            outcome=OUTCOME,
        )
        s.add(row)
    row.member_id = member_id
    row.notes = notes
    row.ended_at = dt.datetime.now(dt.UTC)
    try:
        s.flush()
    except IntegrityError:  # pragma: no cover - the same channel twice at once
        log.warning("hotline row %s written twice", key)


# ---------------------------------------------------------------------------- the IVR


class HotlineAgi:
    """The ``hotline`` FastAGI route (register :meth:`run` on a :class:`SurveyAgiApplication`)."""

    ROUTE = ROUTE

    def __init__(
        self,
        engine: Engine,
        *,
        region: str = "CN",
        default_locale: str = "zh-CN",
        entry_timeout_ms: int = 8000,
        max_tries: int = 3,
        today: dt.date | None = None,
    ) -> None:
        self.engine = engine
        self.region = region
        self.default_locale = default_locale
        self.entry_timeout_ms = entry_timeout_ms
        self.max_tries = max_tries
        self._today = today

    def today(self) -> dt.date:
        return self._today or dt.datetime.now(dt.UTC).date()

    async def run(self, req: SurveyAgiRequest) -> None:
        started = dt.datetime.now(dt.UTC)
        uniqueid = req.info.uniqueid or ""
        heard = Heard()
        linkedid = uniqueid
        try:
            await req.command("ANSWER")
            linkedid = (await req.get_variable("CHANNEL(linkedid)")) or uniqueid
            await self._set_language(req, self.default_locale)
            await self._dialog(req, heard)
        except ChannelHungUp:
            heard.outcome = "hangup"
            raise
        except Exception:
            # The database or a bug: the member still reaches a person, never a dead line.
            log.exception("hotline %s failed; sending the caller to an agent", uniqueid)
            heard.outcome = "agent"
            await req.set_variable("HOTLINE_RESULT", "agent")
        finally:
            notes = heard_summary(heard.facts, heard.items)
            member_id = heard.facts.member_id if heard.facts else None
            if uniqueid:
                try:
                    await run_db(
                        self.engine,
                        _record,
                        f"hotline:{uniqueid}",
                        linkedid,
                        member_id,
                        notes,
                        started,
                        heard.identified_by,
                    )
                except Exception:
                    log.exception("hotline %s: could not record what was heard", uniqueid)
            log.info("hotline %s: %s (%s)", uniqueid, heard.outcome, notes)

    async def _set_language(self, req: SurveyAgiRequest, locale: str) -> None:
        await req.set_variable("CHANNEL(language)", asterisk_language(locale))

    async def _play(self, req: SurveyAgiRequest, name: str) -> bool:
        """Play one prompt; True when the caller pressed 0 during it."""
        reply = await req.command(f'STREAM FILE {name} "0"')
        if reply.failed:
            if not await req.alive_after_failure():
                raise ChannelHungUp(f"hung up during {name}")
            log.error("hotline: could not play %s (missing sound file?)", name)
            return False
        return reply.result == "48"  # ASCII '0'

    async def _play_all(self, req: SurveyAgiRequest, names: list[str]) -> bool:
        for name in names:
            if await self._play(req, name):
                return True
        return False

    async def _ask(self, req: SurveyAgiRequest, prompt: str, max_digits: int) -> str:
        """GET DATA; the digits, ``""`` on silence."""
        reply = await req.command(f"GET DATA {prompt} {self.entry_timeout_ms} {max_digits}")
        if reply.failed:
            if not await req.alive_after_failure():
                raise ChannelHungUp(f"hung up at {prompt}")
            return ""
        return reply.result or ""

    async def _to_agent(self, req: SurveyAgiRequest, heard: Heard) -> None:
        heard.outcome = "agent"
        if heard.facts is not None:
            await req.set_variable("MEMBER_ID", str(heard.facts.member_id))
        await req.set_variable("HOTLINE_HEARD", heard_summary(heard.facts, heard.items))
        await req.set_variable("HOTLINE_RESULT", "agent")
        await self._play(req, "hotline-transfer")

    async def _identify(self, req: SurveyAgiRequest, heard: Heard) -> int | str | None:
        """The member's id, None (not identified) or ``"agent"`` (pressed 0)."""
        caller = req.info.headers.get("agi_callerid", "")
        matches = await run_db(self.engine, _by_caller, caller, self.region)
        if len(matches) == 1:
            heard.identified_by = "caller_id"
            return int(matches[0])
        for _ in range(self.max_tries):
            digits = await self._ask(req, "hotline-enter-member", 12)
            if digits == "0":
                return "agent"
            if not digits:
                continue
            found = await run_db(self.engine, _by_number, digits)
            if found is not None and matches and found not in matches:
                found = None  # a shared number: only one of its members
            if found is not None and not matches:
                last4 = await self._ask(req, "hotline-enter-phone", 4)
                if last4 == "0":
                    return "agent"
                if not await run_db(self.engine, _phone_ends, found, last4 or ""):
                    found = None
            if found is not None:
                heard.identified_by = "member_no" if matches else "member_no+phone"
                return found
            if await self._play(req, "hotline-not-found"):
                return "agent"
        return None

    def _facts_prompts(self, facts: HotlineFacts) -> list[tuple[str, list[str]]]:
        loc = facts.locale
        out: list[tuple[str, list[str]]] = []
        tier = facts.tier if facts.tier in TIERS else "standard"
        out.append(("tier", [f"hotline-tier-{tier}"]))
        out.append(
            ("balance", ["hotline-balance", *number_prompts(facts.balance, loc), "hotline-points"])
        )
        if facts.expiry is None:
            out.append(("expiry", ["hotline-no-expiry"]))
        else:
            day, pts = facts.expiry
            lead = ["hotline-expiry-lead"] if loc.startswith("zh") else []
            end = ["hotline-expiry-end"] if loc.startswith("zh") else []
            out.append(
                (
                    "expiry",
                    [
                        *lead,
                        *number_prompts(pts, loc),
                        "hotline-expiry-mid",
                        *date_prompts(day, loc),
                        *end,
                    ],
                )
            )
        return out

    async def _dialog(self, req: SurveyAgiRequest, heard: Heard) -> None:
        if await self._play(req, "hotline-welcome"):
            await self._to_agent(req, heard)
            return
        who = await self._identify(req, heard)
        if who == "agent":
            await self._to_agent(req, heard)
            return
        if who is None:
            choice = await self._ask(req, "hotline-menu-unknown", 1)
            if choice == "0":
                await self._to_agent(req, heard)
                return
            heard.outcome = "done"
            await req.set_variable("HOTLINE_RESULT", "done")
            await self._play(req, "hotline-goodbye")
            return
        assert isinstance(who, int)
        facts = await run_db(self.engine, _facts, who, self.today())
        if facts is None:
            return
        heard.facts = facts
        await self._set_language(req, facts.locale)
        await req.set_variable("MEMBER_ID", str(facts.member_id))
        silent = 0
        for _ in range(MAX_REPEATS):
            for item, names in self._facts_prompts(facts):
                if await self._play_all(req, names):
                    await self._to_agent(req, heard)
                    return
                if item not in heard.items:
                    heard.items.append(item)
            choice = await self._ask(req, "hotline-menu", 1)
            if choice == "0":
                await self._to_agent(req, heard)
                return
            if choice == "1":
                continue
            silent += 1
            if silent >= 2 or choice:
                break
        heard.outcome = "done"
        await req.set_variable("HOTLINE_RESULT", "done")
        await req.set_variable("HOTLINE_HEARD", heard_summary(facts, heard.items))
        await self._play(req, "hotline-goodbye")


def hotline_texts(locale: str) -> dict[str, list[tuple[str, str]]]:
    """Prompt name -> the (locale, text) segments rendered into ``sounds/<locale>/``."""
    other = "en" if locale.startswith("zh") else "zh-CN"
    out: dict[str, list[tuple[str, str]]] = {}
    for name, texts in HOTLINE_PROMPTS.items():
        own = texts["zh-CN" if locale.startswith("zh") else "en"]
        segs = [(locale, own)] if own else []
        if name in BILINGUAL:
            segs.append((other, texts[other]))
        if segs:
            out[name] = segs
    from surveys.hotline_say import NUMBER_WORDS

    lang = "zh" if locale.startswith("zh") else "en"
    for name, text in NUMBER_WORDS[lang].items():
        out[name] = [(locale, text)]
    return out
