"""``memberline check-config`` against real loopback servers (PBX simulator, aiosmtpd, Twilio sink)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from cti.pbxsim import PbxSimulator
from dialer.fallback.sinks.twilio_sink import TwilioSink
from memberline.cli import main

pytestmark = pytest.mark.e2e

AMI_SECRET = "ami-Check-Secret-77"
SMTP_PASSWORD = "smtp-Check-Pw-55"
TWILIO_TOKEN = "twilio-Check-Token-33"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok, handled=ok)


@contextlib.contextmanager
def smtp_server(auth: bool) -> Iterator[int]:
    port = free_port()
    kw: dict[str, Any] = {"auth_require_tls": False}
    if auth:
        kw.update(auth_required=True, authenticator=_auth)
    ctl = Controller(_Handler(), hostname="127.0.0.1", port=port, server_kwargs=kw)
    ctl.start()
    try:
        yield port
    finally:
        ctl.stop()


def write_config(path: Path, **sections: dict[str, Any]) -> Path:
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        for k, v in values.items():
            lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    return rc, out, err


def sections(
    db_url: str, ami_port: int, smtp_port: int, *, ami_secret: str = AMI_SECRET, **extra: Any
) -> dict[str, dict[str, Any]]:
    cfg: dict[str, dict[str, Any]] = {
        "database": {"url": db_url},
        "ami": {"port": ami_port, "secret": ami_secret},
        "hub": {"port": free_port()},
        "agi": {"port": free_port()},
        "messaging": {"smtp_port": smtp_port, "webhook_port": free_port()},
    }
    for key, values in extra.items():
        cfg[key].update(values)
    return cfg


async def test_everything_reachable_passes_and_prints_no_secret(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = PbxSimulator(ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    sink = await TwilioSink(auth_token=TWILIO_TOKEN).start()
    try:
        with smtp_server(auth=True) as smtp_port:
            cfg = sections(
                sqlite_url,
                sim.port,
                smtp_port,
                messaging={
                    "smtp_username": "mailer",
                    "smtp_password": SMTP_PASSWORD,
                    "twilio_account_sid": sink.account_sid,
                    "twilio_auth_token": TWILIO_TOKEN,
                    "twilio_base_url": sink.base_url,
                },
            )
            path = write_config(tmp_path / "ok.toml", **cfg)
            rc0, out0, _ = await run_cli(["check-config", "--config", str(path)], capsys)
            rc, out, err = await run_cli(
                ["check-config", "--config", str(path), "--allow-sinks"], capsys
            )
    finally:
        await sink.stop()
        await sim.stop()
    # The Twilio base URL is a loopback sink: said plainly, and exit 0 only when allowed.
    warn = [line for line in out0.splitlines() if line.startswith("WARN")]
    assert rc0 == 1 and len(warn) == 1 and "sms sink" in warn[0] and "local sink" in warn[0]
    assert rc == 0, out + err
    assert "all checks passed" in out
    for name in ("database", "ami", "hub bind", "fastagi bind", "webhook bind", "smtp", "twilio"):
        assert any(line.startswith("ok") and f" {name} " in line for line in out.splitlines()), (
            name,
            out,
        )
    assert "login as 'mailer'" in out
    assert "schema at head" in out
    for secret in (AMI_SECRET, SMTP_PASSWORD, TWILIO_TOKEN):
        assert secret not in out + err


async def test_each_problem_named_and_exit_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrong AMI secret, SMTP refused, hub port taken, unmigrated database, bad Twilio token."""
    sim = PbxSimulator(ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    sink = await TwilioSink(auth_token=TWILIO_TOKEN).start()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        cfg = sections(
            f"sqlite:///{tmp_path / 'missing.db'}",
            sim.port,
            free_port(),
            ami_secret="wrong-" + AMI_SECRET,
            hub={"port": taken.getsockname()[1]},
            messaging={
                "twilio_account_sid": sink.account_sid,
                "twilio_auth_token": "wrong-" + TWILIO_TOKEN,
                "twilio_base_url": sink.base_url,
            },
        )
        path = write_config(tmp_path / "bad.toml", **cfg)
        rc, out, err = await run_cli(["check-config", "--config", str(path), "--json"], capsys)
    finally:
        taken.close()
        await sink.stop()
        await sim.stop()
    assert rc == 1
    report = json.loads(out)
    by_name = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert not by_name["ami"]["ok"]
    assert "authentication failed for user 'memberline'" in by_name["ami"]["message"]
    assert not by_name["smtp"]["ok"] and "connection refused" in by_name["smtp"]["message"]
    assert not by_name["hub bind"]["ok"] and "in use" in by_name["hub bind"]["message"]
    assert not by_name["database"]["ok"] and "no database at" in by_name["database"]["message"]
    assert not by_name["twilio"]["ok"] and "authentication failed" in by_name["twilio"]["message"]
    assert by_name["fastagi bind"]["ok"] and by_name["webhook bind"]["ok"]
    assert not (tmp_path / "missing.db").exists(), "the check must not create the database"
    assert "wrong-" not in out + err


async def test_ami_refused_and_no_banner(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    mute_port = server.sockets[0].getsockname()[1]
    try:
        with smtp_server(auth=False) as smtp_port:
            refused = write_config(
                tmp_path / "r.toml", **sections(sqlite_url, free_port(), smtp_port)
            )
            rc1, out1, _ = await run_cli(["check-config", "--config", str(refused)], capsys)
            mute = write_config(tmp_path / "m.toml", **sections(sqlite_url, mute_port, smtp_port))
            rc2, out2, _ = await run_cli(
                ["check-config", "--config", str(mute), "--timeout", "0.5"], capsys
            )
    finally:
        server.close()
    ami1 = next(line for line in out1.splitlines() if " ami " in line)
    ami2 = next(line for line in out2.splitlines() if " ami " in line)
    assert rc1 == 1 and ami1.startswith("FAIL") and "connection refused" in ami1
    assert rc2 == 1 and ami2.startswith("FAIL") and "no banner" in ami2
    smtp = next(line for line in out1.splitlines() if " smtp " in line)
    assert smtp.startswith("ok") and "EHLO" in smtp


async def test_local_sinks_warned_and_exit_zero_only_when_allowed(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No Twilio credentials: the outbox would run on the in-process sinks (SMS and email)."""
    sim = PbxSimulator(ami_users={"memberline": AMI_SECRET}, auth_fail_delay=0.05)
    await sim.start("127.0.0.1", 0)
    try:
        with smtp_server(auth=False) as smtp_port:
            path = write_config(tmp_path / "k.toml", **sections(sqlite_url, sim.port, smtp_port))
            rc, out, _ = await run_cli(["check-config", "--config", str(path)], capsys)
            rc_json, out_json, _ = await run_cli(
                ["check-config", "--config", str(path), "--json"], capsys
            )
            rc_ok, out_ok, _ = await run_cli(
                ["check-config", "--config", str(path), "--allow-sinks"], capsys
            )
    finally:
        await sim.stop()
    warns = [line for line in out.splitlines() if line.startswith("WARN")]
    assert rc == 1, out
    assert any("sms sink" in w and "no member receives them" in w for w in warns), out
    assert any("email sink" in w and "in-process SMTP sink" in w for w in warns), out
    assert "warning(s): messages go to local sinks" in out
    report = json.loads(out_json)
    assert rc_json == 1 and report["ok"] is False
    assert {c["name"] for c in report["checks"] if c["warning"]} == {"sms sink", "email sink"}
    assert rc_ok == 0, out_ok
    assert sum(line.startswith("WARN") for line in out_ok.splitlines()) == 2


async def test_smtp_wrong_password(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with smtp_server(auth=True) as smtp_port:
        cfg = sections(
            sqlite_url,
            free_port(),
            smtp_port,
            messaging={"smtp_username": "mailer", "smtp_password": "nope-" + SMTP_PASSWORD},
        )
        path = write_config(tmp_path / "s.toml", **cfg)
        rc, out, err = await run_cli(["check-config", "--config", str(path)], capsys)
    line = next(x for x in out.splitlines() if " smtp " in x)
    assert rc == 1 and line.startswith("FAIL") and "authentication failed for 'mailer'" in line
    assert SMTP_PASSWORD not in out + err


async def test_invalid_file_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('[ami]\nhots = "pbx"\n', encoding="utf-8")
    rc, _, err = await run_cli(["check-config", "--config", str(path)], capsys)
    assert rc == 2
    assert "unknown key(s) hots" in err
