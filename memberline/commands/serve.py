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

from memberline.cli import OperatorError, add_command
from memberline.config import Config
from memberline.runtime import freeze_startup_heap, install_reactor

log = logging.getLogger(__name__)


def check_ports(config: Config) -> None:
    """Every port this process will listen on is free (SO_REUSEADDR, like the servers), or
    one line naming the port, the setting and the reason: before anything starts."""
    from memberline.checks import check_bind

    for key, host, port in (
        ("hub.port", config.hub.bind, config.hub.port),
        ("agi.port", config.agi.bind, config.agi.port),
        ("messaging.webhook_port", config.messaging.webhook_bind, config.messaging.webhook_port),
    ):
        if port == 0:
            continue
        check = check_bind(key, host, port)
        if not check.ok:
            raise OperatorError(f"cannot listen on {check.message} (set {key})")


async def _serve(config: Config, hub_name: str) -> int:
    from twisted.internet.error import CannotListenError

    from memberline.dbopen import open_database
    from memberline.stack import start_stack

    engine = open_database(config.database.url)
    check_ports(config)
    try:
        stack = await start_stack(config, engine=engine, owner=hub_name)
    except CannotListenError as exc:  # taken between the check and the listen
        engine.dispose()
        raise OperatorError(
            f"cannot listen on {exc.interface}:{exc.port}: {exc.socketError}"
        ) from None
    except OSError as exc:  # asyncio servers (FastAGI)
        engine.dispose()
        raise OperatorError(f"cannot listen: {exc.strerror or exc}") from None
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
