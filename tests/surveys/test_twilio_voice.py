"""Twilio voice webhooks over real HTTP to a twisted.web site on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from sqlalchemy import Engine, func, select
from twilio.request_validator import RequestValidator
from twisted.web.resource import Resource
from twisted.web.server import Site

from crm_bridge.db import session_scope
from crm_bridge.models import CallbackTask, Complaint, Inquiry, SurveyAnswer, SurveyResponse
from surveys.store import SurveyRecorder
from surveys.twilio_voice import SurveyVoiceResource, mount_survey_voice
from tests.surveys.conftest import Seed, sqlite_only

pytestmark = pytest.mark.e2e

TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC = "https://hooks.example.com/ml"
"""What Twilio calls (a proxy in front of us strips /ml): signatures are over this URL."""


@dataclass
class Site_:
    local: str

    def to_local(self, public_url: str) -> str:
        assert public_url.startswith(PUBLIC), public_url
        return self.local + public_url[len(PUBLIC) :]


@pytest_asyncio.fixture
async def site(engine: Engine) -> AsyncIterator[Site_]:
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor
    root = Resource()
    voice = SurveyVoiceResource(SurveyRecorder(engine), auth_token=TOKEN, public_url=PUBLIC)
    mount_survey_voice(root, voice)
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    yield Site_(f"http://127.0.0.1:{port.getHost().port}")
    await voice.close()
    await port.stopListening().asFuture(asyncio.get_running_loop())


def _post(
    site: Site_, public_url: str, params: dict[str, str], signature: str | None
) -> tuple[int, str]:
    req = urllib.request.Request(
        site.to_local(public_url),
        data=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    if signature is not None:
        req.add_header("X-Twilio-Signature", signature)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def twilio_post(site: Site_, public_url: str, params: dict[str, str]) -> ET.Element:
    """POST as Twilio does, correctly signed; return the TwiML root."""
    sig = RequestValidator(TOKEN).compute_signature(public_url, params)
    status, body = await asyncio.to_thread(_post, site, public_url, params, sig)
    assert status == 200, body
    return ET.fromstring(body)


def _call(sid: str, **extra: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+8613800138000", **extra}


def _action(twiml: ET.Element) -> str:
    gather = twiml.find("Gather")
    assert gather is not None
    return gather.get("action") or ""


def _count(engine: Engine, model: type) -> int:
    with session_scope(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


async def test_full_call_with_valid_signatures(site: Site_, engine: Engine, seeded: Seed) -> None:
    start = f"{PUBLIC}/twilio/voice/survey/satisfaction?member={seeded.member_id}&campaign={seeded.campaign_id}"
    twiml = await twilio_post(site, start, _call("CA1"))
    says = twiml.findall("Say")
    assert says[0].get("language") == "cmn-CN" and "会员服务中心" in (says[0].text or "")
    gather = twiml.find("Gather")
    assert gather is not None
    assert (gather.get("input"), gather.get("numDigits"), gather.get("timeout")) == (
        "dtmf",
        "1",
        "5",
    )
    action = gather.get("action") or ""
    assert action == f"{PUBLIC}/twilio/voice/survey/satisfaction/answer?q=q_csat&a=1&lang=zh-CN"
    assert "非常满意请按5" in (gather.findtext("Say") or "")
    redirect = twiml.find("Redirect")
    assert redirect is not None and redirect.text == action

    # CSAT 1: stored and escalated at once
    twiml = await twilio_post(site, action, _call("CA1", Digits="1"))
    with session_scope(engine) as s:
        r = s.scalars(select(SurveyResponse)).one()
        assert (r.status, r.csat, r.channel, r.response_key) == ("partial", 1, "twilio", "CA1")
        complaint = s.scalars(select(Complaint)).one()
        assert (complaint.owner_agent_id, complaint.source_ref) == (
            seeded.agent_id,
            f"survey:{r.id}",
        )
    nps = twiml.find("Gather")
    assert nps is not None and nps.get("numDigits") == "2" and nps.get("finishOnKey") == "#"
    nps_action = nps.get("action") or ""

    # silence: Twilio follows the Redirect (no Digits) -> notice + the same question, attempt 2
    twiml = await twilio_post(site, nps_action, _call("CA1"))
    assert "没有收到您的按键" in (twiml.findtext("Say") or "")
    again = twiml.find("Gather")
    assert again is not None and "q=q_nps&a=2" in (again.get("action") or "")

    twiml = await twilio_post(site, again.get("action") or "", _call("CA1", Digits="3"))
    cb = twiml.find("Gather")
    assert cb is not None
    twiml = await twilio_post(site, cb.get("action") or "", _call("CA1", Digits="1"))
    assert twiml.find("Gather") is None and twiml.find("Hangup") is not None
    assert "感谢" in (twiml.findtext("Say") or "")

    with session_scope(engine) as s:
        r = s.scalars(select(SurveyResponse)).one()
        assert (r.status, r.csat, r.nps, r.callback_requested) == ("complete", 1, 3, True)
        answers = {a.question_id: a.value for a in s.scalars(select(SurveyAnswer))}
        assert answers == {"q_csat": "1", "q_nps": "3", "q_callback": "1"}
    # one complaint and one callback task in all, however many low answers came in
    assert (_count(engine, Complaint), _count(engine, CallbackTask), _count(engine, Inquiry)) == (
        1,
        1,
        0,
    )


@sqlite_only
async def test_english_member_and_invalid_key(site: Site_, engine: Engine, seeded: Seed) -> None:
    start = f"{PUBLIC}/twilio/voice/survey/satisfaction?member={seeded.orphan_member_id}"
    twiml = await twilio_post(site, start, _call("CA2"))
    assert {s.get("language") for s in twiml.iter("Say")} == {"en-US"}
    twiml = await twilio_post(site, _action(twiml), _call("CA2", Digits="9"))
    assert twiml.findtext("Say") == "Sorry, that is not a valid choice."
    assert "a=2" in _action(twiml)


@pytest.mark.parametrize("signature", ["forged", None, "valid-for-other-url"])
@sqlite_only
async def test_forged_or_missing_signature_is_403(
    site: Site_,
    engine: Engine,
    seeded: Seed,
    signature: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"{PUBLIC}/twilio/voice/survey/satisfaction/answer?q=q_csat&a=1&lang=en"
    params = _call("CA3", Digits="1")
    if signature == "forged":
        sig: str | None = "bm90IGEgcmVhbCBzaWduYXR1cmU="
    elif signature == "valid-for-other-url":  # signed for q_nps, replayed with q_csat
        sig = RequestValidator(TOKEN).compute_signature(url.replace("q_csat", "q_nps"), params)
    else:
        sig = None
    with caplog.at_level(logging.WARNING, logger="surveys.twilio_voice"):
        status, body = await asyncio.to_thread(_post, site, url, params, sig)
    assert status == 403, body
    assert any("refused (403)" in r.getMessage() for r in caplog.records)
    assert _count(engine, SurveyResponse) == 0 and _count(engine, SurveyAnswer) == 0


@sqlite_only
async def test_body_params_are_signed_too(site: Site_, engine: Engine, seeded: Seed) -> None:
    """A valid signature with a changed Digits value (tampered body) is refused."""
    url = f"{PUBLIC}/twilio/voice/survey/satisfaction/answer?q=q_csat&a=1&lang=en"
    sig = RequestValidator(TOKEN).compute_signature(url, _call("CA4", Digits="5"))
    status, _ = await asyncio.to_thread(_post, site, url, _call("CA4", Digits="1"), sig)
    assert status == 403
    assert _count(engine, SurveyResponse) == 0


@sqlite_only
async def test_start_survey_services_wires_agi_and_twilio(engine: Engine) -> None:
    from surveys.service import start_survey_services

    root = Resource()
    services = await start_survey_services(
        engine, agi_port=0, web_root=root, twilio_auth_token=TOKEN, public_url=PUBLIC
    )
    try:
        assert root.children[b"twilio"].children[b"voice"].children[b"survey"] is services.voice
        _reader, writer = await asyncio.open_connection("127.0.0.1", services.agi.port)
        writer.close()
    finally:
        await services.close()
    no_token = await start_survey_services(engine, agi_port=0, web_root=Resource())
    assert no_token.voice is None
    await no_token.close()
