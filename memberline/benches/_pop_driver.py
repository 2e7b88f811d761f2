"""The other side of ``memberline bench pop``, in its own process: the PBX simulator (a
real AMI server) and a console (``HubClient``), as in production where neither runs in
the hub's process.

Protocol with the parent over stdin/stdout, one JSON object per line:
  stdin  {"numbers": [...], "agent": "1001", "password": "demo", "pops": N, "warmup": W,
          "gap_ms": G, "ami_secret": "..."}
  stdout {"ami_port": P}            (the simulator listens)
  stdin  {"hub_port": H}            (the hub is up and its AMI client logged in)
  stdout {"latencies_ms": [...]}    (done)

Latency = ``time.perf_counter()`` (CLOCK_MONOTONIC, one clock for the whole machine) just
before the AgentCalled bytes are written to the hub's AMI socket -> the console's push
callback for the matching ``screen_pop``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


async def _line(reader: asyncio.StreamReader) -> dict[str, Any]:
    data = await reader.readline()
    if not data:
        raise SystemExit("bench pop driver: parent went away")
    result: dict[str, Any] = json.loads(data)
    return result


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main() -> None:
    from cti.hubproto.client import HubClient
    from cti.pbxsim import AgentSpec, PbxSimulator, QueueSpec, Scenario
    from cti.pbxsim import ami_events as ev

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    job = await _line(reader)
    ext = job["agent"]
    scen = Scenario(
        queues=(QueueSpec("members", exten="8000", members=(ext,)),),
        agents=(AgentSpec(ext, auto_answer=False, auto_hangup=False),),
    )
    sim = PbxSimulator(scen, ami_users={"memberline": job["ami_secret"]})
    await sim.start("127.0.0.1", 0)
    _say({"ami_port": sim.port})
    hub_port = (await _line(reader))["hub_port"]

    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}

    def on_push(name: str, data: dict[str, Any]) -> None:
        if name != "screen_pop":
            return
        cid = str(data.get("call_id"))
        arrived[cid] = time.perf_counter()
        fut = waiters.pop(cid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    console = HubClient("127.0.0.1", hub_port, job.get("agent_code") or ext, job["password"])
    console.on_push(on_push)
    await console.start()
    interface = job["interface"]
    latencies: list[float] = []
    try:
        for i, number in enumerate(job["numbers"]):
            base = f"{int(time.time())}.{i}"
            caller = ev.Channel(
                f"Local/8000@from-pstn-{i:08x};2", f"{base}1", f"{base}0", "from-pstn", "8000",
                priority=3, state=ev.UP, cid_num=number, cid_name="",
            )  # fmt: skip
            leg = ev.Channel(
                f"Local/{ext}@agents-{i:08x};1", f"{base}2", f"{base}0", "agents", "8000"
            )
            sim.emit(ev.newchannel(caller))
            sim.emit(ev.queue_caller("QueueCallerJoin", caller, "members", 1, 1))
            fut: asyncio.Future[None] = loop.create_future()
            waiters[caller.linkedid] = fut
            called = ev.agent_event(
                "AgentCalled", caller, leg, "members", interface, f"Agent {ext}"
            )
            t0 = time.perf_counter()
            sim.emit(called)
            await asyncio.wait_for(fut, 10)
            if i >= job["warmup"]:
                latencies.append((arrived.pop(caller.linkedid) - t0) * 1000)
            ring = [("RingTime", "1")]
            sim.emit(
                ev.agent_event(
                    "AgentRingNoAnswer", caller, leg, "members", interface, f"Agent {ext}", ring
                )
            )
            sim.emit(ev.queue_caller_abandon(caller, "members", 1, 1, 1))
            sim.emit(ev.queue_caller("QueueCallerLeave", caller, "members", 1, 0))
            sim.emit(ev.hangup(caller, 16))
            await asyncio.sleep(job["gap_ms"] / 1000)
    finally:
        await console.close()
        await sim.stop()
    _say({"latencies_ms": latencies})


if __name__ == "__main__":
    asyncio.run(main())
