"""Connection checks behind ``memberline check-config``: one coroutine per dependency.

Each check returns a :class:`Check` (name, ok, message). Messages name the host and
port and what went wrong ("connection refused", "authentication failed", "no banner",
"address in use"...), never a secret: database URLs are shown with the password
hidden, and AMI/SMTP/Twilio credentials are only ever sent to their servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from memberline.config import Config
from memberline.dbopen import database_problem, safe_url

__all__ = ["Check", "run_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    warning: bool = False
    """Works, but not as an operator would assume (messages going to a local sink)."""


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"host name not resolved ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


# --------------------------------------------------------------------------- database
def _check_database_sync(url: str) -> Check:
    problem, current = database_problem(url)
    if problem is not None:
        return Check("database", False, problem)
    return Check("database", True, f"{safe_url(url)}: connected, schema at head ({current})")


async def check_database(cfg: Config, limit_s: float) -> Check:
    return await asyncio.wait_for(
        asyncio.to_thread(_check_database_sync, cfg.database.url), limit_s
    )


# --------------------------------------------------------------------------- AMI
@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Silence a library's own log lines while a check reports the same failure itself."""
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() > logging.DEBUG:
            lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


async def check_ami(cfg: Config, limit_s: float) -> Check:
    from cti.ami.client import AmiClient
    from cti.ami.errors import AmiAuthError, AmiError, AmiNoBanner

    a = cfg.ami
    where = f"{a.host}:{a.port}"
    client = AmiClient(
        a.host,
        a.port,
        a.username,
        a.secret.get(),
        action_timeout=limit_s,
        banner_timeout=limit_s,
        ping_interval=3600.0,
        reconnect_initial=3600.0,
        reconnect_max=3600.0,
        name="check-ami",
    )
    with _quiet("cti.ami.client"):
        try:
            await asyncio.wait_for(client.start(fail_fast=True), limit_s + 1.0)
            with contextlib.suppress(AmiError):
                await client.send_action({"Action": "Logoff"}, timeout=limit_s)
        except AmiAuthError:
            return Check(
                "ami",
                False,
                f"{where}: authentication failed for user {a.username!r}"
                + ("" if a.secret else " (no secret set: MEMBERLINE_AMI_SECRET)"),
            )
        except AmiNoBanner:
            return Check("ami", False, f"{where}: no banner (is this an Asterisk AMI port?)")
        except (OSError, TimeoutError) as exc:
            return Check("ami", False, f"{where}: {_os_reason(exc)}")
        except AmiError as exc:
            return Check("ami", False, f"{where}: {type(exc).__name__}")
        finally:
            await client.close()
    return Check("ami", True, f"{where}: banner and login as {a.username!r} ok")


# --------------------------------------------------------------------------- binds
def check_bind(name: str, host: str, port: int) -> Check:
    """Can a server listen on ``host:port``? (Nothing stays open afterwards.)"""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return Check(name, False, f"{where}: {_os_reason(exc)}")
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return Check(name, False, f"{where}: address already in use (is it already running?)")
        if exc.errno == errno.EADDRNOTAVAIL:
            return Check(name, False, f"{where}: address not available on this machine")
        if exc.errno == errno.EACCES:
            return Check(name, False, f"{where}: permission denied (port below 1024?)")
        return Check(name, False, f"{where}: cannot bind: {_os_reason(exc)}")
    finally:
        sock.close()
    return Check(name, True, f"{where}: free")


def check_hub_tls(cfg: Config) -> Check | None:
    h = cfg.hub
    if not h.tls_cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(h.tls_cert, h.tls_key)
    except FileNotFoundError as exc:
        return Check("hub tls", False, f"{exc.filename}: no such file")
    except (ssl.SSLError, OSError) as exc:
        return Check("hub tls", False, f"{h.tls_cert}/{h.tls_key}: unusable: {exc}")
    return Check("hub tls", True, f"certificate {h.tls_cert} loads")


def check_unsubscribe_secret(cfg: Config) -> Check:
    """Emails carry unsubscribe links signed with this key: anyone who can guess it can
    unsubscribe any member. The derived key (no secret set) is only acceptable while the
    webhooks are reachable from this machine alone."""
    m = cfg.messaging
    secret = m.unsubscribe_secret.get()
    if secret:
        if len(secret) < 16:
            return Check("unsubscribe secret", False, "shorter than 16 characters")
        return Check("unsubscribe secret", True, "set")
    host = _url_host(m.public_url)
    if host in ("127.0.0.1", "localhost", "::1"):
        return Check("unsubscribe secret", True, "not set: derived key (public_url is loopback)")
    return Check(
        "unsubscribe secret",
        False,
        f"not set while public_url is {m.public_url}: set MEMBERLINE_UNSUBSCRIBE_SECRET",
    )


def _url_host(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "").lower()


# --------------------------------------------------------------------------- SMTP
async def check_smtp(cfg: Config, limit_s: float) -> Check:
    import aiosmtplib

    m = cfg.messaging
    where = f"{m.smtp_host}:{m.smtp_port}"
    smtp = aiosmtplib.SMTP(
        hostname=m.smtp_host,
        port=m.smtp_port,
        timeout=limit_s,
        use_tls=m.smtp_tls == "implicit",
        start_tls=False,
    )
    steps: list[str] = []
    try:
        await smtp.connect()
        steps.append("connect")
        await smtp.ehlo()
        steps.append("EHLO")
        if m.smtp_tls == "starttls":
            await smtp.starttls()
            steps.append("STARTTLS")
        if m.smtp_username:
            await smtp.login(m.smtp_username, m.smtp_password.get())
            steps.append(f"login as {m.smtp_username!r}")
    except aiosmtplib.SMTPAuthenticationError:
        return Check("smtp", False, f"{where}: authentication failed for {m.smtp_username!r}")
    except aiosmtplib.SMTPConnectError as exc:
        cause = exc.__cause__ or exc.__context__
        reason = _os_reason(cause) if isinstance(cause, OSError) else "cannot connect"
        return Check("smtp", False, f"{where}: {reason}")
    except aiosmtplib.SMTPException as exc:
        after = steps[-1] if steps else "start"
        return Check("smtp", False, f"{where}: failed after {after}: {exc}")
    except (OSError, TimeoutError) as exc:
        return Check("smtp", False, f"{where}: {_os_reason(exc)}")
    finally:
        with contextlib.suppress(Exception):
            if smtp.is_connected:
                await smtp.quit()
        smtp.close()
    return Check("smtp", True, f"{where}: {', '.join(steps)} ok")


# --------------------------------------------------------------------------- Twilio
async def check_twilio(cfg: Config, limit_s: float) -> Check:
    m = cfg.messaging
    if not m.twilio_account_sid:
        return Check("twilio", True, "no account sid: SMS go to the local SMS sink")
    from twilio.base.exceptions import TwilioException, TwilioRestException
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    base = m.twilio_base_url.rstrip("/") or "https://api.twilio.com"
    http = AsyncTwilioHttpClient(timeout=limit_s)
    client = Client(m.twilio_account_sid, m.twilio_auth_token.get(), http_client=http)
    if m.twilio_base_url:
        client.api.base_url = base
    try:
        try:
            await client.api.v2010.accounts(m.twilio_account_sid).fetch_async()
            what = "account fetched"
        except TwilioRestException as exc:
            if exc.status != 404 or not m.twilio_base_url:
                raise
            # The local sink has no account resource; its message list checks auth just as well.
            await client.messages.list_async(limit=1)
            what = "messages listed"
    except TwilioException as exc:
        # Fetches raise TwilioRestException(status); page lists a TwilioException "HTTP 401 ...".
        status = getattr(exc, "status", None)
        if status is None:
            found = re.search(r"HTTP (\d{3})", str(exc))
            status = int(found.group(1)) if found else 0
        if status in (401, 403):
            return Check("twilio", False, f"{base}: authentication failed (account sid/auth token)")
        return Check("twilio", False, f"{base}: HTTP {status}: {getattr(exc, 'msg', exc)}")
    except Exception as exc:
        cause = getattr(exc, "os_error", None) or exc.__cause__ or exc
        reason = _os_reason(cause) if isinstance(cause, OSError) else type(exc).__name__
        return Check("twilio", False, f"{base}: {reason}")
    finally:
        session = http.session
        if session is not None:
            await session.close()
    return Check("twilio", True, f"{base}: {what}")


# --------------------------------------------------------------------------- sinks
def _loopback(url: str) -> bool:
    host = _url_host(url)
    return host in ("localhost", "::1") or host.startswith("127.")


def check_sinks(cfg: Config) -> list[Check]:
    """Warnings when SMS or email would go to a local sink instead of a provider.

    Mirrors :func:`memberline.stack.start_fallback`: without Twilio credentials
    both channels go to the in-process stand-ins (nothing reaches a member); a Twilio base
    URL on a loopback address is a local sink as well.
    """
    m = cfg.messaging
    out: list[Check] = []
    if not (m.twilio_account_sid and m.twilio_auth_token.get()):
        out.append(
            Check(
                "sms sink",
                False,
                "WARNING: no Twilio account sid/auth token: SMS go to the in-process local sink, "
                "no member receives them",
                warning=True,
            )
        )
        out.append(
            Check(
                "email sink",
                False,
                "WARNING: without Twilio credentials the outbox runs on local sinks: email goes "
                "to the in-process SMTP sink, not to "
                f"{m.smtp_host}:{m.smtp_port}; no member receives it",
                warning=True,
            )
        )
    elif m.twilio_base_url and _loopback(m.twilio_base_url):
        out.append(
            Check(
                "sms sink",
                False,
                f"WARNING: twilio_base_url is {m.twilio_base_url}: SMS go to a local sink, "
                "not to Twilio",
                warning=True,
            )
        )
    return out


# --------------------------------------------------------------------------- all
async def run_checks(cfg: Config, limit_s: float = 5.0) -> list[Check]:
    """Every check, in a fixed order (the slow network ones run concurrently)."""

    async def guarded(name: str, coro: Awaitable[Check]) -> Check:
        try:
            return await coro
        except TimeoutError:
            return Check(name, False, "timed out")
        except Exception as exc:  # a check must never take the others down
            return Check(name, False, f"check failed: {type(exc).__name__}: {exc}")

    network: list[tuple[str, Callable[[Config, float], Awaitable[Check]]]] = [
        ("database", check_database),
        ("ami", check_ami),
        ("smtp", check_smtp),
        ("twilio", check_twilio),
    ]
    results = await asyncio.gather(*(guarded(n, fn(cfg, limit_s)) for n, fn in network))
    out = list(results[:2])
    out.append(check_bind("hub bind", cfg.hub.bind, cfg.hub.port))
    tls = check_hub_tls(cfg)
    if tls is not None:
        out.append(tls)
    out.append(check_bind("fastagi bind", cfg.agi.bind, cfg.agi.port))
    out.append(check_bind("webhook bind", cfg.messaging.webhook_bind, cfg.messaging.webhook_port))
    out.append(check_unsubscribe_secret(cfg))
    out.extend(results[2:])
    out.extend(check_sinks(cfg))
    return out
