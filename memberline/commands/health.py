"""``memberline health [--hub HOST:PORT]``: liveness probe of a running hub.

Connects, sends the protocol's ``hello`` (which needs no login) and waits for its
answer. Prints ``ok`` with the server name and the round trip, and the count and last few
impossible agent transitions the hub's tracker saw (if any), exit 0; otherwise the
reason (refused, timed out, not a hub, wrong protocol version), exit 1. The address
defaults to the configuration's ``[hub] bind``/``port``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any

from memberline.cli import add_command
from memberline.config import Config


@dataclass(frozen=True)
class Health:
    ok: bool
    hub: str
    message: str
    server: str | None = None
    rtt_ms: float | None = None
    tracker_anomalies: dict[str, Any] | None = None
    """Impossible agent transitions the hub's tracker saw: ``count`` and the last few."""


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


async def probe(
    host: str, port: int, *, limit_s: float = 5.0, tls: ssl.SSLContext | None = None
) -> Health:
    """One hello round trip; never raises for network trouble."""
    from cti.hubproto.framing import FrameError, LineFramer, encode
    from cti.hubproto.messages import PROTOCOL_VERSION

    where = f"{host}:{port}"
    t0 = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(limit_s):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            hello = {"protocol": PROTOCOL_VERSION, "client": "memberline-health/0.1"}
            writer.write(encode({"id": 1, "cmd": "hello", "args": hello}))
            await writer.drain()
            framer = LineFramer(1_048_576)
            while True:
                data = await reader.read(65536)
                if not data:
                    return Health(False, where, "connection closed before the hello answer")
                for msg in framer.feed(data):
                    if isinstance(msg, FrameError):
                        return Health(False, where, f"not a memberline hub ({msg.reason})")
                    if msg.get("re") != 1:
                        continue  # a push; not ours
                    rtt = round((time.perf_counter() - t0) * 1000, 1)
                    if not msg.get("ok"):
                        err = msg.get("error") or {}
                        return Health(
                            False, where, f"hello refused: {err.get('code')}: {err.get('message')}"
                        )
                    result = msg.get("result") or {}
                    server = str(result.get("server", "?"))
                    anomalies = result.get("tracker_anomalies")
                    return Health(True, where, "ok", server, rtt, anomalies)
    except TimeoutError:
        return Health(False, where, f"no answer within {limit_s:g} s")
    except ConnectionRefusedError:
        return Health(False, where, "connection refused")
    except ssl.SSLError as exc:
        return Health(False, where, f"TLS handshake failed: {exc.reason or exc}")
    except OSError as exc:
        return Health(False, where, (exc.strerror or type(exc).__name__).lower())
    finally:
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass


def handler(args: argparse.Namespace, config: Config) -> int:
    host, port = args.hub or (config.hub.bind, config.hub.port)
    tls: ssl.SSLContext | None = None
    if args.tls or args.cafile:
        tls = ssl.create_default_context(cafile=args.cafile)
        if not args.cafile:  # a probe of our own hub's self-signed certificate
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    result = asyncio.run(probe(host, port, limit_s=args.timeout, tls=tls))
    if args.json:
        print(json.dumps(asdict(result)))
    elif result.ok:
        print(f"ok  {result.hub}  {result.server}  {result.rtt_ms} ms")
        anomalies = result.tracker_anomalies or {}
        if anomalies.get("count"):
            print(f"tracker: {anomalies['count']} impossible agent transition(s); last:")
            for a in anomalies.get("recent", []):
                print(f"  {a['from']} -> {a['to']} on {a['event']} (at {a['at']})")
    else:
        print(f"error  {result.hub}  {result.message}")
    return 0 if result.ok else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "health", handler, "liveness probe: does the hub answer hello?")
    p.add_argument("--hub", type=_address, metavar="HOST:PORT", help="default: [hub] bind:port")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="default 5 s")
    p.add_argument("--tls", action="store_true", help="the hub link uses TLS (not verified)")
    p.add_argument("--cafile", metavar="FILE", help="TLS, verified against this CA bundle")
    p.add_argument("--json", action="store_true", help="print one JSON object")
