"""The hub's pure parts: AMI action dicts, login rate limiting, masking, the call book."""

from __future__ import annotations

from typing import Any

from cti.hub import actions
from cti.hub.call_records import CallRecord, CallRecords
from cti.hub.ratelimit import FailureLimiter
from cti.screenpop.mask import mask_email, mask_phone, mask_tree


def test_action_dicts() -> None:
    assert actions.queue_pause("Local/1001@agents/n", True, "lunch") == {
        "Action": "QueuePause",
        "Interface": "Local/1001@agents/n",
        "Paused": "true",
        "Reason": "lunch",
    }
    assert actions.queue_pause("PJSIP/7", False, queue="members") == {
        "Action": "QueuePause",
        "Interface": "PJSIP/7",
        "Paused": "false",
        "Queue": "members",
    }
    assert actions.queue_add("members", "Local/1001@agents/n", "Li Na")["MemberName"] == "Li Na"
    assert actions.queue_remove("members", "X") == {
        "Action": "QueueRemove",
        "Queue": "members",
        "Interface": "X",
    }
    o = actions.originate_click_to_dial(
        interface="Local/1001@agents/n",
        number="+8613800138000",
        context="members-out",
        caller_id='"李伟" <+8613800138000>',
        channel_id="ml-abc",
        member_id=42,
        agent_code="1001",
        timeout_ms=30000,
        action_id="dial-ml-abc",
    )
    assert o == {
        "Action": "Originate",
        "Channel": "Local/1001@agents/n",
        "Context": "members-out",
        "Exten": "+8613800138000",
        "Priority": "1",
        "CallerID": '"李伟" <+8613800138000>',
        "Timeout": "30000",
        "Async": "true",
        "ChannelId": "ml-abc",
        "OtherChannelId": "ml-abc-2",
        "Variable": "MEMBER_ID=42,ML_AGENT=1001,ML_CALL_ID=ml-abc",
        "ActionID": "dial-ml-abc",
    }
    assert actions.hangup("Local/1001@agents-00000002;1") == {
        "Action": "Hangup",
        "Channel": "Local/1001@agents-00000002;1",
        "Cause": "16",
    }
    assert actions.redirect("C", "survey", "start")["Priority"] == "1"


def test_failure_limiter_window_and_keys() -> None:
    lim = FailureLimiter(limit=3, window_s=60)
    keys = ["agent:1001", "peer:10.0.0.1"]
    for t in (0.0, 1.0, 2.0):
        assert not lim.blocked(keys, t)
        lim.fail(keys, t)
    assert lim.blocked(keys, 3.0)
    assert lim.blocked(["agent:1001", "peer:10.0.0.2"], 3.0)  # same agent, other peer
    assert lim.blocked(["agent:1002", "peer:10.0.0.1"], 3.0)  # same peer, other agent
    assert not lim.blocked(["agent:1002", "peer:10.0.0.2"], 3.0)
    assert 56.0 < lim.retry_after(keys, 3.0) <= 57.0
    lim.succeed("agent:1001")
    assert not lim.blocked(["agent:1001"], 10.0)
    assert lim.blocked(["peer:10.0.0.1"], 10.0)  # the peer's failures stay
    assert not lim.blocked(keys, 60.5)  # the first failure left the window
    # Separate limits per kind of key: one agent's typos lock the agent, not the address.
    both = FailureLimiter(limit=3, window_s=60, limits={"agent": 2, "peer": 4})
    for t in (0.0, 1.0):
        both.fail(["agent:1001", "peer:10.0.0.1"], t)
    assert both.blocking(["agent:1001", "peer:10.0.0.1"], 2.0) == "agent:1001"
    assert both.blocking(["agent:1002", "peer:10.0.0.1"], 2.0) is None
    for t in (2.0, 3.0):
        both.fail(["agent:1002", "peer:10.0.0.1"], t)
    assert both.blocking(["agent:1003", "peer:10.0.0.1"], 4.0) == "peer:10.0.0.1"
    assert both.retry_after(["peer:10.0.0.1"], 4.0) == 56.0  # its first failure leaves at 60
    assert both.limit_for("other:x") == 3
    small = FailureLimiter(limit=1, window_s=1, max_keys=10)
    for i in range(100):
        small.fail([f"peer:{i}"], float(i))
    assert len(small) <= 10


def test_masking() -> None:
    assert mask_phone("+8613800138000") == "+86 138****8000"
    assert mask_phone("+14155550123") == "+1 415****0123"
    assert mask_phone("anonymous").endswith("us") and "anonym" not in mask_phone("anonymous")
    assert mask_email("li.wei@example.com") == "l***@example.com"
    tree: dict[str, Any] = {
        "member": {"name": "李伟", "email": "li@x.cn", "phones": [{"e164": "+8613800138000"}]},
        "calls": [{"phone_e164": "+8613800138000", "notes": "call +86 is fine"}],
    }
    masked = mask_tree(tree)
    assert masked["member"]["email"] == "l***@x.cn"
    assert masked["member"]["phones"][0]["e164"] == "+86 138****8000"
    assert masked["calls"][0]["phone_e164"] == "+86 138****8000"
    assert masked["member"]["name"] == "李伟"
    assert tree["member"]["email"] == "li@x.cn"  # a copy, the input is untouched


def test_call_book_keeps_unwrapped_calls_then_prunes() -> None:
    book = CallRecords(keep_ended_s=10, max_ended=2)
    rec = book.add(CallRecord("c1", "inbound", 0.0, agent_code="1001", owners=["1001"]))
    rec.state = "ended"
    book.ended(rec, 1.0)
    assert [r.call_id for r in book.of_agent("1001")] == ["c1"]
    assert book.of_agent("1002") == []
    rec.wrapped_up.add("1001")
    assert book.of_agent("1001") == []
    for i in range(2, 5):
        r = book.add(CallRecord(f"c{i}", "inbound", 0.0))
        r.state = "ended"
        book.ended(r, 2.0)
    assert len(book) == 2  # bounded
    book.prune(100.0)
    assert len(book) == 0
