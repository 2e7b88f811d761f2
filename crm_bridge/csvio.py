"""Member CSV import and export (the same columns both ways, so an export re-imports as-is).

Columns (header row required; ``member_no`` and ``name`` columns mandatory, others optional,
any order)::

    member_no,name,gender,birthday,phones,email,locale,timezone,tier,points_balance,
    joined_on,maintaining_agent,consent_call,consent_sms,consent_email,do_not_call,notes

- ``phones``: one or more numbers separated by ``;`` in any common form (``138 0013 8000``,
  ``+852 9123 4567``, ``0086...``); national numbers use the default region. Empty: no
  phones for a new member, phones unchanged for an existing one. Otherwise the member's phones
  become exactly this list (kept numbers keep their ``invalid`` flag).
- ``gender`` F/M/X/U (or female/male/女/男); ``birthday``/``joined_on`` ``YYYY-MM-DD``;
  ``locale`` zh-CN/zh-TW/en; ``timezone`` an IANA zone; ``tier`` Standard/Silver/Gold/Platinum;
  ``maintaining_agent`` an agent code; consents and ``do_not_call`` 1/0, true/false, yes/no, 是/否.
- ``points_balance``: sets the balance; the difference is written to the points ledger
  (``import``/``adjust``), so re-importing the same file changes nothing.

Import validates every row first; only valid rows are written, in batches of ``batch_size``
rows, each batch in its own transaction (a batch commits fully or not at all). Re-import is
an upsert on ``member_no``. Files may be UTF-8 (with or without BOM) or GB18030 (detected).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crm_bridge.db import session_scope
from crm_bridge.models import Agent, Gender, Member, MemberPhone, PointsLedger, Tier
from crm_bridge.phones import DEFAULT_REGION, normalise, zone_for_number

__all__ = [
    "COLUMNS",
    "CsvFileError",
    "ImportReport",
    "RowError",
    "detect_encoding",
    "export_members",
    "import_members",
]

COLUMNS = ("member_no", "name", "gender", "birthday", "phones", "email", "locale", "timezone", "tier",
           "points_balance", "joined_on", "maintaining_agent", "consent_call", "consent_sms",
           "consent_email", "do_not_call", "notes")  # fmt: skip
REQUIRED = ("member_no", "name")
LOCALES = ("zh-CN", "zh-TW", "en")
_GENDERS = {
    "f": "F",
    "female": "F",
    "女": "F",
    "m": "M",
    "male": "M",
    "男": "M",
    "x": "X",
    "u": "U",
    "": "U",
}
_TRUE = {"1", "true", "yes", "y", "是", "t"}
_FALSE = {"0", "false", "no", "n", "否", "f"}
_TIERS = {t.value.lower(): t.value for t in Tier}


class CsvFileError(ValueError):
    """The file as a whole cannot be imported (encoding, header); nothing was written."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    member_no: str
    message: str

    def __str__(self) -> str:
        who = f" ({self.member_no})" if self.member_no else ""
        return f"line {self.line}{who}: {self.message}"


@dataclass
class ImportReport:
    encoding: str = "utf-8"
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    batches: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    def summary(self) -> str:
        return (
            f"{self.rows} rows read ({self.encoding}): {self.inserted} inserted, {self.updated} updated, "
            f"{self.rejected} rejected; {self.batches} batch(es) committed"
        )


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    member_no: str
    values: dict[str, Any]
    """Member column values present in the file (absent columns are not touched on update)."""
    phones: tuple[str, ...] | None
    points_balance: int | None


def detect_encoding(path: Path, chunk_size: int = 1 << 20) -> str:
    """``utf-8-sig`` if the whole file decodes as UTF-8 (BOM or not), else ``gb18030``."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(chunk_size):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _parse_date(value: str, column: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"bad date in {column}: {value!r} (expected YYYY-MM-DD)") from None


def _parse_bool(value: str, column: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"bad {column}: {value!r} (expected 1/0, true/false, yes/no)")


class _Validator:
    def __init__(
        self, header: list[str], agents: dict[str, int], region: str, today: dt.date
    ) -> None:
        self.header = header
        self.agents = agents
        self.region = region
        self.today = today
        self.seen: dict[str, int] = {}
        self.steps = self._steps()

    def row(self, line: int, fields: list[str]) -> _Row:
        """One record checked column by column (:meth:`_steps`): every problem of the row is
        reported together; a row with any problem is rejected whole."""
        if len(fields) != len(self.header):
            raise ValueError(f"expected {len(self.header)} fields, got {len(fields)}")
        raw = {k: v.strip() for k, v in zip(self.header, fields, strict=True)}
        member_no = self._member_no(raw, line)
        values: dict[str, Any] = {"member_no": member_no}
        problems: list[str] = []
        for column, when, parse in self.steps:
            if (when == "present" and column not in raw) or (
                when == "filled" and not raw.get(column)
            ):
                continue
            try:
                values.update(parse(raw[column], column))
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            del self.seen[member_no]
            raise ValueError("; ".join(problems))
        phones = values.pop(_PHONES, None)
        points = values.pop(_POINTS, None)
        return _Row(line, member_no, values, phones, points)

    def _member_no(self, raw: dict[str, str], line: int) -> str:
        member_no = raw["member_no"]
        if not member_no:
            raise ValueError("missing member_no")
        if len(member_no) > 32:
            raise ValueError("member_no longer than 32 characters")
        if member_no in self.seen:
            raise ValueError(
                f"duplicate member number {member_no} (first on line {self.seen[member_no]})"
            )
        self.seen[member_no] = line
        return member_no

    def _steps(self) -> list[tuple[str, str, Callable[[str, str], dict[str, Any]]]]:
        """(column, when, parser) in the order problems are reported. ``when``: ``always``,
        ``present`` (the column is in the header; an empty cell clears the field) or
        ``filled`` (a non-empty cell). A parser returns the fields to set or raises
        ValueError with the message the import report shows."""
        flags = [(col, "filled", self._flag) for col in (*_CONSENTS, "do_not_call")]
        return [
            ("name", "always", self._name),
            ("gender", "present", self._gender),
            ("birthday", "filled", self._date),
            ("joined_on", "filled", self._date),
            ("phones", "filled", self._phones),
            ("email", "present", self._email),
            ("locale", "filled", self._locale),
            ("timezone", "filled", self._timezone),
            ("tier", "filled", self._tier),
            ("points_balance", "filled", self._points),
            ("maintaining_agent", "present", self._agent),
            *flags,
            ("notes", "present", lambda v, _c: {"notes": v or None}),
        ]

    @staticmethod
    def _name(value: str, _col: str) -> dict[str, Any]:
        if not value:
            raise ValueError("missing name")
        if len(value) > 200:
            raise ValueError("name longer than 200 characters")
        return {"name": value}

    @staticmethod
    def _gender(value: str, _col: str) -> dict[str, Any]:
        g = _GENDERS.get(value.lower())
        if g is None:
            raise ValueError(f"bad gender: {value!r} (expected F/M/X/U)")
        return {"gender": Gender(g)}

    def _date(self, value: str, col: str) -> dict[str, Any]:
        d = _parse_date(value, col)
        if d > self.today:
            raise ValueError(f"bad date in {col}: {value!r} is in the future")
        return {col: d}

    def _phones(self, value: str, _col: str) -> dict[str, Any]:
        out: list[str] = []
        for part in re.split(r"[;|,，；]", value):
            if not part.strip():
                continue
            e164 = normalise(part, self.region)
            if e164 is None:
                raise ValueError(f"bad phone: {part.strip()!r}")
            if e164 not in out:
                out.append(e164)
        return {_PHONES: tuple(out)}

    @staticmethod
    def _email(value: str, _col: str) -> dict[str, Any]:
        e = value.strip()
        if not e:
            return {"email": None}
        try:
            # Syntax only (no DNS at import); internationalised addresses are valid
            # (sent with SMTPUTF8, or failed alone when the server lacks it).
            ok = validate_email(e, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"bad email: {e!r} ({exc})") from None
        return {"email": ok.normalized}

    @staticmethod
    def _locale(value: str, _col: str) -> dict[str, Any]:
        match = {loc.lower(): loc for loc in LOCALES}.get(value.replace("_", "-").lower())
        if match is None:
            raise ValueError(f"bad locale: {value!r} (expected zh-CN, zh-TW or en)")
        return {"locale": match}

    @staticmethod
    def _timezone(value: str, _col: str) -> dict[str, Any]:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"bad timezone: {value!r} (expected an IANA zone)") from None
        return {"timezone": value}

    @staticmethod
    def _tier(value: str, _col: str) -> dict[str, Any]:
        t = _TIERS.get(value.lower())
        if t is None:
            raise ValueError(f"unknown tier: {value!r} (expected Standard/Silver/Gold/Platinum)")
        return {"tier": Tier(t)}

    @staticmethod
    def _points(value: str, _col: str) -> dict[str, Any]:
        try:
            points = int(value)
        except ValueError:
            raise ValueError(f"bad points_balance: {value!r}") from None
        if points < 0:
            raise ValueError(f"bad points_balance: {points} is negative")
        return {_POINTS: points}

    def _agent(self, code: str, _col: str) -> dict[str, Any]:
        if code and code not in self.agents:
            raise ValueError(f"unknown maintaining_agent: {code!r}")
        return {"maintaining_agent_id": self.agents[code] if code else None}

    @staticmethod
    def _flag(value: str, col: str) -> dict[str, Any]:
        return {col: _parse_bool(value, col)}


_PHONES = "\0phones"
_POINTS = "\0points"
"""Keys under which the phone and points parsers hand their results to :meth:`row` (kept out
of the member's column values)."""


_CONSENTS = ("consent_call", "consent_sms", "consent_email")


def _stamp_consent(values: dict[str, Any], now: dt.datetime) -> None:
    """A row that states a consent choice records when it was recorded (the import's time);
    a row without consent columns leaves an earlier record alone."""
    if any(col in values for col in _CONSENTS):
        values["consent_recorded_at"] = now


def _write_batch(session: Session, rows: list[_Row], now: dt.datetime) -> tuple[int, int]:
    existing = {
        r.member_no: (r.id, r.points_balance)
        for r in session.execute(
            select(Member.member_no, Member.id, Member.points_balance).where(
                Member.member_no.in_([r.member_no for r in rows])
            )
        )
    }
    new_rows = [r for r in rows if r.member_no not in existing]
    old_rows = [r for r in rows if r.member_no in existing]
    ids: dict[str, int] = {k: v[0] for k, v in existing.items()}
    ledger: list[dict[str, Any]] = []
    if new_rows:
        payload = []
        for r in new_rows:
            v = dict(r.values)
            v.setdefault("joined_on", now.date())
            if not v.get("timezone"):
                # No zone given for a new member: the first number that names exactly one
                # (else unknown, and the contact rules use every zone the number may be in).
                v["timezone"] = next(
                    (tz for e164 in r.phones or () if (tz := zone_for_number(e164))), ""
                )
            v["points_balance"] = r.points_balance or 0
            v["created_at"] = v["updated_at"] = now
            _stamp_consent(v, now)
            payload.append(v)
        # Same keys in every dict so one executemany covers the batch.
        keys = set().union(*(p.keys() for p in payload))
        defaults = {
            c.key: _column_default(c.key) for c in Member.__table__.columns if c.key in keys
        }
        payload = [{k: p.get(k, defaults[k]) for k in keys} for p in payload]
        for member_no, member_id in session.execute(
            insert(Member).returning(Member.member_no, Member.id, sort_by_parameter_order=True),
            payload,
        ):
            ids[member_no] = member_id
        for r in new_rows:
            if r.points_balance:
                ledger.append({"member_id": ids[r.member_no], "delta": r.points_balance,
                               "balance_after": r.points_balance, "reason": "import"})  # fmt: skip
    if old_rows:
        by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in old_rows:
            member_id, balance = existing[r.member_no]
            v = {k: val for k, val in r.values.items() if k != "member_no"}
            v["id"] = member_id
            v["updated_at"] = now
            _stamp_consent(v, now)
            if r.points_balance is not None and r.points_balance != balance:
                v["points_balance"] = r.points_balance
                ledger.append({"member_id": member_id, "delta": r.points_balance - balance,
                               "balance_after": r.points_balance, "reason": "adjust"})  # fmt: skip
            by_keys.setdefault(tuple(sorted(v)), []).append(v)
        for group in by_keys.values():
            session.execute(update(Member), group)
    if ledger:
        for entry in ledger:
            entry.update(occurred_at=now, reference="csv-import")
        session.execute(insert(PointsLedger), ledger)
    with_phones = [r for r in rows if r.phones is not None]
    if with_phones:
        member_ids = [ids[r.member_no] for r in with_phones]
        have: dict[int, dict[str, int]] = {}
        for pid, mid, e164 in session.execute(
            select(MemberPhone.id, MemberPhone.member_id, MemberPhone.e164).where(
                MemberPhone.member_id.in_(member_ids)
            )
        ):
            have.setdefault(mid, {})[e164] = pid
        drop: list[int] = []
        add: list[dict[str, Any]] = []
        for r in with_phones:
            mid = ids[r.member_no]
            current = have.get(mid, {})
            wanted = r.phones or ()
            drop.extend(pid for e164, pid in current.items() if e164 not in wanted)
            add.extend({"member_id": mid, "e164": e, "kind": "mobile", "invalid": False}
                       for e in wanted if e not in current)  # fmt: skip
        if drop:
            session.execute(delete(MemberPhone).where(MemberPhone.id.in_(drop)))
        if add:
            session.execute(insert(MemberPhone), add)
    return len(new_rows), len(old_rows)


def _column_default(key: str) -> Any:
    col = Member.__table__.columns[key]
    default = col.default
    if default is None or not getattr(default, "is_scalar", False):
        return None
    return getattr(default, "arg", None)


def _records(text: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(starting line number, fields) for every non-blank record, header included."""
    reader = csv.reader(text)
    last = 0
    for fields in reader:
        start = last + 1
        last = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        yield start, fields


def import_members(
    engine: Engine,
    path: str | Path,
    *,
    region: str = DEFAULT_REGION,
    encoding: str | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    now: dt.datetime | None = None,
) -> ImportReport:
    """Import a member CSV (see the module doc); raises :class:`CsvFileError` for a bad file."""
    path = Path(path)
    now = now or dt.datetime.now(dt.UTC)
    report = ImportReport(encoding=encoding or detect_encoding(path))
    with session_scope(engine) as s:
        agents = {code: aid for code, aid in s.execute(select(Agent.code, Agent.id))}
    try:
        fh = path.open(encoding=report.encoding, newline="")
    except LookupError:
        raise CsvFileError(f"unknown encoding {report.encoding!r}") from None
    with fh:
        try:
            records = _records(fh)
            first = next(records, None)
            if first is None:
                raise CsvFileError("empty file: expected a header row")
            header = [h.strip().lstrip("\ufeff").lower() for h in first[1]]
            unknown = [h for h in header if h not in COLUMNS]
            missing = [h for h in REQUIRED if h not in header]
            if unknown or missing or len(set(header)) != len(header):
                raise CsvFileError(
                    "bad header: "
                    + "; ".join(
                        ([f"unknown column(s) {', '.join(unknown)}"] if unknown else [])
                        + ([f"missing column(s) {', '.join(missing)}"] if missing else [])
                        + (["duplicate columns"] if len(set(header)) != len(header) else [])
                    )
                    + f". Expected columns: {','.join(COLUMNS)}"
                )
            validator = _Validator(header, agents, region, now.date())
            batch: list[_Row] = []
            for line, fields in records:
                report.rows += 1
                try:
                    batch.append(validator.row(line, fields))
                except ValueError as exc:
                    member_no = (
                        fields[header.index("member_no")].strip()
                        if len(fields) == len(header)
                        else ""
                    )
                    report.errors.append(RowError(line, member_no, str(exc)))
                if len(batch) >= batch_size:
                    _flush(engine, batch, now, report)
                    batch = []
                if progress is not None:
                    progress(1)
            if batch:
                _flush(engine, batch, now, report)
        except UnicodeDecodeError as exc:
            raise CsvFileError(f"cannot decode the file as {report.encoding}: {exc}") from None
        except csv.Error as exc:
            raise CsvFileError(f"malformed CSV: {exc}") from None
    report.errors.sort(key=lambda e: e.line)
    return report


def _flush(engine: Engine, batch: list[_Row], now: dt.datetime, report: ImportReport) -> None:
    try:
        with session_scope(engine) as s:
            inserted, updated = _write_batch(s, batch, now)
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        reason = str(orig if orig is not None else exc).splitlines()[0]
        report.errors.extend(
            RowError(r.line, r.member_no, f"batch rolled back: {reason}") for r in batch
        )
        return
    report.inserted += inserted
    report.updated += updated
    report.batches += 1


def count_records(path: Path) -> int:
    """Physical lines minus the header: a cheap progress-bar total."""
    n = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return max(n - 1, 0)


def export_members(session: Session, out: TextIO, page: int = 5000) -> int:
    """Write every member as CSV (``COLUMNS``), ordered by id; returns the number of rows."""
    agents = {aid: code for aid, code in session.execute(select(Agent.id, Agent.code))}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    last_id = 0
    n = 0
    while True:
        members = session.execute(
            select(Member.id, Member.member_no, Member.name, Member.gender, Member.birthday, Member.email,
                   Member.locale, Member.timezone, Member.tier, Member.points_balance, Member.joined_on,
                   Member.maintaining_agent_id, Member.consent_call, Member.consent_sms, Member.consent_email,
                   Member.do_not_call, Member.notes)
            .where(Member.id > last_id).order_by(Member.id).limit(page)
        ).all()  # fmt: skip
        if not members:
            return n
        phones: dict[int, list[str]] = {}
        for mid, e164 in session.execute(
            select(MemberPhone.member_id, MemberPhone.e164)
            .where(MemberPhone.member_id.between(members[0][0], members[-1][0]))
            .order_by(MemberPhone.member_id, MemberPhone.id)
        ):
            phones.setdefault(mid, []).append(e164)
        for m in members:
            writer.writerow([
                m.member_no, m.name, m.gender.value, m.birthday.isoformat() if m.birthday else "",
                ";".join(phones.get(m.id, [])), m.email or "", m.locale, m.timezone, m.tier.value,
                m.points_balance, m.joined_on.isoformat(), agents.get(m.maintaining_agent_id, ""),
                int(m.consent_call), int(m.consent_sms), int(m.consent_email), int(m.do_not_call), m.notes or "",
            ])  # fmt: skip
            n += 1
        last_id = members[-1][0]


def export_to_string(session: Session) -> str:
    buf = io.StringIO()
    export_members(session, buf)
    return buf.getvalue()
