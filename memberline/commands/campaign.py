"""``memberline campaign create|start|pause|resume|stop|status|list`` (supervisors).

The CLI changes the same rows the console's campaign screen does
(:mod:`crm_bridge.campaigns`); a running hub's dialer follows ``campaigns.status``
within a second. Every change is written to the audit log with actor ``cli:<user>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

from memberline.cli import OperatorError, add_command
from memberline.config import Config

if TYPE_CHECKING:  # imported where used: building the CLI parser must stay cheap
    from crm_bridge.campaigns import CampaignError

BUILDERS = (
    "post_purchase",
    "dormant_winback",
    "survey",
    "monthly_care",
    "spend_decline",
    "custom",
)
"""Campaign kinds with a list builder: a copy of :data:`crm_bridge.campaigns.BUILDERS` (that
module imports SQLAlchemy and the models, too much for ``--help``; tests/memberline/
test_cli_startup.py checks the two agree)."""
MODES = ("preview", "progressive", "predictive", "ivr")
"""Dial modes: the values of :class:`crm_bridge.models.DialMode` (checked by the same test)."""


def _actor(s: Any, as_code: str | None) -> tuple[str, int | None]:
    from sqlalchemy import select

    from crm_bridge import campaigns
    from crm_bridge.models import Agent, Role

    if as_code:
        agent = s.scalars(select(Agent).where(Agent.code == as_code)).one_or_none()
        if agent is None or agent.role is not Role.SUPERVISOR:
            raise campaigns.CampaignError("bad_request", f"{as_code} is not a supervisor")
        return f"supervisor:{agent.code}", agent.id
    return f"cli:{getpass.getuser()}", None


def _fail(exc: CampaignError) -> int:
    """A refused change, one line on stderr: exit 2 for a bad or unknown value (the operator
    fixes the command), 1 for a conflict with the campaign's state (e.g. a draft resumed)."""
    print(f"memberline campaign: {exc.message}", file=sys.stderr)
    return 1 if exc.code == "conflict" else 2


def _settings(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        settings = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise OperatorError(
            f"--settings is not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None
    if not isinstance(settings, dict):
        raise OperatorError("--settings must be a JSON object, e.g. '{\"size\": 200}'")
    return settings


def _create(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge import campaigns
    from crm_bridge.db import session_scope
    from memberline.dbopen import open_database

    settings = _settings(args.settings)
    if args.survey:
        settings["survey_name"] = args.survey
    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            actor, agent_id = _actor(s, args.as_supervisor)
            cid, n = campaigns.create_campaign(
                s,
                actor=actor,
                agent_id=agent_id,
                name=args.name,
                kind=args.kind,
                mode=args.mode,
                settings=settings,
                queue=args.queue or cfg.ami.queue,
                abandon_cap=args.abandon_cap
                if args.abandon_cap is not None
                else cfg.calling.abandon_cap,
                known_queues={cfg.ami.queue, *cfg.calling.postcall_survey_queues},
            )
    except campaigns.CampaignError as exc:
        return _fail(exc)
    finally:
        engine.dispose()
    print(
        f"campaign {cid} {args.name!r} created with {n} entries (status draft; `memberline campaign start {cid}`)"
    )
    return 0


def _control(action: str) -> Any:
    def run(args: argparse.Namespace, cfg: Config) -> int:
        from crm_bridge import campaigns
        from crm_bridge.db import session_scope
        from memberline.dbopen import open_database

        engine = open_database(cfg.database.url)
        try:
            with session_scope(engine) as s:
                actor, _ = _actor(s, args.as_supervisor)
                status = campaigns.control_campaign(
                    s, actor=actor, campaign_id=args.campaign_id, action=action
                )
        except campaigns.CampaignError as exc:
            return _fail(exc)
        finally:
            engine.dispose()
        print(f"campaign {args.campaign_id}: {status}")
        return 0

    return run


def _rows(cfg: Config) -> list[dict[str, Any]]:
    from crm_bridge import campaigns
    from crm_bridge.db import session_scope
    from dialer import outcomes
    from memberline.dbopen import open_database

    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            rows = campaigns.list_campaigns(s)
            ids = [r["campaign_id"] for r in rows]
            waits = outcomes.answer_to_agent(s, ids)
            windows = outcomes.window_counts(s, ids)
            for r in rows:
                # the 2-second rule as measured: live answer -> agent, from the attempt rows
                r["answer_to_agent"] = waits[r["campaign_id"]]
                # the whole campaign, AMD's estimated false positives counted as abandoned
                r["abandonment"] = outcomes.abandonment(windows[r["campaign_id"]])
            return rows
    finally:
        engine.dispose()


def _list(args: argparse.Namespace, cfg: Config) -> int:
    rows = _rows(cfg)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(
        f"{'id':>4}  {'name':<28} {'kind':<16} {'mode':<12} {'status':<9} {'entries':>8} {'progress':>8}"
    )
    for r in rows:
        print(
            f"{r['campaign_id']:>4}  {r['name'][:28]:<28} {r['kind']:<16} {r['mode']:<12} {r['status']:<9} "
            f"{r['total']:>8} {r['progress']:>8.1%}"
        )
    return 0


def _status(args: argparse.Namespace, cfg: Config) -> int:
    rows = [r for r in _rows(cfg) if r["campaign_id"] == args.campaign_id]
    if not rows:
        print(f"memberline campaign: no campaign {args.campaign_id}", file=sys.stderr)
        return 2
    print(json.dumps(rows[0], ensure_ascii=False, indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        sub,
        "campaign",
        None,
        "outbound campaigns: create, start, pause, resume, stop, status, list",
    )
    csub = parser.add_subparsers(dest="campaign_command", metavar="ACTION")
    csub.required = True
    create = add_command(
        csub, "create", _create, "create a campaign from a list builder (status draft)"
    )
    create.add_argument("name")
    create.add_argument("--kind", required=True, choices=BUILDERS)
    create.add_argument(
        "--mode",
        choices=MODES,
        help="dial mode (default: preview for monthly_care and spend_decline, else predictive)",
    )
    create.add_argument("--queue", help="agent queue (default: ami.queue)")
    create.add_argument("--survey", help="survey name for ivr campaigns")
    create.add_argument(
        "--abandon-cap", type=float, help="abandonment cap (default: calling.abandon_cap)"
    )
    create.add_argument(
        "--settings", help='list-builder settings as JSON, e.g. \'{"size": 200, "seed": 1}\''
    )
    create.add_argument(
        "--as", dest="as_supervisor", metavar="CODE", help="supervisor agent code for the audit log"
    )
    for action in ("start", "pause", "resume", "stop"):
        p = add_command(csub, action, _control(action), f"{action} a campaign")
        p.add_argument("campaign_id", type=int)
        p.add_argument("--as", dest="as_supervisor", metavar="CODE")
    st = add_command(csub, "status", _status, "one campaign's progress and outcomes (JSON)")
    st.add_argument("campaign_id", type=int)
    ls = add_command(csub, "list", _list, "every campaign")
    ls.add_argument("--json", action="store_true")
