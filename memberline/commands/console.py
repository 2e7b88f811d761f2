"""``memberline console --hub HOST:PORT [--agent ID] [--tls]``: the agent console (Textual).

The password is read from ``MEMBERLINE_CONSOLE_PASSWORD`` or prompted (not echoed) when
``--agent`` is given; otherwise the console's login screen asks for both.
"""

from __future__ import annotations

import argparse
import getpass
import os
import ssl
import sys

from memberline.cli import add_command
from memberline.config import Config

PASSWORD_ENV = "MEMBERLINE_CONSOLE_PASSWORD"


def parse_hub(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from agent_tui.app import ConsoleApp

    host, port = args.hub if args.hub is not None else (cfg.hub.bind, cfg.hub.port)
    password = os.environ.get(PASSWORD_ENV)
    if args.agent and not password and sys.stdin.isatty():
        password = getpass.getpass(f"Password for agent {args.agent}: ")
    context: ssl.SSLContext | None = None
    if args.tls:
        context = ssl.create_default_context(cafile=args.ca_file)
    ConsoleApp(host, port, ssl=context, agent=args.agent, password=password or None).run()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "console", _run, "the agent / supervisor console (terminal UI)")
    parser.add_argument(
        "--hub", type=parse_hub, metavar="HOST:PORT", help="hub address (default: from config)"
    )
    parser.add_argument("--agent", metavar="ID", help="agent id (password prompted)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca-file", metavar="PEM", help="CA bundle to verify the hub (with --tls)")
