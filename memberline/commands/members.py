"""``memberline members import FILE.csv`` / ``memberline members export``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memberline.cli import add_command
from memberline.config import Config

# A copy of crm_bridge.csvio.COLUMNS: that module imports SQLAlchemy and the models, too much
# for --help. tests/memberline/test_cli_startup.py checks the two agree.
COLUMNS = ("member_no", "name", "gender", "birthday", "phones", "email", "locale", "timezone", "tier",
           "points_balance", "joined_on", "maintaining_agent", "consent_call", "consent_sms",
           "consent_email", "do_not_call", "notes")  # fmt: skip

IMPORT_HELP = f"""\
Import members from a CSV file (upsert on member_no: re-importing a file is harmless).

Header row required; member_no and name are mandatory, other columns optional, any order:
  {",".join(COLUMNS)}

  phones            numbers separated by ';' in any usual form (national numbers use the
                    default region, e.g. CN): 138 0013 8000;+852 9123 4567
  gender            F/M/X/U      birthday, joined_on   YYYY-MM-DD
  locale            zh-CN, zh-TW or en          timezone   IANA zone, e.g. Asia/Shanghai
  tier              Standard, Silver, Gold or Platinum
  maintaining_agent an agent code, e.g. 1001
  consent_call, consent_sms, consent_email, do_not_call   1/0 (true/false, yes/no)
  points_balance    sets the balance (the difference is written to the points ledger)

Every row is validated first; bad rows (bad phone, duplicate member number in the file, bad
date, unknown tier, missing name, bad email, locale or time zone, unknown agent) are listed
with their line numbers and skipped. Valid rows are committed in batches, each batch
all-or-nothing. Encoding: UTF-8 with or without BOM, or GB18030, detected (or --encoding).
Exit status: 0 all rows imported, 1 some rows rejected, 2 the file could not be read.
"""


def _import(args: argparse.Namespace, cfg: Config) -> int:
    from tqdm import tqdm

    from crm_bridge.csvio import CsvFileError, count_records, import_members
    from crm_bridge.db import make_engine
    from crm_bridge.migrate import upgrade

    path = Path(args.file)
    if not path.is_file():
        print(f"memberline members import: no such file: {path}", file=sys.stderr)
        return 2
    upgrade(cfg.database.url)
    engine = make_engine(cfg.database.url)
    bar = tqdm(total=count_records(path), unit="row", disable=None, file=sys.stderr)
    try:
        report = import_members(engine, path, region=args.region or cfg.database.default_region,
                                encoding=args.encoding, batch_size=args.batch_size, progress=bar.update)  # fmt: skip
    except CsvFileError as exc:
        bar.close()
        print(f"memberline members import: {path}: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    bar.close()
    for error in report.errors:
        print(f"{path}:{error}", file=sys.stderr)
    print(report.summary())
    return 1 if report.errors else 0


def _export(args: argparse.Namespace, cfg: Config) -> int:
    from crm_bridge.csvio import export_members
    from crm_bridge.db import session_scope
    from memberline.dbopen import open_database

    engine = open_database(cfg.database.url)
    try:
        out = (
            open(args.output, "w", encoding="utf-8-sig" if args.bom else "utf-8", newline="")
            if args.output
            else sys.stdout
        )
        try:
            with session_scope(engine) as s:
                n = export_members(s, out)
        finally:
            if out is not sys.stdout:
                out.close()
    finally:
        engine.dispose()
    print(f"{n} members exported", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(sub, "members", None, "import or export members (CSV)")
    msub = parser.add_subparsers(dest="members_command", metavar="ACTION")
    msub.required = True
    imp = add_command(
        msub, "import", _import, "import members from FILE.csv", description=IMPORT_HELP
    )
    imp.formatter_class = argparse.RawDescriptionHelpFormatter
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--encoding", help="file encoding (default: detect UTF-8 / GB18030)")
    imp.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        metavar="N",
        help="rows per transaction (default 1000)",
    )
    imp.add_argument("--region", help="region for national phone numbers (default: config, CN)")
    exp = add_command(msub, "export", _export, "export every member as CSV (the import columns)")
    exp.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    exp.add_argument("--bom", action="store_true", help="UTF-8 with BOM (for Excel)")
