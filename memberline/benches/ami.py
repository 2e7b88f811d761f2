"""``memberline bench ami``: AMI ingest throughput (ours vs panoramisk) and tracker memory.

Stream: the real 200-call burst ``rate-200.txt`` repeated to about ``--events``
events, fed in ``--chunk-size`` chunks on one core. Measured in the same run:

* ``events_per_s``: full ingest path, bytes -> ``Framer`` -> ``Tracker.feed`` ->
  domain events;
* ``panoramisk_events_per_s``: panoramisk 1.4's own ``AMIProtocol.data_received``
  (its decoding, splitting and ``Message.from_line`` parsing, dispatch to a no-op);
* memory flatness: tracemalloc's traced size after one pass and after the last
  pass of the stream (finished calls are dropped, so the two should match), plus
  the tracker's peak number of concurrent conversations.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberline.benches._common import TRACES, LoadStamp, emit
from memberline.cli import add_command
from memberline.config import Config

if TYPE_CHECKING:  # imported where used: every `memberline` command imports the benches
    from cti.tracker import Tracker

DEFAULT_TRACE = TRACES / "rate-200.txt"


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _ours(chunks: list[bytes]) -> tuple[float, int, int, Tracker]:
    from cti.ami.framing import Framer
    from cti.tracker import Tracker

    framer = Framer()
    tracker = Tracker()
    events = domain = 0
    now = 0.0
    t0 = time.perf_counter()
    for chunk in chunks:
        now += 0.001
        for msg in framer.feed(chunk):
            events += 1
            domain += len(tracker.feed(msg, now))
    return time.perf_counter() - t0, events, domain, tracker


def _panoramisk(chunks: list[bytes]) -> tuple[float, int]:
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


def run(args: argparse.Namespace, config: Config) -> int:
    from cti.tracker import Tracker

    stamp = LoadStamp()
    one = Path(args.trace).read_bytes()
    per_copy = one.count(b"\r\n\r\n")
    copies = max(1, round(args.events / per_copy))
    data = one * copies
    chunks = _chunks(data, args.chunk_size)
    best_ours = best_pano = float("inf")
    events = pano_events = domain = 0
    tracker = Tracker()
    for _ in range(args.repeat):
        dt_o, events, domain, tracker = _ours(chunks)
        dt_p, pano_events = _panoramisk(chunks)
        best_ours = min(best_ours, dt_o)
        best_pano = min(best_pano, dt_p)
    ours_rate = events / best_ours
    pano_rate = pano_events / best_pano
    result: dict[str, Any] = {
        "events_per_s": round(ours_rate),
        "panoramisk_events_per_s": round(pano_rate),
        "ratio": round(ours_rate / pano_rate, 2),
        "events": events,
        "panoramisk_events": pano_events,
        "domain_events": domain,
        "bytes": len(data),
        "chunk_size": args.chunk_size,
        "trace": str(args.trace),
        "repeat": args.repeat,
        "tracker_peak_conversations": tracker.peak_conversations,
        "tracker_conversations_after": tracker.size()[0],
    }
    result.update(_memory(one, args.chunk_size, args.memory_passes))
    emit(result, stamp, runs=args.repeat)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "ami", run, "AMI ingest throughput vs panoramisk, tracker memory flatness")
    p.add_argument("--trace", default=str(DEFAULT_TRACE), help="raw AMI byte stream to replay")
    p.add_argument("--events", type=int, default=100_000, help="approximate events in the stream")
    p.add_argument("--chunk-size", type=int, default=65536, help="bytes per simulated TCP read")
    p.add_argument("--repeat", type=int, default=3, help="runs; the best of each is reported")
    p.add_argument(
        "--memory-passes", type=int, default=20, help="replays of the trace for the memory check"
    )
