"""Message templates per purpose and locale (zh-CN, zh-TW, en), rendered with jinja2.

The SMS text and the plain-text email body are rendered without escaping; the HTML body is
rendered by an autoescaping environment, so member fields (names, notes typed by agents,
payload values) can never inject markup. Unknown locales fall back to ``zh-CN``
(``zh-HK``/``zh-MO`` to ``zh-TW``, any ``en-*`` to ``en``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2

from dialer.fallback.purposes import Purpose

LOCALES = ("zh-CN", "zh-TW", "en")

# (sms, subject, body) per purpose and locale; the body is plain text, one paragraph per line.
_TEXTS: dict[Purpose, dict[str, tuple[str, str, str]]] = {
    Purpose.EXHAUSTED: {
        "zh-CN": (
            "【会员中心】{{ name }}您好，我们多次致电未能联系到您。如需帮助请回电 {{ hotline }}。",
            "我们未能联系到您",
            "{{ name }}您好：\n我们近期多次致电未能联系到您。如有需要，请致电 {{ hotline }}，会员服务中心随时为您服务。",
        ),
        "zh-TW": (
            "【會員中心】{{ name }}您好，我們多次致電未能聯繫到您。如需協助請回電 {{ hotline }}。",
            "我們未能聯繫到您",
            "{{ name }}您好：\n我們近期多次致電未能聯繫到您。如有需要，請致電 {{ hotline }}，會員服務中心隨時為您服務。",
        ),
        "en": (
            "Hi {{ name }}, we tried to call you about your membership. Call us back on {{ hotline }}.",
            "We tried to reach you",
            "Dear {{ name }},\nWe tried to call you a few times. If we can help, call us on {{ hotline }}.",
        ),
    },
    Purpose.DORMANT_GREETING: {
        "zh-CN": (
            "【会员中心】{{ name }}，好久不见！您的积分余额 {{ points }}，欢迎回来看看。",
            "好久不见，{{ name }}",
            "{{ name }}您好：\n好久不见！您的会员积分余额为 {{ points }}，期待您再次光临。",
        ),
        "zh-TW": (
            "【會員中心】{{ name }}，好久不見！您的積分餘額 {{ points }}，歡迎回來看看。",
            "好久不見，{{ name }}",
            "{{ name }}您好：\n好久不見！您的會員積分餘額為 {{ points }}，期待您再次光臨。",
        ),
        "en": (
            "Hi {{ name }}, we miss you! You have {{ points }} points waiting.",
            "We miss you, {{ name }}",
            "Dear {{ name }},\nIt has been a while. You have {{ points }} points waiting for you.",
        ),
    },
    Purpose.BIRTHDAY: {
        "zh-CN": (
            "【会员中心】{{ name }}，祝您生日快乐！",
            "生日快乐，{{ name }}",
            "{{ name }}您好：\n祝您生日快乐！感谢您一直以来的支持。",
        ),
        "zh-TW": (
            "【會員中心】{{ name }}，祝您生日快樂！",
            "生日快樂，{{ name }}",
            "{{ name }}您好：\n祝您生日快樂！感謝您一直以來的支持。",
        ),
        "en": (
            "Happy birthday, {{ name }}!",
            "Happy birthday, {{ name }}",
            "Dear {{ name }},\nHappy birthday from all of us, and thank you for being a member.",
        ),
    },
    Purpose.HOLIDAY: {
        "zh-CN": (
            "【会员中心】{{ name }}，{{ holiday }}快乐！祝您和家人节日愉快。",
            "{{ holiday }}快乐，{{ name }}",
            "{{ name }}您好：\n{{ holiday }}快乐！祝您和家人节日愉快，感谢您一直以来的支持。",
        ),
        "zh-TW": (
            "【會員中心】{{ name }}，{{ holiday }}快樂！祝您和家人節日愉快。",
            "{{ holiday }}快樂，{{ name }}",
            "{{ name }}您好：\n{{ holiday }}快樂！祝您和家人節日愉快，感謝您一直以來的支持。",
        ),
        "en": (
            "Happy {{ holiday }}, {{ name }}! Best wishes to you and your family.",
            "Happy {{ holiday }}, {{ name }}",
            "Dear {{ name }},\nHappy {{ holiday }}! Best wishes to you and your family, and thank you for being a member.",
        ),
    },
    Purpose.SURVEY_INVITATION: {
        "zh-CN": (
            "【会员中心】{{ name }}，邀请您参与满意度调查：{{ survey_url }}",
            "邀请您参与满意度调查",
            "{{ name }}您好：\n感谢您的惠顾，诚邀您花一分钟参与满意度调查：{{ survey_url }}",
        ),
        "zh-TW": (
            "【會員中心】{{ name }}，邀請您參與滿意度調查：{{ survey_url }}",
            "邀請您參與滿意度調查",
            "{{ name }}您好：\n感謝您的惠顧，誠邀您花一分鐘參與滿意度調查：{{ survey_url }}",
        ),
        "en": (
            "Hi {{ name }}, tell us how we did: {{ survey_url }}",
            "How did we do?",
            "Dear {{ name }},\nThank you for your visit. Tell us how we did in one minute: {{ survey_url }}",
        ),
    },
    Purpose.CALLBACK_CONFIRMATION: {
        "zh-CN": (
            "【会员中心】{{ name }}，我们将于 {{ callback_at }} 给您回电。",
            "回电确认",
            "{{ name }}您好：\n我们已安排在 {{ callback_at }} 给您回电。",
        ),
        "zh-TW": (
            "【會員中心】{{ name }}，我們將於 {{ callback_at }} 給您回電。",
            "回電確認",
            "{{ name }}您好：\n我們已安排在 {{ callback_at }} 給您回電。",
        ),
        "en": (
            "Hi {{ name }}, we will call you back at {{ callback_at }}.",
            "Your callback is booked",
            "Dear {{ name }},\nWe will call you back at {{ callback_at }}.",
        ),
    },
    Purpose.POINTS_REDEMPTION: {
        "zh-CN": (
            "【会员中心】{{ name }}，您已用 {{ points_used }} 积分兑换 {{ item }}，余额 {{ points }}。",
            "积分兑换确认",
            "{{ name }}您好：\n您已使用 {{ points_used }} 积分兑换 {{ item }}。当前积分余额：{{ points }}。",
        ),
        "zh-TW": (
            "【會員中心】{{ name }}，您已用 {{ points_used }} 積分兌換 {{ item }}，餘額 {{ points }}。",
            "積分兌換確認",
            "{{ name }}您好：\n您已使用 {{ points_used }} 積分兌換 {{ item }}。目前積分餘額：{{ points }}。",
        ),
        "en": (
            "Hi {{ name }}, you redeemed {{ points_used }} points for {{ item }}. Balance: {{ points }}.",
            "Your redemption",
            "Dear {{ name }},\nYou redeemed {{ points_used }} points for {{ item }}. Your balance is {{ points }}.",
        ),
    },
}

_FOOTER = {
    "zh-CN": "如不想再收到此类邮件，请点击退订：",
    "zh-TW": "如不想再收到此類郵件，請點擊退訂：",
    "en": "To stop these emails, unsubscribe here:",
}

_HTML = """<!DOCTYPE html>
<html lang="{{ locale }}"><head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body>{% for p in paragraphs %}<p>{{ p }}</p>{% endfor %}
<p style="font-size:small;color:#666">{{ footer }} <a href="{{ unsubscribe_url }}">{{ unsubscribe_url }}</a></p>
</body></html>"""

_TEXT_ENV = jinja2.Environment(
    autoescape=False, undefined=jinja2.Undefined, keep_trailing_newline=False
)
_HTML_ENV = jinja2.Environment(autoescape=True)
_HTML_TEMPLATE = _HTML_ENV.from_string(_HTML)
_text = functools.lru_cache(maxsize=512)(_TEXT_ENV.from_string)


def pick_locale(locale: str | None) -> str:
    loc = (locale or "").replace("_", "-")
    if loc in LOCALES:
        return loc
    low = loc.lower()
    if low.startswith("en"):
        return "en"
    if low in ("zh-hk", "zh-mo", "zh-hant") or low.startswith("zh-hant"):
        return "zh-TW"
    return "zh-CN"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _fields(base: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in base.items() if not k.startswith("_")}


def render_sms(purpose: Purpose | str, locale: str | None, fields: Mapping[str, Any]) -> str:
    sms, _, _ = _TEXTS[Purpose(purpose)][pick_locale(locale)]
    return _text(sms).render(_fields(fields)).strip()


def render_email(
    purpose: Purpose | str, locale: str | None, fields: Mapping[str, Any], unsubscribe_url: str
) -> RenderedEmail:
    loc = pick_locale(locale)
    _, subject_t, body_t = _TEXTS[Purpose(purpose)][loc]
    values = _fields(fields)
    subject = " ".join(_text(subject_t).render(values).split())
    body = _text(body_t).render(values)
    paragraphs = [p for p in body.split("\n") if p.strip()]
    text = "\n\n".join(paragraphs) + f"\n\n--\n{_FOOTER[loc]} {unsubscribe_url}\n"
    html = _HTML_TEMPLATE.render(
        locale=loc,
        subject=subject,
        paragraphs=paragraphs,
        footer=_FOOTER[loc],
        unsubscribe_url=unsubscribe_url,
    )
    return RenderedEmail(subject=subject, text=text, html=html)
