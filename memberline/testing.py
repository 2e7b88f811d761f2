"""Loopback rigs for end-to-end tests: the real pieces on 127.0.0.1, started and stopped.

Everything here starts real servers over real sockets (the PBX simulator speaking AMI and
FastAGI, the console hub, the campaign runner, ``memberline serve`` as a subprocess) and
wires them with the composition root's own functions (:mod:`memberline.stack`), so a test
exercises the wiring ``serve`` runs. Nothing is stubbed; every helper stops what it started,
and every wait is bounded (it raises, so a test can fail)::

    async with pbx_simulator(scenario) as sim:
        async with hub_on_pbx(engine, sim, HubSettings(port=0)) as rig:
            await rig.wait(lambda: rig.hub.tracker.agents(), what="resync")

Used by the tests under ``tests/`` (``tests/cti/hub_stack.py``, the dialer and console e2e
tests, the SIGKILL tests); benchmarks start the stack through ``memberline serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cti.ami.client import AmiClient
from cti.hub import HubServer, HubSettings
from cti.pbxsim import PbxSimulator, Scenario
from cti.tracker import Tracker
from dialer.runner import CampaignRunner, RunnerSettings
from memberline.agentbot import AgentBot
from memberline.stack import attach_runner, connect_hub

__all__ = [
    "AMI_SECRET",
    "AMI_USER",
    "DialerRig",
    "HubRig",
    "ServeProcess",
    "ami_client_for",
    "demo_database",
    "free_port",
    "hub_on_pbx",
    "pbx_simulator",
    "run_bench",
    "runner_on_hub",
    "runner_on_pbx",
    "serve_config",
    "shifted_clock",
    "start_bots",
    "stop_bots",
    "wait_until",
]

AMI_USER = "memberline"
AMI_SECRET = "ami-Secret-42"
"""The AMI login the rigs give the simulator and the client (a test may pass its own)."""


async def wait_until(
    pred: Callable[[], object], within: float = 10.0, what: str = "", *, step: float = 0.02
) -> None:
    """Poll ``pred`` until it is true; ``TimeoutError`` naming ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(step)


def shifted_clock(base: float) -> Callable[[], float]:
    """A wall clock that reads ``base`` now and runs at real speed (e.g. noon in Shanghai,
    so members are inside their calling window whatever the machine's hour)."""
    t0 = time.time()
    return lambda: base + (time.time() - t0)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a subprocess that must be told its port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def pbx_simulator(
    scenario: Scenario,
    *,
    users: Mapping[str, str] | None = None,
    **options: Any,
) -> AsyncIterator[PbxSimulator]:
    """The PBX simulator on 127.0.0.1 (any free port), AMI login ``users`` (default
    ``AMI_USER``/``AMI_SECRET``); ``options``: more :class:`PbxSimulator` arguments."""
    sim = PbxSimulator(scenario, ami_users=dict(users or {AMI_USER: AMI_SECRET}), **options)
    await sim.start("127.0.0.1", 0)
    try:
        yield sim
    finally:
        await sim.stop()


def ami_client_for(
    sim: PbxSimulator, *, user: str = AMI_USER, secret: str = AMI_SECRET, **options: Any
) -> AmiClient:
    """Our AMI client pointed at ``sim``, reconnecting fast (tests restart the PBX)."""
    options.setdefault("reconnect_initial", 0.05)
    options.setdefault("reconnect_max", 0.5)
    return AmiClient("127.0.0.1", sim.port, user, secret, **options)


@dataclass
class HubRig:
    """A console hub and its AMI client, connected to a PBX simulator."""

    sim: PbxSimulator
    hub: HubServer
    ami: AmiClient

    async def wait(self, pred: Any, within: float = 5.0, what: str = "") -> None:
        await wait_until(pred, within, what, step=0.01)


@contextlib.asynccontextmanager
async def hub_on_pbx(
    engine: Engine,
    sim: PbxSimulator,
    settings: HubSettings,
    *,
    clock: Callable[[], float] = time.time,
    ami: Mapping[str, Any] | None = None,
    ready: Callable[[HubServer], object] | None = None,
    ready_within: float = 10.0,
) -> AsyncIterator[HubRig]:
    """A hub (``settings``; port 0 for any) linked to ``sim`` as ``serve`` links them
    (:func:`memberline.stack.connect_hub`), started; yields once the AMI client is logged in
    and ``ready(hub)`` holds (e.g. the resync showed the queue's agents). ``ami``: more
    :class:`AmiClient` arguments."""
    hub = HubServer(settings, engine, tracker=Tracker(), clock=clock)
    client = ami_client_for(sim, **dict(ami or {}))
    connect_hub(hub, client)
    try:
        await hub.start()
        await client.start(fail_fast=True)
        rig = HubRig(sim, hub, client)
        if ready is not None:
            await wait_until(lambda: ready(hub), ready_within, "the hub's AMI resync")
        yield rig
    finally:
        await client.close()
        await hub.stop()


@contextlib.asynccontextmanager
async def runner_on_hub(
    engine: Engine,
    rig: HubRig,
    settings: RunnerSettings,
    *,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[CampaignRunner]:
    """The campaign runner wired to a :func:`hub_on_pbx` hub as ``serve`` wires it
    (:func:`memberline.stack.attach_runner`, without the SMS/email hand-over); stopped at exit.
    Its ticks start with ``await runner.start()`` (or ``runner.tick()`` by hand)."""
    runner = attach_runner(engine, rig.hub, rig.ami, settings, on_exhausted=None, clock=clock)
    try:
        yield runner
    finally:
        await runner.stop()


@dataclass
class DialerRig:
    """The campaign runner and call tracker on their own AMI client (no console hub)."""

    engine: Engine
    sim: PbxSimulator
    ami: AmiClient
    tracker: Tracker
    runner: CampaignRunner
    clock: Callable[[], float]


@contextlib.asynccontextmanager
async def runner_on_pbx(
    engine: Engine,
    sim: PbxSimulator,
    settings: RunnerSettings,
    *,
    clock: Callable[[], float] = time.time,
    wrap_up_timeout: float = 1.0,
    ami: Mapping[str, Any] | None = None,
) -> AsyncIterator[DialerRig]:
    """A tracker fed by the AMI client, its domain events and the raw AMI feed going to the
    runner (what the hub passes on in ``serve``); the AMI client logged in before yielding."""
    tracker = Tracker(wrap_up_timeout=wrap_up_timeout)
    client = ami_client_for(sim, **dict(ami or {}))
    runner = CampaignRunner(engine, client.send_action, tracker.agents, settings, clock=clock)

    def feed(msg: object) -> None:
        for ev in tracker.feed(msg, clock()):  # type: ignore[arg-type]
            runner.on_event(ev)

    client.subscribe(feed)
    client.subscribe(runner.on_ami)
    client.on_state(runner.on_ami_state)
    try:
        await client.start(fail_fast=True)
        yield DialerRig(engine, sim, client, tracker, runner, clock)
    finally:
        await runner.stop()
        await client.close()


class ServeProcess:
    """``memberline serve --config CONF`` as a child process (for crash tests: ``kill()`` is a
    SIGKILL, no cleanup of any kind; ``stop()`` a SIGTERM, then a kill after 30 s)."""

    def __init__(self, conf: Path, *, hub_name: str, env: Mapping[str, str] | None = None):
        self.conf, self.hub_name = conf, hub_name
        self.env = {**os.environ, **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> ServeProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "memberline", "serve", "--config", str(self.conf),
            "--hub-name", self.hub_name,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=self.env,
        )  # fmt: skip
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        if self.proc is not None:
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            await self.kill()


def serve_config(
    path: Path, *, database_url: str, ami_port: int, hub_port: int, extra: str = ""
) -> Path:
    """Write a ``memberline serve`` config for a loopback run: the database, the simulator's
    AMI port, the hub's port, FastAGI and webhooks on any free port; ``extra``: more TOML."""
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[ami]\nport = {ami_port}\n'
        f"[hub]\nport = {hub_port}\n[agi]\nport = 0\n[messaging]\nwebhook_port = 0\n{extra}",
        encoding="utf-8",
    )
    return path


async def start_bots(
    port: int,
    codes: tuple[str, ...],
    password: str,
    *,
    within: float = 30.0,
    prepare: Callable[[AgentBot], None] | None = None,
    **options: Any,
) -> list[AgentBot]:
    """Log simulated agents (:class:`memberline.agentbot.AgentBot`, the real hub protocol)
    in to the hub on ``port``, retrying while the hub is still starting (bounded by
    ``within``); ``prepare`` sees each bot before it connects; ``options``: AgentBot's."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    bots = []
    for i, code in enumerate(codes):
        bot = AgentBot("127.0.0.1", port, code, password, seed=i, **options)
        if prepare is not None:
            prepare(bot)
        while True:
            try:
                await bot.start()
                break
            except OSError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)
        bots.append(bot)
    return bots


async def stop_bots(bots: list[AgentBot], within: float = 5.0) -> None:
    """Stop the bots; one whose hub was killed under it is let go (bounded)."""
    for bot in bots:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(bot.stop(), within)


def demo_database(path: Path, *, members: int, seed: int) -> str:
    """A seeded demo database (``memberline demo-data``) at ``path``; returns its path."""
    from memberline.cli import main

    if main(["demo-data", "--members", str(members), "--seed", str(seed), "--db", str(path)]):
        raise RuntimeError(f"memberline demo-data failed for {path}")
    return str(path)


def run_bench(args: str, *, timeout: float) -> dict[str, Any]:
    """``memberline bench <args>`` in a child process (as an operator runs it); its JSON
    report. A non-zero exit or a hang past ``timeout`` seconds raises."""
    out = subprocess.run(
        [sys.executable, "-m", "memberline", "bench", *args.split()],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    report: dict[str, Any] = json.loads(out.stdout)
    return report
