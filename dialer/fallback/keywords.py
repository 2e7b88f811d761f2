"""Opt-out / opt-in keywords of inbound SMS (pure)."""

from __future__ import annotations

import enum
import unicodedata

OPT_OUT = frozenset(
    {
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
        "退订",
        "退訂",
        "TD",
        "T",
    }
)
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
_STRIP = " \t\r\n.,!?;:'\"()[]，。！？；：、“”‘’（）【】"


class Keyword(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    OTHER = "other"


def classify(body: str) -> Keyword:
    """The whole message (trimmed, case-folded, punctuation stripped) must be a keyword,
    as carriers do: "stop" and "退订。" opt out, "please stop calling me" does not."""
    text = unicodedata.normalize("NFKC", body).strip(_STRIP).upper()
    if text in OPT_OUT:
        return Keyword.OPT_OUT
    if text in OPT_IN:
        return Keyword.OPT_IN
    return Keyword.OTHER
