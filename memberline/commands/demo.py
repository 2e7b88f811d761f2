"""``memberline demo [--headless --seconds N]``: everything on loopback (see memberline.demo_run)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from memberline.cli import add_command
from memberline.config import Config
from memberline.logs import setup_logging
from memberline.runtime import install_reactor


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from memberline.demo_run import DemoOptions, run

    opts = DemoOptions(
        db_path=Path(args.demo_db),
        members=args.members,
        seed=args.seed,
        headless=args.headless,
        seconds=args.seconds,
        speed=args.speed if args.speed is not None else (4.0 if args.headless else 1.0),
        hub_port=args.hub_port,
    )
    from memberline.demo_run import claim_port

    claim_port(opts.hub_port)  # a taken port: one line before seeding anything
    if not args.headless:
        # The terminal belongs to the console: logs go to a file next to the database.
        log_path = Path(args.demo_db).with_suffix(".log")
        root = logging.getLogger()
        root.handlers.clear()
        handler = logging.FileHandler(log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(args.log_level if args.log_level != "WARNING" else "INFO")
        print(
            f"Seeding {opts.members} demo members and starting the PBX simulator, hub and dialer "
            f"(logs: {log_path})…\nThe hub will listen on 127.0.0.1:{opts.hub_port or '(any free port)'}; "
            f"a supervisor console: memberline console --hub 127.0.0.1:{opts.hub_port} --agent 9001",
            flush=True,
        )
    else:
        setup_logging(args.log_level, json_lines=args.log_json)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    install_reactor(loop)
    try:
        summary = loop.run_until_complete(run(cfg, opts))
    finally:
        loop.close()
    print(json.dumps(summary, ensure_ascii=False, indent=None if args.headless else 2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "demo", _run, "run everything on loopback with a seeded database and open the console"
    )
    p.add_argument(
        "--headless", action="store_true", help="simulate every agent and print a JSON summary"
    )
    p.add_argument(
        "--seconds", type=float, default=60.0, help="how long a headless run lasts (default 60)"
    )
    p.add_argument("--members", type=int, default=3000, help="demo members to seed (default 3000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--hub-port",
        type=int,
        default=7070,
        help="the hub's port (default 7070; 0 = any free port); a port in use is an error",
    )
    p.add_argument("--speed", type=float, help="PBX time speed-up (default 1, headless 4)")
    p.add_argument(
        "--demo-db", default="memberline-demo.db", help="SQLite file (recreated each run)"
    )
