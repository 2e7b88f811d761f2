"""``memberline demo-data --members N --seed S [--db URL]``: seed a demo member database."""

from __future__ import annotations

import argparse
import json
import resource
import sys

from memberline.cli import add_command
from memberline.config import Config

# The demo logins, copied from crm_bridge.demo_seed (AGENT_CODES[0], AGENT_CODES[-1], SUPERVISOR_CODE,
# DEMO_PASSWORD) so that --help needs neither SQLAlchemy nor the models;
# tests/memberline/test_cli_startup.py checks the copies agree.
FIRST_AGENT, LAST_AGENT, SUPERVISOR_CODE, DEMO_PASSWORD = "1001", "1020", "9001", "demo"

HELP = f"""\
Create (migrate) the database and fill it with realistic demo data: members with Chinese and
English names, +86 and HK/TW/SG/US/GB mobiles, two years of seasonal purchases, points,
inquiries, complaints (some open, with owners), dormant and lapsed members, agents.

Demo logins: agents {FIRST_AGENT}..{LAST_AGENT}, supervisor {SUPERVISOR_CODE};
password "{DEMO_PASSWORD}" for all. The same --seed gives the same data. The database must
not already contain members. N = 1,000,000 takes a few minutes (bulk load).
"""


def _run(args: argparse.Namespace, cfg: Config) -> int:
    from tqdm import tqdm

    from crm_bridge.demo_seed import seed_demo

    bar = tqdm(total=args.members, unit="member", disable=None, file=sys.stderr)

    def progress(done: int) -> None:
        bar.update(done - bar.n)

    try:
        summary = seed_demo(
            cfg.database.url, members=args.members, seed=args.seed, progress=progress
        )
    except ValueError as exc:
        bar.close()
        print(f"memberline demo-data: {exc}", file=sys.stderr)
        return 1
    bar.close()
    # peak resident set of this process (KiB on Linux): seeding streams, 1M members < 1.5 GiB
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**summary.__dict__, "peak_rss_mib": round(peak_mib)}, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(sub, "demo-data", _run, "seed the database with demo members", description=HELP)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "--members", type=int, default=1000, metavar="N", help="members to create (default 1000)"
    )
    p.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
