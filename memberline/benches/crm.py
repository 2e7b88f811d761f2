"""``memberline bench crm --db URL``: member lookup, screen-pop assembly, profile, list builders.

On a demo-data database (``memberline demo-data``). Callers are real members' numbers in the
forms a PBX sends (national ``138 0013 8000``, ``+852...``, ``00...``) plus ``--miss-rate``
(20 %) numbers no member has. Timed, each from the call to the return:

* ``lookup_*``: ``find_members_by_phone`` in its own session (hits and misses);
* ``pop_*``: the whole screen-pop assembly as the hub's lookup thread does it: a session,
  ``cti.screenpop.build_pop`` (number normalised, members found, the profile read, masked;
  unknown and several-member pops included), ``Pop.to_push`` and the frame encoded
  (``cti.hubproto.framing.encode``); ``pop_statements_*`` counts the SQL statements each
  pop sent, ``pop_encode_*`` the serialisation alone;
* ``profile_*``: ``build_profile`` of a member by id.

Each lookup, pop and profile runs in its own session/transaction like the hub's ``run_db``
calls (after a warm-up); ``*_cpu_*`` are the same operations in process CPU time (what they
cost when the machine is not shared; wall-clock percentiles include waiting for a core).

``list_<builder>_s``: every list builder (post-purchase, dormant win-back, survey, monthly
care, spend decline), each from the call to its return (the INSERT ... SELECT into a
throwaway campaign, counts included), in that order, inside one transaction that is rolled
back, so the database is unchanged. ``list_dormant_s`` is a first-ever win-back run (the
whole 180-365-day backlog); ``list_dormant_weekly_s`` is a steady-state weekly run (members
who crossed 180 days in the last week); ``greeting_candidates_s`` reads every dormant
member to greet. The target is 2 s for each at 1,000,000 members on SQLite
(``targets.lists_le_2s``, wall clock); ``*_cpu_s`` is the same in process CPU time (SQLite
runs in this process), the figure to read on a busy machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import time
from typing import Any

from memberline.benches._common import LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _as_dialled(e164: str, rng: random.Random) -> str:
    """How a PBX might present the number: national for +86, else international or 00."""
    if e164.startswith("+86") and rng.random() < 0.7:
        n = e164[3:]
        return f"{n[:3]} {n[3:7]} {n[7:]}"
    return e164 if rng.random() < 0.5 else "00" + e164[1:]


def _unknown_number(rng: random.Random) -> str:
    """A mobile number in a range the demo data never hands out (+86 199 ...)."""
    return f"199 {rng.randrange(10**4):04d} {rng.randrange(10**4):04d}"


def run(
    url: str, samples: int, seed: int, region: str, survey_size: int, miss_rate: float = 0.2
) -> dict[str, Any]:
    # imported here, not at the top: every `memberline` command imports the benches
    from sqlalchemy import event, func, select

    from crm_bridge.db import make_engine, session_scope, sessions
    from crm_bridge.lists import (
        build_dormant_list,
        build_monthly_care_list,
        build_post_purchase_list,
        build_spend_decline_list,
        build_survey_list,
        dormant_greeting_candidates,
    )
    from crm_bridge.lookup import build_profile, find_members_by_phone
    from crm_bridge.models import Campaign, CampaignKind, DialMode, Member, MemberPhone
    from cti.hubproto.framing import encode
    from cti.screenpop.assemble import build_pop

    engine = make_engine(url)
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    try:
        with session_scope(engine) as s:
            members = int(s.scalar(select(func.count()).select_from(Member)) or 0)
            max_id = int(s.scalar(select(func.max(Member.id))) or 0)
            if members == 0:
                raise SystemExit(
                    "memberline bench crm: the database has no members (run memberline demo-data)"
                )
            ids = sorted({rng.randint(1, max_id) for _ in range(samples * 2)})[: samples * 2]
            rng.shuffle(ids)
            ids = ids[:samples]
            phones = [
                p
                for (p,) in s.execute(
                    select(MemberPhone.e164)
                    .where(MemberPhone.member_id.in_(ids))
                    .order_by(MemberPhone.id)
                )
            ]
        rng.shuffle(phones)
        known = [_as_dialled(p, rng) for p in phones]
        misses = round(len(known) * miss_rate / max(1e-9, 1 - miss_rate))
        unknown = {_unknown_number(rng) for _ in range(misses)}
        dialled = known + sorted(unknown)
        rng.shuffle(dialled)
        warm = min(200, len(dialled) // 5)

        lookups: list[float] = []
        lookups_cpu: list[float] = []
        found = found_unknown = 0
        gc.collect()
        for i, raw in enumerate(dialled):
            t0, c0 = time.perf_counter(), time.process_time()
            with session_scope(engine) as s:
                res = find_members_by_phone(s, raw, region)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            if i >= warm:
                lookups.append(elapsed * 1000)
                lookups_cpu.append(cpu * 1000)
            found += bool(res)
            found_unknown += bool(res) and raw in unknown

        statements = 0

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            nonlocal statements
            statements += 1

        pops: list[float] = []
        pops_cpu: list[float] = []
        pop_statements: list[int] = []
        encodes: list[float] = []
        kinds: dict[str, int] = {}
        gc.collect()
        for i, raw in enumerate(dialled):
            before = statements
            t0, c0 = time.perf_counter(), time.process_time()
            with session_scope(engine) as s:
                pop = build_pop(s, raw, "", region, None)
            t1 = time.perf_counter()
            frame = encode({"push": "screen_pop", "data": pop.to_push(f"bench-{i}", "members")})
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            if i >= warm:
                pops.append(elapsed * 1000)
                pops_cpu.append(cpu * 1000)
                encodes.append((time.perf_counter() - t1) * 1000)
                pop_statements.append(statements - before)
                kinds[pop.kind] = kinds.get(pop.kind, 0) + 1
            assert frame
        event.remove(engine, "before_cursor_execute", _count)

        profiles: list[float] = []
        profiles_cpu: list[float] = []
        gc.collect()
        for i, member_id in enumerate(ids):
            t0, c0 = time.perf_counter(), time.process_time()
            with session_scope(engine) as s:
                build_profile(s, member_id, now)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            if i >= warm:
                profiles.append(elapsed * 1000)
                profiles_cpu.append(cpu * 1000)

        lists: dict[str, Any] = {}
        session = sessions(engine)()
        try:
            tag = f"bench-{time.time_ns()}"
            camps = {}
            for kind in (
                CampaignKind.POST_PURCHASE,
                CampaignKind.DORMANT_WINBACK,
                CampaignKind.SURVEY,
                CampaignKind.MONTHLY_CARE,
                CampaignKind.SPEND_DECLINE,
            ):
                c = Campaign(name=f"{tag}-{kind.value}", kind=kind, mode=DialMode.PROGRESSIVE)
                session.add(c)
                camps[kind] = c
            session.flush()
            # Steady state first (in a savepoint, rolled back): a weekly win-back run only meets
            # members who lapsed in the last week, everyone lapsed earlier being already on a
            # win-back campaign; the full run below is the first-ever 180-365-day backlog.
            nested = session.begin_nested()
            t0 = time.perf_counter()
            weekly = build_dormant_list(
                session, camps[CampaignKind.DORMANT_WINBACK].id, now, max_days=187
            )
            lists["list_dormant_weekly_s"] = round(time.perf_counter() - t0, 3)
            lists["list_dormant_weekly_rows"] = weekly.added
            nested.rollback()
            for key, fn in (
                ("post_purchase", lambda: build_post_purchase_list(session, camps[CampaignKind.POST_PURCHASE].id, now)),
                ("dormant", lambda: build_dormant_list(session, camps[CampaignKind.DORMANT_WINBACK].id, now)),
                ("survey", lambda: build_survey_list(session, camps[CampaignKind.SURVEY].id, now, survey_size, seed)),
                ("monthly_care", lambda: build_monthly_care_list(session, camps[CampaignKind.MONTHLY_CARE].id, now)),
                ("spend_decline", lambda: build_spend_decline_list(session, camps[CampaignKind.SPEND_DECLINE].id, now)),
            ):  # fmt: skip
                t0, c0 = time.perf_counter(), time.process_time()
                result = fn()
                lists[f"list_{key}_s"] = round(time.perf_counter() - t0, 3)
                lists[f"list_{key}_cpu_s"] = round(time.process_time() - c0, 3)
                lists[f"list_{key}_rows"] = result.added
                lists[f"list_{key}_routed"] = result.routed
            t0, c0 = time.perf_counter(), time.process_time()
            greetings = sum(1 for _ in dormant_greeting_candidates(session, now))
            lists["greeting_candidates_s"] = round(time.perf_counter() - t0, 3)
            lists["greeting_candidates_cpu_s"] = round(time.process_time() - c0, 3)
            lists["greeting_candidates"] = greetings
        finally:
            session.rollback()
            session.close()
    finally:
        engine.dispose()
    return {
        "bench": "crm",
        "dialect": engine.dialect.name,
        "members": members,
        "lookups": len(lookups),
        "lookup_hit_rate": round(found / max(1, len(dialled)), 4),
        "lookup_known_hit_rate": round((found - found_unknown) / max(1, len(known)), 4),
        "lookup_unknown_found": found_unknown,
        "lookup_p50_ms": round(_pct(lookups, 0.50), 3),
        "lookup_p99_ms": round(_pct(lookups, 0.99), 3),
        "lookup_max_ms": round(max(lookups), 3),
        "lookup_cpu_p50_ms": round(_pct(lookups_cpu, 0.50), 3),
        "lookup_cpu_p99_ms": round(_pct(lookups_cpu, 0.99), 3),
        "lookup_miss_rate": miss_rate,
        "pops": len(pops),
        "pop_kinds": kinds,
        "pop_p50_ms": round(_pct(pops, 0.50), 3),
        "pop_p99_ms": round(_pct(pops, 0.99), 3),
        "pop_max_ms": round(max(pops), 3),
        "pop_cpu_p50_ms": round(_pct(pops_cpu, 0.50), 3),
        "pop_cpu_p99_ms": round(_pct(pops_cpu, 0.99), 3),
        "pop_encode_p50_ms": round(_pct(encodes, 0.50), 3),
        "pop_encode_p99_ms": round(_pct(encodes, 0.99), 3),
        "pop_statements_mean": round(sum(pop_statements) / len(pop_statements), 2),
        "pop_statements_max": max(pop_statements),
        "profiles": len(profiles),
        "profile_p50_ms": round(_pct(profiles, 0.50), 3),
        "profile_p99_ms": round(_pct(profiles, 0.99), 3),
        "profile_max_ms": round(max(profiles), 3),
        "profile_cpu_p50_ms": round(_pct(profiles_cpu, 0.50), 3),
        "profile_cpu_p99_ms": round(_pct(profiles_cpu, 0.99), 3),
        **lists,
        "targets": {
            "lists_le_2s": all(
                v <= 2.0 for k, v in lists.items() if k.endswith("_s") and not k.endswith("cpu_s")
            ),
        },
    }


def _handler(args: argparse.Namespace, cfg: Config) -> int:
    stamp = LoadStamp()
    result = run(
        cfg.database.url,
        args.samples,
        args.seed,
        args.region or cfg.database.default_region,
        args.survey_size,
        args.miss_rate,
    )
    emit(result, stamp, runs=1)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "crm", _handler, "member lookup / profile / list-builder speed on a demo database"
    )
    p.add_argument(
        "--samples", type=int, default=3000, help="members to look up and profile (default 3000)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--miss-rate", type=float, default=0.2, help="share of callers no member has (0.2)"
    )
    p.add_argument("--region", help="default region for national numbers (default: config, CN)")
    p.add_argument(
        "--survey-size", type=int, default=2000, help="survey sample size (default 2000)"
    )
