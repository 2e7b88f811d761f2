"""Recorded hub traffic for deterministic screens (snapshot tests, widget harnesses, bench).

Shaped per ``cti/hubproto/messages.py``; times are fixed relative to ``NOW``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

NOW = dt.datetime(2026, 11, 23, 9, 30, 0, tzinfo=dt.UTC)


def at(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).isoformat()


def fixed_clock() -> dt.datetime:
    return NOW


LOGIN_AGENT: dict[str, Any] = {
    "agent": {"code": "1001", "name": "王芳", "role": "agent", "extension": "1001"},
    "pause_reasons": ["break", "lunch", "training", "meeting", "admin"],
    "dispositions": [
        ["s", "satisfied"],
        ["f", "follow-up"],
        ["c", "complaint"],
        ["i", "inquiry"],
        ["n", "not-interested"],
        ["w", "wrong-number"],
        ["v", "voicemail"],
        ["d", "do-not-call"],
    ],
}

LOGIN_SUPERVISOR: dict[str, Any] = {
    **LOGIN_AGENT,
    "agent": {"code": "9001", "name": "Supervisor Li", "role": "supervisor", "extension": "9001"},
}

AGENT_AVAILABLE = {
    "state": "available",
    "reason": None,
    "since": at(192),
    "calls_today": 12,
    "talk_s_today": 3723,
}

AGENT_RINGING = {**AGENT_AVAILABLE, "state": "ringing", "since": at(4)}

PROFILE: dict[str, Any] = {
    "member_id": 42,
    "member_no": "M00000042",
    "name": "李伟",
    "tier": "Gold",
    "phones_masked": ["+86 138****8000"],
    "member_since": "2021-03-14",
    "points_balance": 12840,
    "lifecycle": "regular",
    "rfm": "222",
    "maintaining_agent": {"code": "1001", "name": "王芳"},
    "timezone": "Asia/Shanghai",
    "locale": "zh-CN",
    "next_best_actions": [
        {"text": "Offer the winter coat pre-sale", "reason": "bought outerwear each November"},
        {"text": "Thank for 3 years of membership"},
    ],
    "purchases": [
        {
            "purchased_at": at(86400 * 9),
            "amount": "1299.00",
            "currency": "CNY",
            "category": "外套",
            "store": "上海南京西路店",
        },
        {
            "purchased_at": at(86400 * 40),
            "amount": "259.50",
            "currency": "CNY",
            "category": "shoes",
            "store": "Online",
        },
        {
            "purchased_at": at(86400 * 95),
            "amount": "88.00",
            "currency": "CNY",
            "category": "配饰",
            "store": "杭州西湖银泰店",
        },
    ],
    "inquiries": [
        {
            "created_at": at(86400 * 20),
            "status": "closed",
            "category": "points",
            "subject": "积分何时到账？",
        },
    ],
    "complaints": [
        {
            "created_at": at(86400 * 60),
            "severity": "medium",
            "status": "resolved",
            "category": "delivery",
            "description": "快递延误三天，包装破损",
        },
    ],
    "calls": [
        {
            "started_at": at(86400 * 20),
            "direction": "inbound",
            "agent": "王芳",
            "disposition": "satisfied",
            "talk_s": 184,
        },
        {
            "started_at": at(86400 * 70),
            "direction": "outbound",
            "agent": "Chen Jie",
            "disposition": "follow-up",
            "talk_s": 95,
        },
    ],
    "surveys": [
        {"answered_at": at(86400 * 19), "survey": "post_purchase", "csat": 5, "nps": 9},
    ],
    "points_ledger": [
        {"occurred_at": at(86400 * 9), "delta": 1948, "balance_after": 12840, "reason": "purchase"},
        {"occurred_at": at(86400 * 30), "delta": -500, "balance_after": 10892, "reason": "redeem"},
    ],
}

POP_MEMBER: dict[str, Any] = {
    "call_id": "1763890200.42",
    "queue": "members",
    "caller": {"number_masked": "+86 138****8000", "name": "李伟"},
    "kind": "member",
    "profile": PROFILE,
    "matches": [],
}

CALL_RINGING = {
    "call_id": "1763890200.42",
    "state": "ringing",
    "direction": "inbound",
    "member_id": 42,
    "since": at(4),
    "hangup_by": None,
}
CALL_UP = {**CALL_RINGING, "state": "up", "since": at(65)}
CALL_ENDED = {**CALL_RINGING, "state": "ended", "since": at(23), "hangup_by": "member"}

MATCHES = [
    {
        "member_id": 42,
        "member_no": "M00000042",
        "name": "李伟",
        "tier": "Gold",
        "phone_masked": "+86 138****8000",
    },
    {
        "member_id": 43,
        "member_no": "M00000043",
        "name": "李娜",
        "tier": "Silver",
        "phone_masked": "+86 138****8000",
    },
]

SEARCH_RESULTS = [
    {
        "member_id": 42,
        "member_no": "M00000042",
        "name": "李伟",
        "tier": "Gold",
        "phone_masked": "+86 138****8000",
        "points_balance": 12840,
        "maintaining_agent": "王芳 (1001)",
    },
    {
        "member_id": 77,
        "member_no": "M00000077",
        "name": "李思思（VIP会员，上海静安区）",
        "tier": "Platinum",
        "phone_masked": "+86 139****1234",
        "points_balance": 80210,
        "maintaining_agent": "王芳 (1001)",
    },
    {
        "member_id": 90,
        "member_no": "M00000090",
        "name": "Emily Li",
        "tier": "Standard",
        "phone_masked": "+1 415****0199",
        "points_balance": 320,
        "maintaining_agent": "Chen Jie (1002)",
    },
]


def _series(n: int, base: float, amp: float) -> list[float]:
    return [round(base + amp * ((i * 7) % 11) / 10, 3) for i in range(n)]


WALLBOARD: dict[str, Any] = {
    "agents": [
        {
            "agent": "1001",
            "name": "王芳",
            "state": "on_call",
            "reason": None,
            "since": at(65),
            "calls_today": 12,
            "talk_s_today": 3723,
        },
        {
            "agent": "1002",
            "name": "Chen Jie",
            "state": "available",
            "reason": None,
            "since": at(12),
            "calls_today": 9,
            "talk_s_today": 2410,
        },
        {
            "agent": "1003",
            "name": "张小明",
            "state": "paused",
            "reason": "lunch",
            "since": at(1500),
            "calls_today": 4,
            "talk_s_today": 900,
        },
        {
            "agent": "1004",
            "name": "Maria Garcia",
            "state": "wrap_up",
            "reason": None,
            "since": at(31),
            "calls_today": 11,
            "talk_s_today": 3301,
        },
    ],
    "waiting": 3,
    "ringing": 1,
    "talking": 2,
    "abandon_rate": 0.021,
    "abandon_cap": 0.03,
    "contact_rate": 0.46,
    "utilization": 0.71,
    "history": {
        "waiting": _series(60, 1, 4),
        "talking": _series(60, 0, 3),
        "abandon_rate": _series(60, 0.01, 0.02),
        "contact_rate": _series(60, 0.3, 0.3),
        "utilization": _series(60, 0.5, 0.4),
    },
}


# unfinished_calls / agents_list rows (issue 12): wrap-ups whose time ran out unsaved
UNFINISHED_CALLS = [
    {
        "call_id": "1700000011.201",
        "attempt_id": 311,
        "agent": "1001",
        "direction": "inbound",
        "campaign_id": None,
        "member_id": 1,
        "member_name": "李伟",
        "answered_at": at(30 * 3600 + 300),
        "ended_at": at(30 * 3600),
        "stale": True,
    },
    {
        "call_id": "ml-5c1e0d2a9b7f44c1a0e3d2c1",
        "attempt_id": 352,
        "agent": "1001",
        "direction": "outbound",
        "campaign_id": 4,
        "member_id": 7,
        "member_name": "Wang Fang",
        "answered_at": at(2400),
        "ended_at": at(2280),
        "stale": False,
    },
]
AGENTS_UNFINISHED = [
    {"agent": "1001", "name": "王芳", "state": "available", "unfinished": 2, "unfinished_stale": 1},
    {
        "agent": "1002",
        "name": "Chen Jie",
        "state": "wrap_up",
        "unfinished": 0,
        "unfinished_stale": 0,
    },
    {"agent": "1003", "name": "刘洋", "state": "paused", "unfinished": 1, "unfinished_stale": 0},
]
