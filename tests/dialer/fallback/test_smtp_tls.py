"""STARTTLS and implicit TLS against aiosmtpd with a self-signed certificate (openssl)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from dialer.fallback import EmailSettings, Purpose, SendOutcome, SmtpEmail
from dialer.fallback.email import build_message
from dialer.fallback.sinks import SmtpSink
from dialer.fallback.templates import render_email

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is part of the base image"
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
async def test_tls_modes_with_auth(cert: tuple[Path, Path], mode: str) -> None:
    crt, key = cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(crt, key)
    sink = await SmtpSink(
        username="ml", password="pw", tls_context=server_ctx, implicit_tls=mode == "implicit"
    ).start()
    try:
        settings = EmailSettings(
            port=sink.port,
            tls=mode,
            username="ml",
            password="pw",
            cert_bundle=str(crt),
            timeout_s=5,
        )
        rendered = render_email(Purpose.BIRTHDAY, "zh-TW", {"name": "陳"}, "https://u/x")
        msg = build_message(
            settings, "chen@example.com", rendered, key=f"k:{mode}", unsubscribe_url="https://u/x"
        )
        client = SmtpEmail(settings)
        result = await client.send(msg)
        await client.close()
        assert result.outcome is SendOutcome.SENT, result.detail
        assert sink.count(msg.message_id) == 1
        plain = SmtpEmail(
            EmailSettings(port=sink.port, tls="none", username="ml", password="pw", timeout_s=2)
        )
        refused = await plain.send(msg)  # the server insists on TLS: never silently in clear
        await plain.close()
        assert refused.outcome is not SendOutcome.SENT and sink.count(msg.message_id) == 1
    finally:
        await sink.stop()
