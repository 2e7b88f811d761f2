"""Run ``memberline <args>`` (``serve``) with an event-loop lag probe; used by ``bench soak``.

    python -m memberline.benches._soak_hub LAG_FILE serve --config soak.toml

The hub does not expose its loop lag, so this wrapper measures it in the hub's own
process: every event loop the process creates gets a probe task that sleeps 50 ms
and records how late it woke up (timer overshoot = time the loop was busy). Once a
second it appends ``{"t": monotonic, "lag_ms": [...]}`` to LAG_FILE. Everything else
is the unchanged ``memberline`` command line, so RSS read from /proc is the hub's own.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

INTERVAL_S = 0.05
_TASKS: set[asyncio.Task[None]] = set()


async def _probe(path: str) -> None:
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    last = loop.time()
    with open(path, "a", encoding="utf-8", buffering=1) as out:  # noqa: ASYNC230 - opened once; line writes of ~1 kB per second
        while True:
            t0 = loop.time()
            await asyncio.sleep(INTERVAL_S)
            t1 = loop.time()
            lags.append(round(max(0.0, t1 - t0 - INTERVAL_S) * 1000.0, 3))
            if t1 - last >= 1.0:
                out.write(json.dumps({"t": t1, "lag_ms": lags}) + "\n")
                lags = []
                last = t1


class _ProbePolicy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()

        def start() -> None:
            task = loop.create_task(_probe(self.path), name="soak-lag-probe")
            _TASKS.add(task)

        loop.call_soon(start)
        return loop


def main(argv: list[str]) -> Any:
    path, rest = argv[0], argv[1:]
    asyncio.set_event_loop_policy(_ProbePolicy(path))
    from memberline.cli import main as cli_main

    return cli_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
