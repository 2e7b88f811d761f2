"""Logging setup: plain or JSON lines on stderr, with secrets redacted.

Every secret the process knows (AMI secret, Twilio token, SMTP password, hub
passwords in flight) is registered with :func:`register_secret`; the filter
replaces any occurrence in a log record's final message with ``********``.
This is a second line of defence: code must not log secrets in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Make sure ``value`` never appears in a log line (values shorter than 4 chars are ignored)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for s in _SECRETS:
        if s in text:
            text = text.replace(s, "********")
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            msg = redact(record.getMessage())
            record.msg, record.args = msg, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            doc.update(extra)
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


def setup_logging(level: str = "WARNING", *, json_lines: bool = False) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_memberline", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._memberline = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
