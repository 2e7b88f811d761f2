"""``memberline serve --config memberline.toml``: the production hub process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from memberline.cli import add_command
from memberline.config import Config
from memberline.runtime import install_reactor

log = logging.getLogger(__name__)


async def _serve(config: Config) -> int:
    from memberline.services import start_hub_services

    running = await start_hub_services(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "memberline serve: hub on %s:%d, AMI %s:%d",
        config.hub.bind,
        running.hub.port,
        config.ami.host,
        config.ami.port,
    )
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await running.stop()
    return 0


def handler(args: argparse.Namespace, config: Config) -> int:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    install_reactor(loop)
    try:
        return loop.run_until_complete(_serve(config))
    finally:
        loop.close()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_command(sub, "serve", handler, "run the hub: AMI, call tracking, screen pops, consoles")
