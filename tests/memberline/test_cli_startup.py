"""Building the ``memberline`` parser stays cheap: which modules it imports, never how long.

``memberline.cli`` imports every module of ``memberline/commands/`` and ``memberline/benches/``
to let each ``register()`` its subcommands, so even ``memberline --help`` or ``memberline
health`` pays for their top-level imports. Heavy libraries are imported inside the handlers
instead; these tests check that in a fresh interpreter (no timings are asserted). Where a
command module keeps a copy of a constant from a heavy module (argparse choices, help text),
a test below checks the copy still agrees with its source.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from memberline.cli import build_parser

HEAVY = {
    "sqlalchemy",
    "alembic",
    "textual",
    "twisted",
    "twilio",
    "aiosmtplib",
    "aiohttp",
    "rich",
    "tqdm",
    "panoramisk",
    "phonenumbers",
}
"""Third-party packages that building the parser must not import (by top-level name)."""

PROJECT = {"crm_bridge", "cti", "dialer", "surveys", "agent_tui"}
ALLOWED_PROJECT = {
    "dialer",
    "dialer.sim",
    "dialer.sim.scenario",
    "cti",
    "cti.hub",
    "cti.hub.settings",
}
"""The only domain modules allowed: ``memberline bench dialer --help`` lists the shipped
scenarios (stdlib-only: tomllib and the scenario files); ``memberline.config`` takes the hub's
defaults from ``cti.hub.settings`` (plain dataclass; ``cti.hub`` loads its server lazily)."""

_SCRIPT = """
import json, sys
from memberline.cli import build_parser
build_parser()
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_build_parser() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    modules: list[str] = json.loads(out.stdout)
    return modules


def test_build_parser_imports_no_heavy_library() -> None:
    modules = _modules_after_build_parser()
    heavy = sorted({m.split(".")[0] for m in modules} & HEAVY)
    assert heavy == [], f"building the parser imported {heavy} (import them in the handlers)"
    assert "crm_bridge.models" not in modules
    domain = sorted(m for m in modules if m.split(".")[0] in PROJECT and m not in ALLOWED_PROJECT)
    assert domain == [], f"building the parser imported {domain} (import them in the handlers)"


def test_every_command_and_bench_is_still_registered() -> None:
    parser = build_parser()
    commands: Any = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) >= {
        "audit", "bench", "campaign", "check-config", "console", "db", "demo", "demo-data",
        "health", "members", "outbox", "report", "serve", "simulate-pbx", "surveys",
    }  # fmt: skip
    bench = commands["bench"]
    benches: Any = bench._subparsers._group_actions[0].choices
    assert set(benches) >= {"ami", "console", "crm", "dialer", "outbox", "pop", "soak", "surveys"}


# ------------------------------------------------------- copies of constants agree with sources
def test_campaign_choices_match_crm_bridge() -> None:
    from crm_bridge.campaigns import BUILDERS
    from crm_bridge.models import DialMode
    from memberline.commands import campaign

    assert campaign.BUILDERS == BUILDERS
    assert campaign.MODES == tuple(m.value for m in DialMode)


def test_outbox_statuses_match_model() -> None:
    from crm_bridge.models import OutboxStatus
    from memberline.commands import outbox

    assert outbox.STATUSES == tuple(s.value for s in OutboxStatus)


def test_members_import_columns_match_csvio() -> None:
    from crm_bridge.csvio import COLUMNS
    from memberline.commands import members

    assert members.COLUMNS == COLUMNS
    assert ",".join(COLUMNS) in members.IMPORT_HELP


def test_demo_data_help_matches_demo_logins() -> None:
    from crm_bridge import demo_seed
    from memberline.commands import demo_data

    assert demo_data.FIRST_AGENT == demo_seed.AGENT_CODES[0]
    assert demo_data.LAST_AGENT == demo_seed.AGENT_CODES[-1]
    assert demo_data.SUPERVISOR_CODE == demo_seed.SUPERVISOR_CODE
    assert demo_data.DEMO_PASSWORD == demo_seed.DEMO_PASSWORD


def test_bench_dialer_amd_modes_match_pacing() -> None:
    from dialer.pacing import AmdMode
    from memberline.benches import dialer

    assert dialer.AMD_MODES == tuple(m.value for m in AmdMode)
    assert "auto" in dialer.AMD_MODES  # the --amd default
