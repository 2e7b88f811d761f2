"""The FastAGI wire format, pure: the request header block and reply lines.

Replies as real Asterisk 22 writes them (``tests/fixtures/ami-traces/fastagi-survey*.raw``)::

    200 result=1 (42)            GET VARIABLE: found, value in parentheses
    200 result=0                 GET VARIABLE: not set / ANSWER ok
    200 result=4                 GET DATA: digits typed
    200 result= (timeout)        GET DATA: nothing typed before the timeout
    200 result=5 (timeout)       GET DATA: "5" typed, then the timeout (a valid entry)
    200 result=-1                GET DATA / STREAM FILE: hang-up (or a failure)
    200 result=0 endpos=7680     STREAM FILE: played to the end
    HANGUP                       pushed unprompted after the channel hung up
    511 Command Not Permitted on a dead channel or intercept routine
    510 Invalid or unknown command
    520-Invalid command syntax.  Proper usage follows:  ... 520 End of proper usage.

panoramisk 1.4 maps ``(timeout)`` to nothing and treats ``HANGUP`` as the reply to the next
command (so every later reply is read one command late); :class:`AgiReply` keeps both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

__all__ = ["AgiReply", "AgiRequestInfo", "parse_headers", "parse_reply"]

_REPLY = re.compile(r"^(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)$")
_RESULT = re.compile(r"^result=(?P<result>\S*)(?:\s+\((?P<data>[^)]*)\))?(?P<extra>.*)$")
_KV = re.compile(r"(\w+)=(\S*)")


@dataclass(frozen=True)
class AgiReply:
    code: int
    line: str
    result: str | None = None
    """The ``result=`` value (``""`` when empty, None when the line has none)."""
    data: str | None = None
    """The parenthesised part: a variable's value, or ``timeout``."""
    extra: dict[str, str] = field(default_factory=dict)
    """Further ``key=value`` pairs (``endpos``)."""
    continued: bool = False
    """``520-``: a multi-line usage message follows."""

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def failed(self) -> bool:
        """``result=-1``: the application failed or the channel hung up."""
        return self.code == 200 and self.result == "-1"

    @property
    def dead_channel(self) -> bool:
        return self.code == 511


def parse_reply(line: str) -> AgiReply:
    """Parse one reply line (without its LF). Raises ValueError for a line that is not one."""
    m = _REPLY.match(line)
    if m is None:
        raise ValueError(f"not an AGI reply line: {line!r}")
    code, rest = int(m["code"]), m["rest"]
    if m["sep"] == "-":
        return AgiReply(code, line, continued=True)
    r = _RESULT.match(rest)
    if code != 200 or r is None:
        return AgiReply(code, line)
    extra = dict(_KV.findall(r["extra"]))
    return AgiReply(code, line, r["result"], r["data"], extra)


@dataclass(frozen=True)
class AgiRequestInfo:
    """The request header block, with the script split into path and query."""

    headers: dict[str, str]
    path: str
    query: dict[str, str]
    args: tuple[str, ...]

    @property
    def uniqueid(self) -> str:
        return self.headers.get("agi_uniqueid", "")

    def params(self) -> dict[str, str]:
        """``key=value`` pairs from the query string, then from AGI arguments (args win)."""
        out = dict(self.query)
        for arg in self.args:
            key, sep, value = arg.partition("=")
            if sep and key:
                out[key.strip().lower()] = value.strip()
        return out


def parse_headers(block: bytes, encoding: str = "utf-8") -> AgiRequestInfo:
    """Parse the ``agi_*: value`` lines Asterisk sends first (up to the blank line)."""
    headers: dict[str, str] = {}
    for raw in block.decode(encoding, errors="replace").split("\n"):
        line = raw.rstrip("\r")
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        headers[key.strip()] = value[1:] if value.startswith(" ") else value
    script = headers.get("agi_network_script", "")
    path, _, query = script.partition("?")
    args = []
    n = 1
    while f"agi_arg_{n}" in headers:
        args.append(headers[f"agi_arg_{n}"])
        n += 1
    q = {k.lower(): v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    return AgiRequestInfo(headers, path.strip("/"), q, tuple(args))
