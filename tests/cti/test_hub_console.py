"""The hub's console side over real sockets: session rules, limits, roles, member commands."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from agent_tui.model import Wallboard
from agent_tui.screens.wallboard import figures_text
from crm_bridge.db import session_scope
from crm_bridge.models import (
    AuditLog,
    CallListEntry,
    Campaign,
    Member,
    OutboxMessage,
    OutboxStatus,
    PointsLedger,
)
from cti.hubproto import ErrorCode, ProtocolError, encode
from cti.hubproto.client import HubClient
from dialer.fallback import Purpose, enqueue
from tests.cti.hub_support import LI_WEI, SHARED, Console, running_hub, seed


async def _raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> dict[str, Any]:
    writer.write(payload)
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    return json.loads(line)


async def test_hello_first_then_login_and_limits(engine: Engine) -> None:
    seed(engine)
    async with running_hub(engine, max_message_bytes=4096) as hub:
        reader, writer = await _raw(hub.port)
        try:
            # Anything before hello is refused; the connection stays.
            r = await _roundtrip(reader, writer, encode({"id": 1, "cmd": "state"}))
            assert r["error"]["code"] == "bad_request"
            r = await _roundtrip(
                reader,
                writer,
                encode({"id": 2, "cmd": "hello", "args": {"protocol": 99, "client": "t"}}),
            )
            assert r["error"]["code"] == "unsupported_version"
            r = await _roundtrip(
                reader,
                writer,
                encode({"id": 3, "cmd": "hello", "args": {"protocol": 1, "client": "t"}}),
            )
            assert r["ok"] and r["result"]["max_message_bytes"] == 4096
            # Oversized frame: bad_request with re=null, connection still usable.
            r = await _roundtrip(reader, writer, b'{"id": 4, "pad": "' + b"x" * 10_000 + b'"}\n')
            assert r == {"re": None, "ok": False, "error": r["error"]}
            assert r["error"]["code"] == "bad_request"
            # Garbage and non-objects likewise.
            r = await _roundtrip(reader, writer, b"\xff\xfe garbage\n")
            assert r["error"]["code"] == "bad_request"
            r = await _roundtrip(reader, writer, b"[1, 2]\n")
            assert r["error"]["code"] == "bad_request"
            r = await _roundtrip(reader, writer, encode({"id": 5, "cmd": "nope"}))
            assert r["re"] == 5 and r["error"]["code"] == "bad_request"
            r = await _roundtrip(reader, writer, encode({"id": 6, "cmd": "state"}))
            assert r["error"]["code"] == "not_logged_in"
            r = await _roundtrip(
                reader,
                writer,
                encode({"id": 7, "cmd": "login", "args": {"agent": "1001", "password": 5}}),
            )
            assert r["error"]["code"] == "bad_request"
            r = await _roundtrip(
                reader,
                writer,
                encode(
                    {"id": 8, "cmd": "login", "args": {"agent": "1001", "password": "s3cret-pw"}}
                ),
            )
            assert r["ok"] and r["result"]["agent"]["code"] == "1001"
            assert "lunch" in r["result"]["pause_reasons"]
            # Pushed after the login response: the agent's state.
            push = json.loads(await asyncio.wait_for(reader.readline(), 5))
            assert push["push"] == "agent_state" and push["data"]["state"] == "logged_out"
        finally:
            writer.close()


async def _login_error(hub: Any, agent: str, password: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        await HubClient("127.0.0.1", hub.port, agent, password).start()
    return err.value


async def test_login_failure_and_rate_limit(engine: Engine) -> None:
    seed(engine)
    now = [1_000_000.0]
    async with running_hub(
        engine, login_attempts_per_minute=3, login_attempts_per_address_per_minute=5
    ) as hub:
        hub.clock = lambda: now[0]
        for agent in ("1001", "nosuch", "1001"):
            err = await _login_error(hub, agent, "wrong")
            assert err.code is ErrorCode.BAD_CREDENTIALS
            assert err.message == "wrong agent id or password"  # no hint which part
        err = await _login_error(hub, "1001", "wrong")
        assert err.code is ErrorCode.BAD_CREDENTIALS
        # 3 failures for 1001 within a minute: even its right password is refused now, and
        # the message names the account's limit ...
        err = await _login_error(hub, "1001", "s3cret-pw")
        assert err.code is ErrorCode.RATE_LIMITED
        assert err.message.startswith("agent 1001: 3 failed logins within 60 s; try again in ")
        # ... but another agent on the same host still logs in (4 failures < 5 per address).
        async with Console(hub, "1002") as c:
            assert c.client.session["agent"]["code"] == "1002"
        # A 5th failure from this address (another agent's typo) locks the address.
        err = await _login_error(hub, "1002", "wrong")
        assert err.code is ErrorCode.BAD_CREDENTIALS
        err = await _login_error(hub, "1002", "s3cret-pw")
        assert err.code is ErrorCode.RATE_LIMITED
        assert err.message.startswith("this address (127.0.0.1): 5 failed logins within 60 s")
        now[0] += 61  # a minute later both windows are clear
        async with Console(hub, "1001") as c:
            assert c.client.session["agent"]["code"] == "1001"


async def test_roles_reach_and_masking(engine: Engine) -> None:
    ids = seed(engine)
    async with running_hub(engine) as hub, Console(hub, "1001") as a1, Console(hub, "9001") as sup:
        with pytest.raises(ProtocolError) as err:
            await a1.request("reassign_members", to_agent="1001", member_ids=[ids.members["other"]])
        assert err.value.code is ErrorCode.FORBIDDEN
        with pytest.raises(ProtocolError) as err:
            await a1.request("agents_list")
        assert err.value.code is ErrorCode.FORBIDDEN
        # Search: masked phones; any agent may search.
        found = await a1.request("member_search", query="李伟")
        assert found["members"][0]["phone_e164"] == "+86 138****8000"
        # ... but lists only members the agent may open (the rule member_profile applies):
        # "Zhang San" is 1002's, so 1001 does not see it; the supervisor does.
        found = await a1.request("member_search", query="Zhang")
        assert found == {"members": [], "hidden": 1}
        found = await a1.request("member_search", query="+8613600136000")
        assert found == {"members": [], "hidden": 1}
        found = await sup.request("member_search", query="Zhang")
        assert [m["name"] for m in found["members"]] == ["Zhang San"] and found["hidden"] == 0
        # The shared number: 1001 sees the unassigned 王芳, not 1002's Wang Fang.
        found = await a1.request("member_search", query=SHARED)
        assert [m["member_id"] for m in found["members"]] == [ids.members["twin_b"]]
        assert found["hidden"] == 1
        # A call that offered a member puts it in reach: then search lists it too.
        hub.grant("1001", [ids.members["other"]])
        found = await a1.request("member_search", query="Zhang")
        assert [m["name"] for m in found["members"]] == ["Zhang San"]
        hub.grants.clear()
        # Own member: full profile, masked, audited.
        prof = (await a1.request("member_profile", member_id=ids.members["liwei"]))["profile"]
        text = json.dumps(prof, ensure_ascii=False)
        assert LI_WEI not in text and "liwei@example.com" not in text
        assert "+86 138****8000" in text
        # Another agent's member: forbidden; unassigned member: fine; no such member: not_found.
        with pytest.raises(ProtocolError) as err:
            await a1.request("member_profile", member_id=ids.members["other"])
        assert err.value.code is ErrorCode.FORBIDDEN
        await a1.request("member_profile", member_id=ids.members["twin_b"])
        with pytest.raises(ProtocolError) as err:
            await a1.request("member_profile", member_id=999_999)
        assert err.value.code is ErrorCode.NOT_FOUND
        revealed = await a1.request(
            "member_reveal", member_id=ids.members["liwei"], field="phone", reason="callback"
        )
        assert revealed == {"values": [LI_WEI]}
        # The supervisor moves "other" to 1001, who can then open it.
        moved = await sup.request(
            "reassign_members", to_agent="1001", member_ids=[ids.members["other"]]
        )
        assert moved == {"moved": 1, "complaints": 0, "callbacks": 0, "entries": 0}
        await a1.request("member_profile", member_id=ids.members["other"])
        agents = (await sup.request("agents_list"))["agents"]
        assert {a["agent"]: a["logged_in"] for a in agents} == {
            "1001": True,
            "1002": False,
            "9001": True,
        }
    with session_scope(engine) as s:
        actions = [
            (a.actor, a.action, a.member_id)
            for a in s.scalars(select(AuditLog).order_by(AuditLog.id))
        ]
    assert ("agent:1001", "profile.view", ids.members["liwei"]) in actions
    assert ("agent:1001", "member.reveal_phone", ids.members["liwei"]) in actions
    assert ("supervisor:9001", "member.reassign", ids.members["other"]) in actions
    assert ("agent:1001", "profile.view", ids.members["other"]) in actions


async def test_member_writes_and_points(engine: Engine) -> None:
    ids = seed(engine)
    liwei = ids.members["liwei"]
    async with running_hub(engine) as hub, Console(hub, "1001") as a1:
        created = await a1.request(
            "member_create", name="新会员", phone="13500135000", locale="zh-CN"
        )
        assert created["member_no"]
        with pytest.raises(ProtocolError) as err:
            await a1.request("member_create", name="x", phone="garbage")
        assert err.value.code is ErrorCode.BAD_REQUEST
        assert (
            await a1.request(
                "inquiry_create", member_id=liwei, category="points", subject="balance?"
            )
        )["inquiry_id"]
        assert (
            await a1.request(
                "complaint_create",
                member_id=liwei,
                severity="high",
                category="service",
                description="rude",
            )
        )["complaint_id"]
        assert (
            await a1.request(
                "callback_create", member_id=liwei, due_at="2099-01-01T10:00:00+08:00", reason="r"
            )
        )["task_id"]
        cat = await a1.request("points_catalogue")
        assert cat["items"][0]["code"] == "MUG"
        quote = await a1.request("points_redeem", member_id=liwei, item_code="MUG")
        assert quote == {
            "balance_before": 5000,
            "cost": 1200,
            "balance_after": 3800,
            "confirmed": False,
        }
        done = await a1.request("points_redeem", member_id=liwei, item_code="MUG", confirm=True)
        assert done["confirmed"] and done["balance_after"] == 3800
        for _ in range(3):
            await a1.request("points_redeem", member_id=liwei, item_code="MUG", confirm=True)
        with pytest.raises(ProtocolError) as err:
            await a1.request("points_redeem", member_id=liwei, item_code="MUG", confirm=True)
        assert err.value.code is ErrorCode.CONFLICT
    with session_scope(engine) as s:
        assert s.get(Member, liwei).points_balance == 200  # type: ignore[union-attr]
        ledger = list(
            s.scalars(select(PointsLedger.balance_after).where(PointsLedger.member_id == liwei))
        )
        assert ledger == [3800, 2600, 1400, 200]
        m = s.scalars(select(Member).where(Member.member_no == created["member_no"])).one()
        assert m.phones[0].e164 == "+8613500135000" and m.maintaining_agent_id == ids.agents["1001"]


async def test_campaigns_and_wallboard(engine: Engine) -> None:
    seed(engine)
    async with running_hub(engine, wallboard_period_s=0.05) as hub, Console(hub, "9001") as sup:
        made = await sup.request(
            "campaign_create", name="winback", kind="dormant_winback", mode="progressive"
        )
        assert made["entries"] >= 1
        with pytest.raises(ProtocolError) as err:
            await sup.request(
                "campaign_create", name="winback", kind="dormant_winback", mode="progressive"
            )
        assert err.value.code is ErrorCode.CONFLICT
        cid = made["campaign_id"]
        assert (await sup.request("campaign_control", campaign_id=cid, action="start")) == {
            "status": "running"
        }
        with pytest.raises(ProtocolError) as err:
            await sup.request("campaign_control", campaign_id=cid, action="resume")
        assert err.value.code is ErrorCode.CONFLICT
        listed = (await sup.request("campaigns_list"))["campaigns"]
        assert listed[0]["status"] == "running" and listed[0]["total"] == made["entries"]
        # An outbox message whose send is in doubt: supervisors see it on the wallboard.
        with session_scope(engine) as s:
            mid = s.scalars(select(Member.id).order_by(Member.id)).first()
            assert mid is not None
            (row,) = enqueue(s, Purpose.EXHAUSTED, mid, "sms", ref="review")
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.idempotency_key == row.key)
                .values(status=OutboxStatus.REVIEW)
            )
        await sup.request("wallboard_subscribe")
        wb = await sup.wait_for("wallboard", lambda d: d.get("outbox_review") == 1)
        assert "1 message(s) may have been sent and need review" in str(
            figures_text(Wallboard.parse(wb))
        )
        assert wb["abandon_cap"] == 0.03 and {a["agent"] for a in wb["agents"]} == {
            "1001",
            "1002",
            "9001",
        }
        await sup.wait_for("wallboard", lambda d: d is not wb)
        assert len(sup.of("wallboard")) >= 2
    with session_scope(engine) as s:
        assert s.scalar(select(Campaign.status).where(Campaign.id == cid)).value == "running"  # type: ignore[union-attr]
        assert len(list(s.scalars(select(CallListEntry.id)))) == made["entries"]


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "hub.crt", tmp / "hub.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_link(sqlite_url: str, tmp_path: Path) -> None:
    pytest.importorskip("OpenSSL", reason="TLS for the hub needs pyOpenSSL")
    from crm_bridge.db import make_engine

    engine = make_engine(sqlite_url)
    seed(engine)
    cert, key = _self_signed(tmp_path)
    async with running_hub(engine, tls_cert=str(cert), tls_key=str(key)) as hub:
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        client = HubClient("127.0.0.1", hub.port, "1001", "s3cret-pw", ssl=ctx)
        session = await client.start()
        assert session["agent"]["code"] == "1001"
        assert (await client.request("state"))["agent_state"]["state"] == "logged_out"
        await client.close()
        # A plain-text client gets nothing it can read as a hello answer.
        plain = HubClient("127.0.0.1", hub.port, "1001", "s3cret-pw", request_timeout=1.0)
        with pytest.raises((TimeoutError, ConnectionError, OSError)):
            await plain.start()
        await plain.close()
    engine.dispose()


async def test_console_that_stops_reading_is_dropped(engine: Engine) -> None:
    import socket

    seed(engine)
    async with running_hub(engine, wallboard_period_s=0.001, max_backlog_bytes=64 * 1024) as hub:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", hub.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            await _roundtrip(
                reader,
                writer,
                encode({"id": 1, "cmd": "hello", "args": {"protocol": 1, "client": "t"}}),
            )
            r = await _roundtrip(
                reader,
                writer,
                encode(
                    {"id": 2, "cmd": "login", "args": {"agent": "9001", "password": "s3cret-pw"}}
                ),
            )
            assert r["ok"]
            writer.write(encode({"id": 3, "cmd": "wallboard_subscribe"}))
            await writer.drain()
            # Never read again: the hub queues wallboards until the backlog limit, then drops us.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            while len(hub.sessions) and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert len(hub.sessions) == 0
        finally:
            writer.close()
