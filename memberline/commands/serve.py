"""``memberline serve --config memberline.toml``: the production hub process.

Runs the whole stack (:mod:`memberline.stack`): AMI client and call tracker, console hub,
campaign runner, survey FastAGI, webhooks (SMS, unsubscribe, Twilio voice survey) and the
outbox worker. ``--hub-name`` names this hub when several share one database (it is the
lease owner of the call-list entries and outbox rows it takes).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from memberline.cli import add_command
from memberline.config import Config
from memberline.runtime import freeze_startup_heap, install_reactor

log = logging.getLogger(__name__)


async def _serve(config: Config, hub_name: str) -> int:
    from memberline.stack import start_stack

    stack = await start_stack(config, owner=hub_name)
    running = stack.hub
    freeze_startup_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "memberline serve (%s): hub on %s:%d, AMI %s:%d, FastAGI %d, webhooks %d",
        hub_name,
        config.hub.bind,
        running.hub.port,
        config.ami.host,
        config.ami.port,
        stack.surveys.agi.port,
        stack.web_port,
    )
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await stack.stop()
    return 0


def handler(args: argparse.Namespace, config: Config) -> int:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    install_reactor(loop)
    try:
        return loop.run_until_complete(_serve(config, args.hub_name))
    finally:
        loop.close()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "serve", handler, "run the hub: AMI, screen pops, consoles, dialer, surveys, outbox"
    )
    p.add_argument(
        "--hub-name", default="hub-1", help="this hub's name when several share a database"
    )
