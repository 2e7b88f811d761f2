"""Every console <-> hub message, declared once.

Envelope (one JSON object per line, see :mod:`cti.hubproto.framing`):

* request  (console -> hub): ``{"id": 7, "cmd": "pause", "args": {...}}``
* response (hub -> console): ``{"re": 7, "ok": true, "result": {...}}`` or
  ``{"re": 7, "ok": false, "error": {"code": "forbidden", "message": "..."}}``
* push     (hub -> console): ``{"push": "screen_pop", "data": {...}}``

The first request on a connection must be ``hello`` (version check), then ``login``.
``docs/hub-protocol.md`` is generated from these declarations
(``python -m cti.hubproto.doc > docs/hub-protocol.md``; a test keeps it in sync).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1_048_576


class ErrorCode(enum.StrEnum):
    BAD_REQUEST = "bad_request"
    """Malformed request: unknown command, missing or ill-typed argument."""
    UNSUPPORTED_VERSION = "unsupported_version"
    NOT_LOGGED_IN = "not_logged_in"
    BAD_CREDENTIALS = "bad_credentials"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    """The agent may not do this (not their call, not their member, supervisors only)."""
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    """The action does not fit the current state (e.g. unpause while not paused, points short)."""
    PBX_ERROR = "pbx_error"
    """Asterisk refused or did not answer in time."""
    REASON_REQUIRED = "reason_required"
    """An answered win-back call's wrap-up needs a ``reason`` (codes in the login result's
    ``winback_reasons``; some also need ``notes``)."""
    INTERNAL = "internal"


class ProtocolError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "datetime": (str,),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    doc: str
    required: bool = True
    max_len: int | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CommandSpec:
    name: str
    doc: str
    args: tuple[Field, ...] = ()
    result: str = "{}"
    role: str = "agent"
    """agent = any logged-in user; supervisor = supervisors only; public = before login."""
    errors: tuple[ErrorCode, ...] = ()


@dataclass(frozen=True)
class PushSpec:
    name: str
    doc: str
    data: str
    audience: str = "agent"


def _f(name: str, type_: str, doc: str, **kw: Any) -> Field:
    return Field(name, type_, doc, **kw)


E = ErrorCode
COMMANDS: dict[str, CommandSpec] = {
    c.name: c
    for c in (
        CommandSpec(
            "hello",
            "Open the session; the hub answers with its version and limits.",
            (
                _f("protocol", "int", "protocol version the console speaks"),
                _f("client", "str", "client name/version", max_len=64),
            ),
            '{"server": str, "protocol": int, "max_message_bytes": int, '
            '"tracker_anomalies": {"count": int, "recent": [{"at", "from", "to", "event"}]}}',
            "public",
            (E.UNSUPPORTED_VERSION,),
        ),
        CommandSpec(
            "login",
            "Log in with agent id and password (argon2-hashed in the DB; rate-limited per agent and per peer).",
            (
                _f("agent", "str", "agent id (code)", max_len=32),
                _f("password", "str", "password", max_len=256),
            ),
            '{"agent": {"code", "name", "role", "extension"}, "pause_reasons": [str], "dispositions": [[hotkey, code]], '
            '"winback_reasons": [[code, label_en, label_zh, needs_note]]}',
            "public",
            (E.BAD_CREDENTIALS, E.RATE_LIMITED),
        ),
        CommandSpec("logout", "End the session (the connection stays open)."),
        CommandSpec(
            "state",
            "Current agent state, calls and open pop; also pushed after login and reconnect.",
            result='{"agent_state": AgentState, "calls": [CallState], "pop": ScreenPop|null}',
        ),
        CommandSpec(
            "pause",
            "Pause in every queue with a reason code (QueuePause). On a call or in wrap-up the "
            "pause is remembered and applied when the wrap-up ends (deferred=true); it is kept "
            "in the database and re-applied after a PBX restart.",
            (_f("reason", "str", "a configured pause reason code", max_len=32),),
            '{"deferred": bool}',
            errors=(E.BAD_REQUEST, E.PBX_ERROR),
        ),
        CommandSpec(
            "unpause",
            "Unpause in every queue (on a call or in wrap-up: available once the wrap-up ends).",
            result='{"deferred": bool}',
            errors=(E.CONFLICT, E.PBX_ERROR),
        ),
        CommandSpec(
            "queue_login",
            "Join the inbound queue (QueueAdd); remembered and re-applied after a PBX restart.",
            (
                _f(
                    "queue",
                    "str",
                    "queue name (default: the configured queue)",
                    required=False,
                    max_len=64,
                ),
            ),
            errors=(E.PBX_ERROR,),
        ),
        CommandSpec(
            "queue_logout",
            "Leave the inbound queue (QueueRemove).",
            (_f("queue", "str", "queue name", required=False, max_len=64),),
            errors=(E.PBX_ERROR,),
        ),
        CommandSpec(
            "dial",
            "Click-to-dial: ring the agent's phone first, then the member (Originate).",
            (
                _f("member_id", "int", "member to call"),
                _f(
                    "phone",
                    "str",
                    "which E.164 number of the member (default: first valid)",
                    required=False,
                    max_len=32,
                ),
            ),
            '{"call_id": str}',
            errors=(E.NOT_FOUND, E.FORBIDDEN, E.CONFLICT, E.PBX_ERROR),
        ),
        CommandSpec(
            "hangup",
            "Hang up one of the agent's own calls.",
            (_f("call_id", "str", "call id from call_state", max_len=96),),
            errors=(E.NOT_FOUND, E.FORBIDDEN, E.PBX_ERROR),
        ),
        CommandSpec(
            "transfer",
            "Blind transfer of the agent's call to an extension (Redirect).",
            (
                _f("call_id", "str", "call id", max_len=96),
                _f("target", "str", "extension to transfer to", max_len=32),
            ),
            errors=(E.NOT_FOUND, E.FORBIDDEN, E.PBX_ERROR),
        ),
        CommandSpec(
            "wrapup",
            "Disposition, notes and optional callback for a call the agent answered (only its "
            "answering agent, or a supervisor); ends the wrap-up and its pause, then applies the "
            "pause the agent asked for meanwhile, if any. Works for unfinished calls too.",
            (
                _f("call_id", "str", "call id", max_len=96),
                _f("disposition", "str", "a configured disposition code", max_len=32),
                _f("notes", "str", "agent notes", required=False, max_len=8000),
                _f(
                    "callback_at",
                    "datetime",
                    "ISO 8601 with offset (member's zone shown by console)",
                    required=False,
                ),
                _f(
                    "reason",
                    "str",
                    "why the member stopped buying: a winback_reasons code (win-back calls)",
                    required=False,
                    max_len=32,
                ),
            ),
            '{"attempt_id": int}',
            errors=(E.NOT_FOUND, E.FORBIDDEN, E.BAD_REQUEST, E.REASON_REQUIRED),
        ),
        CommandSpec(
            "unfinished_calls",
            "Answered calls whose wrap-up time ran out with no disposition (finish each with "
            "wrapup). An agent sees their own; a supervisor any agent's, or everyone's when "
            "agent is left out. stale = ended before the current shift (settings.shift_s).",
            (_f("agent", "str", "agent code (supervisors)", required=False, max_len=32),),
            '{"calls": [{"call_id", "attempt_id", "agent", "direction", "campaign_id", '
            '"member_id", "member_name", "answered_at", "ended_at", "stale": bool}]}',
            errors=(E.FORBIDDEN, E.NOT_FOUND),
        ),
        CommandSpec(
            "preview_dial",
            "Dial the member of the preview card the hub offered you (agent's phone first). "
            "The dial-time rules are checked again; the attempt is recorded before the Originate.",
            (_f("entry_id", "int", "entry_id of the preview push"),),
            '{"call_id": str, "attempt_id": int}',
            errors=(E.FORBIDDEN, E.CONFLICT, E.NOT_FOUND, E.PBX_ERROR),
        ),
        CommandSpec(
            "preview_skip",
            "Skip the preview card: the entry is due again shortly (later, other), or cancelled: "
            "wrong-number also flags that number invalid, do-not-call puts the member on the "
            "do-not-call list (both audited).",
            (
                _f("entry_id", "int", "entry_id of the preview push"),
                _f(
                    "reason",
                    "str",
                    "why",
                    choices=("later", "wrong-number", "do-not-call", "other"),
                ),
            ),
            '{"entry_status": "pending"|"cancelled"}',
            errors=(E.FORBIDDEN, E.NOT_FOUND),
        ),
        CommandSpec(
            "member_search",
            "Search members by phone number, name or member number. Only members the agent "
            "may open (the reach rule of member_profile) are listed; `hidden` counts the "
            "matches left out (maintained by other agents).",
            (
                _f("query", "str", "search text", max_len=100),
                _f("limit", "int", "max rows (default 20, max 100)", required=False),
            ),
            '{"members": [MemberSummary], "hidden": int}',
        ),
        CommandSpec(
            "member_profile",
            "Open a member's full profile (audited).",
            (_f("member_id", "int", "member id"),),
            '{"profile": Profile}',
            errors=(E.NOT_FOUND, E.FORBIDDEN),
        ),
        CommandSpec(
            "member_reveal",
            "Reveal a masked phone or email (audited, reason required).",
            (
                _f("member_id", "int", "member id"),
                _f("field", "str", "what to reveal", choices=("phone", "email")),
                _f("reason", "str", "why", max_len=200),
            ),
            '{"values": [str]}',
            errors=(E.NOT_FOUND, E.FORBIDDEN),
        ),
        CommandSpec(
            "member_create",
            "Quick-create a member for an unknown caller.",
            (
                _f("name", "str", "name in any script", max_len=200),
                _f("phone", "str", "phone number (any format)", max_len=32),
                _f(
                    "locale",
                    "str",
                    "zh-CN, zh-TW or en",
                    required=False,
                    choices=("zh-CN", "zh-TW", "en"),
                ),
                _f("email", "str", "email", required=False, max_len=254),
            ),
            '{"member_id": int, "member_no": str}',
            errors=(E.BAD_REQUEST,),
        ),
        CommandSpec(
            "member_update",
            "Fill in a missing item of a member's file during the call (audited): birthday "
            "YYYY-MM-DD, gender F/M/X, city, email, or consent as channels (call,sms,email or none).",
            (
                _f("member_id", "int", "member id"),
                _f(
                    "field",
                    "str",
                    "the item",
                    choices=("birthday", "gender", "city", "email", "consent"),
                ),
                _f("value", "str", "the member's answer", max_len=254),
            ),
            '{"profile": Profile}',
            errors=(E.BAD_REQUEST, E.NOT_FOUND, E.FORBIDDEN),
        ),
        CommandSpec(
            "inquiry_create",
            "Log an inquiry for a member.",
            (
                _f("member_id", "int", "member id"),
                _f("category", "str", "category", max_len=64),
                _f("subject", "str", "subject", max_len=200),
                _f("body", "str", "details", required=False, max_len=8000),
            ),
            '{"inquiry_id": int}',
            errors=(E.NOT_FOUND,),
        ),
        CommandSpec(
            "complaint_create",
            "Log a complaint; owned by the member's maintaining agent.",
            (
                _f("member_id", "int", "member id"),
                _f("severity", "str", "severity", choices=("low", "medium", "high", "critical")),
                _f("category", "str", "category", max_len=64),
                _f("description", "str", "what happened", max_len=8000),
            ),
            '{"complaint_id": int}',
            errors=(E.NOT_FOUND,),
        ),
        CommandSpec(
            "callback_create",
            "Schedule a callback task for a member.",
            (
                _f("member_id", "int", "member id"),
                _f("due_at", "datetime", "ISO 8601 with offset"),
                _f("reason", "str", "why", max_len=200),
            ),
            '{"task_id": int}',
            errors=(E.NOT_FOUND, E.BAD_REQUEST),
        ),
        CommandSpec(
            "points_catalogue",
            "The reward catalogue.",
            result='{"items": [{"code", "name", "name_zh", "points_cost"}]}',
        ),
        CommandSpec(
            "points_redeem",
            "Redeem a reward for a member. Without confirm: a quote; with confirm: one ledger transaction.",
            (
                _f("member_id", "int", "member id"),
                _f("item_code", "str", "catalogue item", max_len=32),
                _f("confirm", "bool", "false = quote only", required=False),
            ),
            '{"balance_before": int, "cost": int, "balance_after": int, "confirmed": bool}',
            errors=(E.NOT_FOUND, E.CONFLICT),
        ),
        CommandSpec(
            "reassign_members",
            "Change members' maintaining agent (bulk, audited); their open complaints, "
            "callback tasks and undialled call-list entries held by the previous maintainer "
            "move too, and the new maintainer's console gets a notice.",
            (
                _f("to_agent", "str", "agent code of the new maintainer", max_len=32),
                _f("member_ids", "list", "members to move", required=False),
                _f(
                    "from_agent",
                    "str",
                    "move every member of this agent",
                    required=False,
                    max_len=32,
                ),
            ),
            '{"moved": int, "complaints": int, "callbacks": int, "entries": int}',
            "supervisor",
            (E.NOT_FOUND, E.BAD_REQUEST),
        ),
        CommandSpec(
            "agents_list",
            "Every agent with state, plus unfinished wrap-ups per agent (supervisors).",
            result='{"agents": [AgentState + {"logged_in", "unfinished": int, "unfinished_stale": int}]}',
            role="supervisor",
        ),
        CommandSpec(
            "campaigns_list",
            "Campaigns with progress and outcomes.",
            result='{"campaigns": [Campaign]}',
            role="supervisor",
        ),
        CommandSpec(
            "campaign_create",
            "Create a campaign from a list builder.",
            (
                _f("name", "str", "unique name", max_len=200),
                _f(
                    "kind",
                    "str",
                    "list builder",
                    choices=(
                        "post_purchase",
                        "dormant_winback",
                        "survey",
                        "monthly_care",
                        "spend_decline",
                        "custom",
                    ),
                ),
                _f(
                    "mode",
                    "str",
                    "dial mode (default: preview for monthly_care and spend_decline, else predictive)",
                    required=False,
                    choices=("preview", "progressive", "predictive", "ivr"),
                ),
                _f("settings", "dict", "builder parameters (sample size, ...)", required=False),
            ),
            '{"campaign_id": int, "entries": int}',
            "supervisor",
            (E.CONFLICT, E.BAD_REQUEST),
        ),
        CommandSpec(
            "campaign_control",
            "Start, pause, resume or stop a campaign.",
            (
                _f("campaign_id", "int", "campaign"),
                _f("action", "str", "what to do", choices=("start", "pause", "resume", "stop")),
            ),
            '{"status": str}',
            "supervisor",
            (E.NOT_FOUND, E.CONFLICT),
        ),
        CommandSpec(
            "wallboard_subscribe", "Receive wallboard pushes every second.", role="supervisor"
        ),
        CommandSpec(
            "survey_summary",
            "CSAT/NPS figures by week (same as `memberline report surveys`).",
            (_f("since", "str", "YYYY-MM-DD", required=False, max_len=10),),
            '{"rows": [...]}',
            "supervisor",
        ),
        CommandSpec(
            "rfm_grid",
            "The R x F grid with members and spend per cell, the named segments and the movement "
            "since last month (same as `memberline report rfm`; takes this month's snapshot). "
            "Build a campaign for a segment with campaign_create kind=custom, "
            'settings={"segment": name}.',
            (),
            '{"rfm": {"cells": [{"r", "f", "segment", "members", "spend"}], "segments": {...}, '
            '"moves": [{"from", "to", "members"}], "computed_at", "month"}}',
            "supervisor",
        ),
    )
}

PUSHES: dict[str, PushSpec] = {
    p.name: p
    for p in (
        PushSpec(
            "screen_pop",
            "A queue call is ringing this agent (sent on AgentCalled, before AgentConnect). "
            "your_member: the caller is a member this agent maintains; ivr: what the caller "
            "heard on the self-service hotline before asking for an agent.",
            '{"call_id", "queue", "caller": {"number_masked", "name"}, "kind": "member"|"chooser"|"unknown", '
            '"profile": Profile|null, "matches": [MemberSummary], "your_member": bool, "ivr": str|null}',
        ),
        PushSpec(
            "pop_withdrawn",
            "The pop of a call that rang this agent is withdrawn: another agent answered it "
            "(answered_elsewhere, agent = who), or the ring stopped (ring timeout, caller_left, "
            "ended). The call is not this agent's: close the pop, no wrap-up.",
            '{"call_id", "reason": "answered_elsewhere"|"timeout"|"caller_left"|"ended"|str, '
            '"agent": str|null}',
        ),
        PushSpec(
            "call_state",
            "One of the agent's calls changed state. Only the answering agent (agent) owns it; "
            "wrapup_due says this agent owes its disposition (the console opens the wrap-up "
            "then, and only then). direction is outbound for a campaign's call, with campaign.",
            '{"call_id", "state": "ringing"|"up"|"hold"|"ended", "direction": "inbound"|"outbound", '
            '"member_id"|null, "since", "hangup_by"|null, "queue"|null, "campaign_id"|null, '
            '"campaign"|null, "agent": str|null, "wrapup_due": bool}',
        ),
        PushSpec(
            "agent_state",
            "The agent's own state; pushed on every change, after login, and to every console "
            "after each PBX resync (the hub is the source of truth: it re-applies queue logins "
            "and pauses first). next_pause: the pause asked for during a call or wrap-up, "
            "applied when the wrap-up ends.",
            '{"state": "logged_out"|"available"|"ringing"|"on_call"|"wrap_up"|"paused", "reason"|null, "since", '
            '"calls_today": int, "talk_s_today": int, "queues": [str], "next_pause": str|null, '
            '"wrapup_call": str|null}',
        ),
        PushSpec(
            "wallboard",
            "Whole-centre figures for supervisors (1 s period while subscribed).",
            '{"agents": [AgentState], "waiting", "ringing", "talking", "abandon_rate", "abandon_cap", '
            '"contact_rate", "utilization", "history": {...}}',
            "supervisor",
        ),
        PushSpec(
            "preview",
            "A preview campaign offers this agent one member to call (dial with preview_dial, "
            "or preview_skip); withdrawn=true when the offer is gone (lease expired, campaign paused).",
            '{"entry_id": int, "campaign_id": int, "campaign": str, "reason": str, "attempts": int, '
            '"member": {"member_id", "member_no", "name", "tier", "phone_masked"}, "withdrawn": bool}',
        ),
        PushSpec(
            "notice",
            "Something the agent should read (banner); a handover adds its figures.",
            '{"level": "info"|"warning"|"error", "text": str, "kind"?: "handover", '
            '"moved"?: int, "complaints"?: int, "callbacks"?: int, "entries"?: int, '
            '"from_agent"?: str|null, '
            '"by"?: str}',
        ),
    )
}


def _check_type(f: Field, value: Any) -> None:
    ok_types = _TYPES[f.type]
    if f.type in ("int", "float") and isinstance(value, bool):
        raise ProtocolError(E.BAD_REQUEST, f"{f.name}: expected {f.type}")
    if not isinstance(value, ok_types):
        raise ProtocolError(E.BAD_REQUEST, f"{f.name}: expected {f.type}")
    if f.max_len is not None and isinstance(value, str) and len(value) > f.max_len:
        raise ProtocolError(E.BAD_REQUEST, f"{f.name}: longer than {f.max_len} characters")
    if f.choices is not None and value not in f.choices:
        raise ProtocolError(E.BAD_REQUEST, f"{f.name}: expected one of {', '.join(f.choices)}")
    if f.type == "datetime":
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ProtocolError(E.BAD_REQUEST, f"{f.name}: expected ISO 8601 date-time") from None
        if parsed.tzinfo is None:
            raise ProtocolError(E.BAD_REQUEST, f"{f.name}: needs a UTC offset")


def validate_args(spec: CommandSpec, args: Any) -> dict[str, Any]:
    """Check a request's args against its declaration; return them (unknown keys are an error)."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(E.BAD_REQUEST, "args must be an object")
    known = {f.name for f in spec.args}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ProtocolError(E.BAD_REQUEST, f"unknown argument(s): {', '.join(unknown)}")
    for f in spec.args:
        if f.name not in args or args[f.name] is None:
            if f.required:
                raise ProtocolError(E.BAD_REQUEST, f"{f.name}: required")
            continue
        _check_type(f, args[f.name])
    return args


_ = field
