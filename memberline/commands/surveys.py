"""``memberline surveys validate FILE | list | publish FILE | prompts SURVEY --out DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from memberline.cli import add_command
from memberline.config import Config

if TYPE_CHECKING:  # imported where used: building the CLI parser must stay cheap
    from surveys.definitions import Survey


def _load(ref: str) -> Survey:
    """A built-in survey name or a TOML file path."""
    from surveys.definitions import builtin_names, load_builtin, load_file

    if ref in builtin_names() and not Path(ref).exists():
        return load_builtin(ref)
    return load_file(ref)


def _validate(args: argparse.Namespace, cfg: Config) -> int:
    from surveys.definitions import SurveyDefinitionError

    failed = 0
    for ref in args.files:
        try:
            survey = _load(ref)
        except SurveyDefinitionError as exc:
            print(str(exc), file=sys.stderr)
            failed += 1
            continue
        qs = ", ".join(
            f"{q.id} ({q.kind.value}, keys {'/'.join(q.keys)})" for q in survey.questions
        )
        print(f"{ref}: OK - survey {survey.name!r}, locales {', '.join(survey.locales)}: {qs}")
    return 1 if failed else 0


def _list(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge.db import session_scope
    from memberline.dbopen import open_database
    from surveys.definitions import builtin_names
    from surveys.store import list_definitions

    print("built-in: " + ", ".join(builtin_names()))
    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            rows = list_definitions(s)
    finally:
        engine.dispose()
    if not rows:
        print("stored: (none yet; a built-in survey is stored as version 1 on first use)")
    for name, version, sha, created in rows:
        print(f"stored: {name} v{version} sha256 {sha[:12]} {created:%Y-%m-%d %H:%M}Z")
    return 0


def _publish(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge.db import session_scope
    from memberline.dbopen import open_database
    from surveys.definitions import SurveyDefinitionError
    from surveys.store import publish_definition

    try:
        survey = _load(args.file)
    except SurveyDefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    engine = open_database(cfg.database.url)
    try:
        with session_scope(engine) as s:
            row = publish_definition(s, survey)
            print(f"survey {row.name!r} is version {row.version} (sha256 {row.sha256[:12]})")
    finally:
        engine.dispose()
    return 0


def _prompts(args: argparse.Namespace, cfg: Config) -> int:
    from surveys.definitions import SurveyDefinitionError
    from surveys.prompts import PromptToolMissing, render_prompts

    try:
        survey = _load(args.survey)
    except SurveyDefinitionError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        done = render_prompts(survey, Path(args.out))
    except PromptToolMissing as exc:
        print(f"memberline: {exc}", file=sys.stderr)
        return 3
    for p in done:
        print(f"{p.path}  {p.seconds:5.2f}s  ({p.locale})")
    print(f"{len(done)} prompts written (8 kHz mono 16-bit WAV) under {args.out}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "surveys", None, "survey definitions and prompts")
    ssub = parser.add_subparsers(dest="surveys_command", metavar="ACTION")
    ssub.required = True
    v = add_command(
        ssub, "validate", _validate, "check survey TOML files (errors name the question)"
    )
    v.add_argument("files", nargs="+", metavar="FILE")
    add_command(ssub, "list", _list, "built-in surveys and stored versions")
    p = add_command(ssub, "publish", _publish, "store a survey file as a new version (if changed)")
    p.add_argument("file", metavar="FILE")
    pr = add_command(
        ssub, "prompts", _prompts, "render a survey's prompts to 8 kHz WAV with espeak-ng"
    )
    pr.add_argument(
        "survey",
        metavar="SURVEY",
        help="built-in survey name or TOML file",
    )
    pr.add_argument(
        "--out", required=True, metavar="DIR", help="output dir (one subdir per language)"
    )
