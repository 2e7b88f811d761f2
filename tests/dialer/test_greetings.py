"""Birthday and holiday greetings: the occasions of a day (leap days, multi-day holidays,
catch-up), and exactly one greeting per member, occasion and year through the outbox --
over repeated runs, concurrent runs and a run killed part-way."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, func, insert, select

from crm_bridge.db import make_engine, session_scope
from crm_bridge.migrate import upgrade
from crm_bridge.models import Member, MemberGreeting, MemberPhone, OutboxMessage
from dialer.fallback.purposes import Purpose
from dialer.fallback.templates import render_sms
from dialer.greetings import birthday_occasions, holiday_occasions, run_greetings

CN = ("Chinese New Year (Spring Festival)", "Mid-Autumn Festival")


def test_holidays_are_greeted_on_their_first_day_with_local_names() -> None:
    (spring,) = holiday_occasions(dt.date(2026, 2, 17), "CN", CN)
    assert (spring.key, spring.day) == ("chinese_new_year_spring_festival", dt.date(2026, 2, 17))
    assert spring.names["zh-CN"] == "春节" and spring.names["en"] == CN[0]
    # the second and third days of the festival are not occasions of their own
    assert holiday_occasions(dt.date(2026, 2, 18), "CN", CN) == []
    # ... but a run two days late catches up
    assert [o.day for o in holiday_occasions(dt.date(2026, 2, 19), "CN", CN, 2)] == [spring.day]
    (moon,) = holiday_occasions(dt.date(2026, 9, 25), "CN", CN)
    assert moon.names["zh-CN"] == "中秋节" and moon.names["zh-TW"] == "中秋節"
    # Mid-Autumn on National Day (1 Oct 2020): both names are on that date; ours is picked
    (moon2020,) = holiday_occasions(dt.date(2020, 10, 1), "CN", CN)
    assert moon2020.names["zh-CN"] == "中秋节"
    assert holiday_occasions(dt.date(2026, 9, 25), "CN", ("National Day",)) == []
    # Spring Festival early in January's neighbour year: 29 Jan 2025, looked up across years
    assert [o.day for o in holiday_occasions(dt.date(2025, 1, 30), "CN", CN, 2)] == [
        dt.date(2025, 1, 29)
    ]


def test_leap_day_birthdays() -> None:
    def days(d: dt.date, back: int = 0) -> list[tuple[str, int, int]]:
        return [(o.day.isoformat(), m, dd) for o, m, dd in birthday_occasions(d, back)]

    assert days(dt.date(2027, 2, 28)) == [("2027-02-28", 2, 28), ("2027-02-28", 2, 29)]
    assert days(dt.date(2028, 2, 28)) == [("2028-02-28", 2, 28)]
    assert days(dt.date(2028, 2, 29)) == [("2028-02-29", 2, 29)]
    assert days(dt.date(2027, 3, 1), 1) == [("2027-02-28", 2, 28), ("2027-02-28", 2, 29),
                                            ("2027-03-01", 3, 1)]  # fmt: skip
    # month ends and the turn of the year
    assert days(dt.date(2027, 1, 1), 1) == [("2026-12-31", 12, 31), ("2027-01-01", 1, 1)]


def test_holiday_templates_in_both_languages() -> None:
    zh = render_sms(Purpose.HOLIDAY, "zh-CN", {"name": "李伟", "holiday": "春节"})
    en = render_sms(Purpose.HOLIDAY, "en", {"name": "Ann", "holiday": "Mid-Autumn Festival"})
    assert zh == "【会员中心】李伟，春节快乐！祝您和家人节日愉快。"
    assert en.startswith("Happy Mid-Autumn Festival, Ann!")


def _member(s, no: str, birthday: dt.date | None, **kw) -> int:
    m = Member(member_no=no, name=no, joined_on=dt.date(2020, 1, 1), birthday=birthday, **kw)
    m.phones.append(MemberPhone(e164=f"+86139{int(no[1:]):08d}"))
    s.add(m)
    s.flush()
    return m.id


def _sms(engine: Engine) -> dict[tuple[int, str], int]:
    """(member, purpose/ref) -> SMS rows."""
    with session_scope(engine) as s:
        rows = s.execute(
            select(
                OutboxMessage.member_id, OutboxMessage.idempotency_key, OutboxMessage.payload
            ).where(OutboxMessage.channel == "sms")
        ).all()
    out: dict[tuple[int, str], int] = {}
    for mid, key, _payload in rows:
        k = (mid, key.split(":")[1])
        out[k] = out.get(k, 0) + 1
    return out


def test_exactly_once_over_repeated_runs_and_years(engine: Engine) -> None:
    with session_scope(engine) as s:
        zh = _member(s, "M1", dt.date(1990, 2, 17), locale="zh-CN")
        en = _member(s, "M2", dt.date(1988, 2, 29), locale="en")
        none = _member(s, "M3", dt.date(1990, 2, 17), consent_sms=False, consent_email=False)
        mail = _member(s, "M4", None, consent_sms=False, email="m4@example.com")
        other = _member(s, "M5", dt.date(1990, 6, 1))
    for _ in range(3):  # Spring Festival 2026 is 17 Feb; three runs that day
        run = run_greetings(engine, dt.date(2026, 2, 17), holidays=CN, catch_up_days=0)
    assert run.total == 0  # the last run found everything done
    got = _sms(engine)
    assert got == {
        (zh, "birthday/2026"): 1,
        (zh, "chinese_new_year_spring_festival/2026"): 1,
        (en, "chinese_new_year_spring_festival/2026"): 1,
        (mail, "chinese_new_year_spring_festival/2026"): 1,  # an SMS row, skipped: no consent
        (other, "chinese_new_year_spring_festival/2026"): 1,
    }
    assert none not in {m for m, _ in got}
    with session_scope(engine) as s:
        payloads = {
            (m, p["holiday"])
            for m, p in s.execute(
                select(OutboxMessage.member_id, OutboxMessage.payload).where(
                    OutboxMessage.purpose == "holiday", OutboxMessage.channel == "sms"
                )
            )
        }
        assert (zh, "春节") in payloads and (en, CN[0]) in payloads
        # SMS first, the email only if the SMS fails: one greeting, not two
        emails = s.scalars(
            select(OutboxMessage.next_attempt_at).where(
                OutboxMessage.member_id == mail, OutboxMessage.channel == "email"
            )
        ).all()
        assert len(emails) == 1
    # the leap-day member on 28 Feb of a common year; run late by a day with catch-up
    first = run_greetings(engine, dt.date(2027, 3, 1), holidays=CN, catch_up_days=1)
    assert first.queued.get("birthday") == 1
    assert run_greetings(engine, dt.date(2027, 3, 1), holidays=CN, catch_up_days=1).total == 0
    assert _sms(engine)[(en, "birthday/2027")] == 1
    # a year later: greeted again, once
    run_greetings(engine, dt.date(2027, 2, 6), holidays=CN, catch_up_days=0)  # Spring Festival 2027
    assert _sms(engine)[(zh, "chinese_new_year_spring_festival/2027")] == 1


def test_concurrent_runs_greet_once(engine: Engine) -> None:
    with session_scope(engine) as s:
        ids = [_member(s, f"M{i}", dt.date(1980, 5, 20)) for i in range(1, 301)]
    errors: list[BaseException] = []

    def go() -> None:
        try:
            run_greetings(engine, dt.date(2026, 5, 20), holidays=(), catch_up_days=0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    got = _sms(engine)
    assert sorted(m for m, _ in got) == ids and set(got.values()) == {1}


def test_a_killed_run_then_a_restart_sends_each_greeting_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    upgrade(url)
    engine = make_engine(url)
    n = 6000
    with session_scope(engine) as s:
        s.execute(insert(Member), [
            {"member_no": f"K{i:05d}", "name": f"K{i}", "joined_on": dt.date(2020, 1, 1),
             "birthday": dt.date(1985, 8, 8), "locale": "zh-CN", "timezone": "Asia/Shanghai"}
            for i in range(n)
        ])  # fmt: skip
        s.execute(insert(MemberPhone), [
            {"member_id": mid, "e164": f"+8613{mid:09d}", "kind": "mobile"}
            for mid in s.scalars(select(Member.id))
        ])  # fmt: skip
    cmd = [sys.executable, "-m", "memberline", "greetings", "run", "--date", "2026-08-08",
           "--db", url]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    deadline = time.monotonic() + 120
    keys = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with session_scope(engine) as s:
            keys = int(s.scalar(select(func.count()).select_from(MemberGreeting)) or 0)
        if keys > 0:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(30)
    killed = proc.returncode == -signal.SIGKILL
    with session_scope(engine) as s:
        partial = int(s.scalar(select(func.count()).select_from(MemberGreeting)) or 0)
        sms = int(s.scalar(select(func.count()).select_from(OutboxMessage)
                           .where(OutboxMessage.channel == "sms")) or 0)  # fmt: skip
    assert sms == partial  # every committed key has its message, and no message lacks a key
    assert killed and 0 < partial < n, (proc.returncode, partial)  # really cut part-way
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    assert "queued" in done.stdout
    got = _sms(engine)
    assert len(got) == n and set(got.values()) == {1}
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(MemberGreeting)) == n
    engine.dispose()


async def test_serve_runs_the_greetings_daily_and_stops(sqlite_url: str) -> None:
    import asyncio

    from memberline.config import Config
    from memberline.stack import greetings_loop

    engine = make_engine(sqlite_url)
    with session_scope(engine) as s:
        mid = _member(s, "M1", dt.date(1990, 8, 8))
    now = [dt.datetime(2026, 8, 8, 7, 0, tzinfo=dt.UTC)]
    stop = asyncio.Event()
    task = asyncio.create_task(greetings_loop(engine, Config(), stop, clock=lambda: now[0]))
    async with asyncio.timeout(30):
        while not _sms(engine):  # noqa: ASYNC110 - rows written on the loop's worker thread
            await asyncio.sleep(0.05)
    assert _sms(engine) == {(mid, "birthday/2026"): 1}
    stop.set()
    async with asyncio.timeout(10):
        await task
    # a restart the same day (a new loop: one pass, then stopped) queues nothing more, and a
    # member whose birthday it also is gets theirs
    with session_scope(engine) as s:
        late = _member(s, "M2", dt.date(1991, 8, 8))
    stop2 = asyncio.Event()
    stop2.set()
    await greetings_loop(engine, Config(), stop2, clock=lambda: now[0])
    assert _sms(engine) == {(mid, "birthday/2026"): 1, (late, "birthday/2026"): 1}
    engine.dispose()


def test_enqueue_many_writes_what_enqueue_writes(engine: Engine) -> None:
    """The bulk enqueue the greetings use: the same rows (keys, addresses, skips, the held
    email) as one enqueue per member, and a second call creates nothing."""
    from crm_bridge.models import Channel
    from dialer.fallback.outbox import enqueue, enqueue_many
    from dialer.fallback.purposes import OrderPolicy

    with session_scope(engine) as s:
        plain = _member(s, "M1", None)
        no_phone = Member(
            member_no="M2", name="M2", joined_on=dt.date(2020, 1, 1), email="m2@x.org"
        )
        s.add(no_phone)
        landline = Member(member_no="M3", name="M3", joined_on=dt.date(2020, 1, 1), locale="en")
        landline.phones.append(MemberPhone(e164="+862100000000", kind="landline"))
        landline.phones.append(MemberPhone(e164="+8613900000009", kind="mobile", invalid=True))
        s.add(landline)
        s.flush()
        ids = [plain, no_phone.id, landline.id]
    with session_scope(engine) as s:
        for mid in ids:
            enqueue(s, Purpose.HOLIDAY, mid, ref="a/2026", payload={"holiday": "春节"},
                    order=OrderPolicy.SMS_ELSE_EMAIL)  # fmt: skip
        items = [(mid, "b/2026", {"holiday": "春节"}) for mid in ids]
        assert enqueue_many(s, Purpose.HOLIDAY, items, order=OrderPolicy.SMS_ELSE_EMAIL) == 6
        assert enqueue_many(s, Purpose.HOLIDAY, items, order=OrderPolicy.SMS_ELSE_EMAIL) == 0
    cols = ("member_id", "channel", "to_address", "locale", "payload", "status", "last_error")
    with session_scope(engine) as s:
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        by_ref: dict[str, list[tuple[object, ...]]] = {}
        for r in rows:
            ref = r.idempotency_key.split(":")[1]
            held = r.next_attempt_at is None
            by_ref.setdefault(ref, []).append((*(getattr(r, c) for c in cols), held))
    assert sorted(by_ref["a/2026"], key=str) == sorted(by_ref["b/2026"], key=str)
    got = {(m, ch): (addr, str(st), held) for m, ch, addr, _l, _p, st, _e, held in by_ref["b/2026"]}
    assert got[(plain, Channel.SMS)][1:] == ("pending", False)
    assert got[(plain, Channel.EMAIL)][2] is True  # held until the SMS has an outcome
    assert got[(no_phone.id, Channel.SMS)] == ("", "skipped", True)
    assert got[(landline.id, Channel.SMS)][0] == "+862100000000"  # the valid non-mobile
