"""``memberline bench ami``: AMI parsing and the whole ingest path, like for like with panoramisk.

The stream: the recorded Asterisk 22.10.1 scenario traces (``tests/fixtures/ami-traces``):
inbound queue calls (ringall answered, linear ring-no-answer, abandoned), originates
(answered, preset ChannelId, every failure outcome, failed-IVR), FastAGI survey calls
(completed, timed out, hung up), queue member actions and pause reasons, replayed back to
back as one AMI connection would carry them (one banner; each copy with fresh Uniqueids,
Linkedids and channel numbers) to about ``--events`` events, cut into ``--chunk-size``
reads. Every stage reads the same chunks, in the same process, one core.

(a) *parse*, per event, from the chunk's bytes to every header of the event parsed into a
mapping:

* ``parse_ours``: our ``Framer.feed`` plus the full header parse (``AmiMessage.get``,
  which parses every header line into a dict; our consumers normally parse lazily, not
  here);
* ``parse_panoramisk``: panoramisk 1.4's ``AMIProtocol.data_received`` (decode, split,
  ``Message.from_line`` of every header into its dict, its response lookup, dispatch to a
  no-op): panoramisk's bare parser.

Target ``parse_ratio`` = ours / panoramisk ≥ 2.

(b) *ingest*, cumulative stages, each from the chunk's bytes to the end of that stage:

* ``framer``: ``Framer.feed`` only (lazy messages);
* ``routing``: the AMI client's protocol (``_Protocol.data_received``: framer, then the
  client's response/event routing and its subscriber dispatch, to a no-op subscriber);
* ``tracker``: the same, the subscriber being ``Tracker.feed`` (domain events out);
* ``whole``: the hub as ``memberline serve`` wires it (``HubServer.on_ami_message``:
  tracker, the reactions table, call records, wallboard counters, pop lookups started,
  call rows queued to the writer) with ``--consoles`` console connections bound to their
  agents as a login binds them (the password check left out; one per agent; the traces'
  three agents are three of them in turn, round by round), every push encoded and written
  to its console's connection buffer. The loop runs between chunks, as it would between socket reads, so
  the tasks the reactions start (pop lookups, the writer) share the time. The clock
  stops when the last chunk has been handled; ``whole_drain_s`` is what the spawned work
  needed afterwards (not in the rate).

Target ``ingest_ratio`` = ``whole`` / ``parse_panoramisk`` ≥ 1.

Also: tracemalloc's traced size after one pass and after the last of ``--memory-passes``
passes of the tracker (finished calls are dropped, so growth should be ~0).
Each stage runs once untimed (warm-up), then ``--repeat`` times; the best (least disturbed)
run is reported, with the median beside it. Rates are the stream's events (``Event:``
frames; responses and the banner ride along) per second of wall-clock time.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memberline.benches._common import LoadStamp, emit, trace
from memberline.cli import add_command
from memberline.config import Config

SCENARIOS = (
    "a-inbound-queue-call",
    "a2-inbound-queue-ringnoanswer",
    "a3-inbound-queue-abandon",
    "b-originate-answered",
    "b2-originate-channelid",
    "c-originate-badtech",
    "c-originate-busy",
    "c-originate-cancelled",
    "c-originate-congestion",
    "c-originate-hangup",
    "c-originate-noanswer",
    "c-originate-nosuchexten",
    "c-originate-reject",
    "c-originate-silent",
    "c-originate-userbusy",
    "d-ivr-survey-fastagi",
    "d-ivr-survey-fastagi-hangup",
    "d-ivr-survey-fastagi-timeout",
    "e-queue-actions",
    "h-originate-failed-ivr",
    "i-queue-pause-reason",
)
"""One round of the stream: every recorded call scenario once (restarts and failed logins,
which need a new connection, are left out)."""

_BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_UID = re.compile(rb"\b(1[0-9]{9})\.([0-9]+)\b")
_PRESET = re.compile(rb"\b(cti-46|ivr-7)-")  # ChannelIds preset by the Originate
_CHAN = re.compile(rb"-([0-9a-f]{8})(?=[;,\r])")
_AGENT = re.compile(rb"(?<=Local/)(100[1-3])(?=@agents)|(?<=Agent )(100[1-3])\b")


def _body(name: str) -> bytes:
    """A trace's bytes after its banner line."""
    data = trace(f"{name}.txt").read_bytes()
    if data.startswith(b"Asterisk Call Manager/"):
        data = data.split(b"\r\n", 1)[1]
    return data


def build_stream(events: int, agents: int = 50) -> tuple[bytes, int]:
    """Rounds of every scenario, ids made fresh per copy, to about ``events`` events; the
    traces' three agents (1001-1003) become three of ``agents`` agents, in turn."""
    bodies = [_body(n) for n in SCENARIOS]
    per_round = sum(b.count(b"\r\n\r\n") for b in bodies)
    rounds = max(1, round(events / per_round))
    out = [_BANNER]
    for k in range(rounds):
        shift = k * 1000

        def uid(m: re.Match[bytes], shift: int = shift) -> bytes:
            return b"%d.%s" % (int(m.group(1)) + shift, m.group(2))

        def chan(m: re.Match[bytes], k: int = k) -> bytes:
            return b"-%08x" % ((int(m.group(1), 16) + k * 0x100) & 0xFFFFFFFF)

        def agent(m: re.Match[bytes], k: int = k) -> bytes:
            j = int(m.group(m.lastindex or 1)) - 1001
            return b"%d" % (1001 + (3 * k + j) % agents)

        for body in bodies:
            body = _PRESET.sub(rb"\1r%d-" % k, _CHAN.sub(chan, _UID.sub(uid, body)))
            out.append(_AGENT.sub(agent, body))
    return b"".join(out), rounds


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------- (a) parse
def _parse_ours(chunks: list[bytes]) -> tuple[float, int]:
    from cti.ami.framing import Framer

    framer = Framer()
    n = 0
    t0 = time.perf_counter()
    for chunk in chunks:
        for msg in framer.feed(chunk):
            msg.get("Event")  # every header parsed into the message's dict
            n += 1
    return time.perf_counter() - t0, n


def _parse_panoramisk(chunks: list[bytes]) -> tuple[float, int]:
    from panoramisk.ami_protocol import AMIProtocol

    count = 0

    class _Factory:
        def dispatch(self, message: Any) -> None:
            nonlocal count
            count += 1

    proto = AMIProtocol()
    proto.connection_made(None)
    proto.factory = _Factory()
    proto.encoding = "utf8"
    t0 = time.perf_counter()
    for chunk in chunks:
        proto.data_received(chunk)
    return time.perf_counter() - t0, count


# ---------------------------------------------------------------- (b) ingest
def _framer_only(chunks: list[bytes]) -> tuple[float, int]:
    from cti.ami.framing import Framer

    framer = Framer()
    n = 0
    t0 = time.perf_counter()
    for chunk in chunks:
        n += len(framer.feed(chunk))
    return time.perf_counter() - t0, n


def _client_protocol(subscriber: Callable[[Any], None]) -> Any:
    """The AMI client's own protocol object (what its socket feeds), with ``subscriber``."""
    from cti.ami.client import AmiClient, _Protocol
    from cti.ami.framing import Framer

    client = AmiClient("127.0.0.1", 0, "bench", "bench-secret", name="bench")
    client.subscribe(subscriber)
    return _Protocol(client, Framer())


def _routing(chunks: list[bytes]) -> tuple[float, int]:
    n = 0

    def count(msg: Any) -> None:
        nonlocal n
        n += 1

    proto = _client_protocol(count)
    t0 = time.perf_counter()
    for chunk in chunks:
        proto.data_received(chunk)
    return time.perf_counter() - t0, n


def _tracker(chunks: list[bytes]) -> tuple[float, int, int, Any]:
    from cti.tracker import Tracker

    tracker = Tracker()
    n = domain = 0

    def feed(msg: Any) -> None:
        nonlocal n, domain
        n += 1
        domain += len(tracker.feed(msg, time.time()))

    proto = _client_protocol(feed)
    t0 = time.perf_counter()
    for chunk in chunks:
        proto.data_received(chunk)
    return time.perf_counter() - t0, n, domain, tracker


def _prepare_db(workdir: Path, members: int, consoles: int) -> str:
    """A demo database with ``consoles`` agents (1001...), each to get one console."""
    from crm_bridge.auth import hash_password
    from crm_bridge.db import make_engine, session_scope
    from crm_bridge.demo_seed import AGENT_CODES, seed_demo
    from crm_bridge.models import Agent

    url = f"sqlite:///{workdir / 'ami-bench.db'}"
    seed_demo(url, members=members, seed=1)
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            pw = hash_password("bench-pw-1")
            for i in range(len(AGENT_CODES), consoles):
                code = str(1001 + i)
                s.add(Agent(code=code, extension=code, name=f"Agent {code}", password_hash=pw))
    finally:
        engine.dispose()
    return url


class _Sink:
    """A console connection's send buffer (what the TCP transport would hold)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.frames = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)
        self.frames += 1


async def _whole(chunks: list[bytes], url: str, consoles: int) -> dict[str, Any]:
    """One run of the whole path on a fresh hub (fresh tracker, calls, writer)."""
    from crm_bridge.db import make_engine
    from cti.hub.server import HubServer
    from memberline.config import load_config
    from memberline.runtime import ensure_reactor_running
    from memberline.stack import hub_settings

    reactor = ensure_reactor_running()
    config = load_config(None, env={})
    engine = make_engine(url)
    hub = HubServer(hub_settings(config, port=0, bind="127.0.0.1"), engine)
    await hub.start(reactor)
    sinks: list[_Sink] = []
    try:
        for i in range(consoles):
            info = hub.agents_by_code.get(str(1001 + i))
            if info is None:
                raise SystemExit(f"bench ami: agent {1001 + i} missing from the bench database")
            sink = _Sink()
            conn = hub.connection_made(f"bench-{i}", sink.write, lambda: None)
            hub.sessions.bind(conn, info)
            sinks.append(sink)
        n = 0

        def on_message(msg: Any) -> None:
            nonlocal n
            n += 1
            hub.on_ami_message(msg)

        proto = _client_protocol(on_message)
        t0 = time.perf_counter()
        for chunk in chunks:
            proto.data_received(chunk)
            await asyncio.sleep(0)  # the loop turns between socket reads
        dt = time.perf_counter() - t0
        d0 = time.perf_counter()
        spawned = [t for t in asyncio.all_tasks() if t.get_name().startswith(("pop-", "lookup-"))]
        await asyncio.gather(*spawned, return_exceptions=True)
        await hub.writer.flush()
        drain = time.perf_counter() - d0
        return {
            "dt": dt,
            "events": n,
            "drain_s": drain,
            "frames": sum(s.frames for s in sinks),
            "frame_bytes": sum(s.bytes for s in sinks),
            "consoles_with_frames": sum(1 for s in sinks if s.frames),
            "pops_pushed": hub.pops_pushed,
            "rows_written": hub.writer.written,
            "peak_conversations": hub.tracker.peak_conversations,
        }
    finally:
        await hub.stop()
        engine.dispose()


def _memory(data: bytes, chunk_size: int, passes: int) -> dict[str, Any]:
    from cti.ami.framing import Framer
    from cti.tracker import Tracker

    framer = Framer()
    tracker = Tracker(recent_limit=2048)
    now = 0.0
    chunks = _chunks(data, chunk_size)
    sizes = []
    tracemalloc.start()
    try:
        for _ in range(passes):
            for chunk in chunks:
                now += 0.001
                for msg in framer.feed(chunk):
                    tracker.feed(msg, now)
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    return {
        "memory_passes": passes,
        "memory_after_first_pass_bytes": sizes[0],
        "memory_after_last_pass_bytes": sizes[-1],
        "memory_growth_bytes": sizes[-1] - sizes[0],
        "tracker_size_after": list(tracker.size()),
    }


def _rate(events: int, times: list[float]) -> tuple[int, int]:
    """(best, median) events/s over the runs."""
    return round(events / min(times)), round(events / statistics.median(times))


def run(args: argparse.Namespace, config: Config) -> int:
    from memberline.runtime import install_reactor

    stamp = LoadStamp()
    data, rounds = build_stream(args.events, args.consoles)
    chunks = _chunks(data, args.chunk_size)
    times: dict[str, list[float]] = {
        k: [] for k in ("parse_ours", "parse_panoramisk", "framer", "routing", "tracker", "whole")
    }
    counts: dict[str, int] = {}
    whole: dict[str, Any] = {}
    domain = 0
    tracker: Any = None
    stream_events = data.count(b"\r\nEvent: ") + data.startswith(b"Event: ")
    with tempfile.TemporaryDirectory(prefix="memberline-bench-ami-") as tmp:
        url = _prepare_db(Path(tmp), args.members, args.consoles)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        install_reactor(loop)
        try:
            for run_no in range(args.repeat + 1):  # run 0 warms up (imports, caches)
                for name, fn in (
                    ("parse_ours", _parse_ours),
                    ("parse_panoramisk", _parse_panoramisk),
                    ("framer", _framer_only),
                    ("routing", _routing),
                ):
                    dt, counts[name] = fn(chunks)
                    if run_no:
                        times[name].append(dt)
                dt, counts["tracker"], domain, tracker = _tracker(chunks)
                if run_no:
                    times["tracker"].append(dt)
                w = loop.run_until_complete(_whole(chunks, url, args.consoles))
                if not run_no:
                    continue
                times["whole"].append(w["dt"])
                counts["whole"] = w["events"]
                if not whole or w["dt"] <= min(times["whole"]):
                    whole = w
        finally:
            loop.close()
    # one unit for every stage: the stream's events (responses and the banner ride along)
    rates = {k: _rate(stream_events, v) for k, v in times.items()}
    result: dict[str, Any] = {
        "bench": "ami",
        "measured": "events/s from a chunk's bytes to the end of each stage (see the "
        "docstring); best of the runs, median beside it",
        "events": stream_events,
        "messages_seen_per_stage": counts,
        "bytes": len(data),
        "rounds": rounds,
        "scenarios": list(SCENARIOS),
        "chunk_size": args.chunk_size,
        "consoles": args.consoles,
        "parse_ours_events_per_s": rates["parse_ours"][0],
        "parse_panoramisk_events_per_s": rates["parse_panoramisk"][0],
        "parse_ratio": round(rates["parse_ours"][0] / rates["parse_panoramisk"][0], 2),
        "framer_events_per_s": rates["framer"][0],
        "routing_events_per_s": rates["routing"][0],
        "tracker_events_per_s": rates["tracker"][0],
        "whole_events_per_s": rates["whole"][0],
        "ingest_ratio": round(rates["whole"][0] / rates["parse_panoramisk"][0], 2),
        "median_events_per_s": {k: v[1] for k, v in rates.items()},
        "domain_events": domain,
        "whole_frames_queued": whole["frames"],
        "whole_frame_bytes": whole["frame_bytes"],
        "whole_consoles_with_frames": whole["consoles_with_frames"],
        "whole_pops_pushed": whole["pops_pushed"],
        "whole_rows_written": whole["rows_written"],
        "whole_drain_s": round(whole["drain_s"], 3),
        "tracker_peak_conversations": tracker.peak_conversations,
        "tracker_conversations_after": tracker.size()[0],
        "targets": {
            "parse_ratio_ge_2": rates["parse_ours"][0] >= 2 * rates["parse_panoramisk"][0],
            "ingest_ratio_ge_1": rates["whole"][0] >= rates["parse_panoramisk"][0],
        },
    }
    result.update(_memory(data[: len(data) // rounds], args.chunk_size, args.memory_passes))
    emit(result, stamp, runs=args.repeat)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "ami", run, "AMI parse and whole ingest path vs panoramisk's parser")
    p.add_argument("--events", type=int, default=100_000, help="approximate events in the stream")
    p.add_argument("--chunk-size", type=int, default=65536, help="bytes per simulated TCP read")
    p.add_argument("--repeat", type=int, default=3, help="runs of every stage (best reported)")
    p.add_argument("--consoles", type=int, default=50, help="logged-in consoles (default 50)")
    p.add_argument("--members", type=int, default=2000, help="demo members in the hub's database")
    p.add_argument(
        "--memory-passes", type=int, default=20, help="replays of one round for the memory check"
    )
