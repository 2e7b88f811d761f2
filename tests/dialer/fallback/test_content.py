"""Templates, escaping, locales, MIME assembly, unsubscribe tokens, keywords, token bucket."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

import pytest

from dialer.fallback.email import EmailSettings, build_message, message_id_for
from dialer.fallback.keywords import Keyword, classify
from dialer.fallback.purposes import Purpose
from dialer.fallback.ratelimit import TokenBucket
from dialer.fallback.templates import pick_locale, render_email, render_sms
from dialer.fallback.unsubscribe import unsubscribe_token, unsubscribe_url, verify_token


@pytest.mark.parametrize("purpose", list(Purpose))
@pytest.mark.parametrize("locale", ["zh-CN", "zh-TW", "en"])
def test_every_purpose_and_locale_renders(purpose: Purpose, locale: str) -> None:
    fields = {
        "name": "Ann",
        "points": 120,
        "hotline": "400",
        "survey_url": "https://s",
        "callback_at": "10:00",
        "item": "Mug",
        "points_used": 50,
    }
    sms = render_sms(purpose, locale, fields)
    mail = render_email(purpose, locale, fields, "https://u/unsubscribe?m=1&t=x")
    assert "Ann" in sms and "Ann" in mail.text and "Ann" in mail.html
    assert "https://u/unsubscribe?m=1&amp;t=x" in mail.html


def test_html_is_escaped_text_is_not() -> None:
    fields = {"name": '<script>alert("x")</script>', "hotline": "400"}
    mail = render_email(Purpose.EXHAUSTED, "en", fields, "https://u")
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert '<script>alert("x")</script>' in mail.text


def test_locale_fallbacks() -> None:
    assert pick_locale("en-US") == "en" and pick_locale("zh_HK") == "zh-TW"
    assert pick_locale("fr-FR") == "zh-CN" and pick_locale(None) == "zh-CN"
    assert "生日快樂" in render_sms(Purpose.BIRTHDAY, "zh-HK", {"name": "陳"})


def test_mime_message_parses_with_both_parts_and_headers() -> None:
    settings = EmailSettings(sender="会员中心 <care@memberline.example>")
    rendered = render_email(
        Purpose.BIRTHDAY, "zh-CN", {"name": "王芳"}, "https://h/unsubscribe?m=1&t=a"
    )
    out = build_message(
        settings,
        "w@example.com",
        rendered,
        key="birthday:2026:1:email",
        unsubscribe_url="https://h/unsubscribe?m=1&t=a",
        date=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
    )
    msg = message_from_bytes(out.data, policy=policy.default)
    assert msg["Subject"] == "生日快乐，王芳"
    assert msg["From"].addresses[0].display_name == "会员中心"
    assert (
        msg["Message-ID"]
        == out.message_id
        == message_id_for("birthday:2026:1:email", "memberline.example")
    )
    assert msg["List-Unsubscribe"] == "<https://h/unsubscribe?m=1&t=a>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and "王芳" in plain.get_content()
    assert html is not None and "<p>" in html.get_content()
    again = build_message(
        settings,
        "w@example.com",
        rendered,
        key="birthday:2026:1:email",
        unsubscribe_url="https://h/unsubscribe?m=1&t=a",
        date=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
    )
    assert again.data == out.data  # deterministic: a retry carries the same Message-ID


def test_unsubscribe_tokens() -> None:
    token = unsubscribe_token(b"k", 42)
    assert verify_token(b"k", 42, token)
    assert not verify_token(b"k", 43, token) and not verify_token(b"other", 42, token)
    assert unsubscribe_url("https://h/", b"k", 42) == f"https://h/unsubscribe?m=42&t={token}"


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop. ",
        "UNSUBSCRIBE",
        "cancel",
        "END",
        "quit",
        "REVOKE",
        "optout",
        "STOPALL",
        "退订",
        "退订。",
        "退訂",
        "td",
        "ＴＤ",
    ],
)
def test_opt_out_keywords(body: str) -> None:
    assert classify(body) is Keyword.OPT_OUT


@pytest.mark.parametrize("body", ["START", "yes", "Unstop!"])
def test_opt_in_keywords(body: str) -> None:
    assert classify(body) is Keyword.OPT_IN


@pytest.mark.parametrize("body", ["please stop calling", "hello", "", "停止发送吧"])
def test_other_messages(body: str) -> None:
    assert classify(body) is Keyword.OTHER


def test_token_bucket_paces() -> None:
    now = [0.0]
    bucket = TokenBucket(10, burst=2, clock=lambda: now[0])
    assert bucket.try_take() == 0 and bucket.try_take() == 0
    assert bucket.try_take() == pytest.approx(0.1)
    now[0] += 0.1
    assert bucket.try_take() == 0
    assert TokenBucket(0).try_take() == 0  # unlimited
