"""``memberline simulate-pbx``: run the PBX simulator (AMI on TCP, FastAGI client).

The AMI user is ``[ami] username`` / ``MEMBERLINE_AMI_SECRET`` from the config
(so ``memberline serve`` logs in unchanged), unless ``--ami-user``/``--ami-secret``
say otherwise. FastAGI calls go to ``[agi] bind``:``port``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from typing import TYPE_CHECKING

from memberline.cli import add_command
from memberline.config import Config

if TYPE_CHECKING:  # imported where used: building the CLI parser must stay cheap
    from cti.pbxsim import PbxSimulator

log = logging.getLogger(__name__)


async def _run(sim: PbxSimulator, host: str, port: int, seconds: float | None) -> None:
    await sim.start(host, port)
    print(f"PBX simulator: AMI on {host}:{sim.port}", file=sys.stderr, flush=True)
    try:
        if seconds is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(seconds)
    finally:
        await sim.stop()


def _handler(args: argparse.Namespace, cfg: Config) -> int:
    from cti.pbxsim import PbxSimulator, Scenario, ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario) if args.scenario else Scenario()
    except (OSError, ScenarioError) as exc:
        print(f"memberline simulate-pbx: {exc}", file=sys.stderr)
        return 2
    if args.time_scale is not None:
        scenario = dataclasses.replace(scenario, time_scale=args.time_scale)
    user = args.ami_user or cfg.ami.username
    secret = args.ami_secret if args.ami_secret is not None else (cfg.ami.secret.get() or "secret")
    sim = PbxSimulator(
        scenario,
        ami_users={user: secret},
        agi_host=args.agi_host or cfg.agi.bind,
        agi_port=args.agi_port or cfg.agi.port,
    )
    try:
        asyncio.run(_run(sim, args.host, args.port, args.seconds))
    except OSError as exc:
        print(
            f"memberline simulate-pbx: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(dataclasses.asdict(sim.stats)))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "simulate-pbx", _handler, "run the PBX simulator (Asterisk 22 AMI + FastAGI)"
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5038, help="AMI port (default 5038, 0 = any)")
    p.add_argument("--scenario", metavar="FILE", help="scenario TOML file")
    p.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    p.add_argument("--time-scale", type=float, default=None, help="override scenario time_scale")
    p.add_argument("--ami-user", default=None, help="AMI username (default: [ami] username)")
    p.add_argument("--ami-secret", default=None, help="AMI secret (default: MEMBERLINE_AMI_SECRET)")
    p.add_argument("--agi-host", default=None, help="FastAGI server host (default: [agi] bind)")
    p.add_argument("--agi-port", type=int, default=None, help="FastAGI server port")
