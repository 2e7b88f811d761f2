from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from crm_bridge.csvio import COLUMNS, CsvFileError, detect_encoding, export_members, import_members
from crm_bridge.db import session_scope
from crm_bridge.models import Member, MemberPhone, PointsLedger, Tier

from .helpers import NOW, agent

HEADER = ",".join(COLUMNS)


def row(member_no: str, name: str = "李伟", phones: str = "13800138000", **kw: str) -> str:
    values = {"member_no": member_no, "name": name, "gender": "M", "birthday": "1990-05-01", "phones": phones,
              "email": "", "locale": "zh-CN", "timezone": "Asia/Shanghai", "tier": "Gold", "points_balance": "100",
              "joined_on": "2024-01-02", "maintaining_agent": "1001", "consent_call": "1", "consent_sms": "1",
              "consent_email": "0", "do_not_call": "0", "notes": ""}  # fmt: skip
    values.update(kw)
    out = io.StringIO()
    import csv

    csv.writer(out, lineterminator="\n").writerow([values[c] for c in COLUMNS])
    return out.getvalue()[:-1]


def write(tmp_path: Path, lines: list[str], encoding: str = "utf-8", name: str = "m.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return p


def setup_agents(engine: Engine) -> None:
    with session_scope(engine) as s:
        agent(s, "1001", "王芳")


def test_every_kind_of_bad_row_is_reported_with_its_line(engine: Engine, tmp_path: Path) -> None:
    setup_agents(engine)
    lines = [
        HEADER,  # 1
        row("M001", "李伟"),  # 2 ok
        row("M002", "Emily Chen", "+44 7911 123456", locale="en", timezone="Europe/London"),  # 3 ok
        row("M003", phones="12345"),  # 4 bad phone
        row("M001", "王芳"),  # 5 duplicate member number
        row("M005", birthday="1990-02-30"),  # 6 bad date
        row("M006", tier="Diamond"),  # 7 unknown tier
        row("M007", name=""),  # 8 missing name
        row("M008", email="not-an-email"),  # 9 bad email
        row("M009", locale="fr-FR"),  # 10 bad locale
        row("M010", timezone="Mars/Olympus"),  # 11 bad timezone
        row("M011", maintaining_agent="4242"),  # 12 unknown agent
        "M012,short row",  # 13 wrong field count
        "",  # 14 blank line: skipped
        row("M013", notes="two\nlines"),  # 15-16 ok (quoted newline)
        row("M014", phones="138 0013 8000;<unknown>"),  # 17 bad phone in a list
        row("", name="无编号"),  # 18 missing member_no
        row("M016", consent_call="maybe", joined_on="2099-01-01"),  # 19 two problems at once
        row("M017", "陳大文", "+852 9123 4567", locale="zh-TW", timezone="Asia/Hong_Kong"),  # 20 ok
    ]
    report = import_members(engine, write(tmp_path, lines), batch_size=2, now=NOW)
    got = [(e.line, e.member_no, e.message) for e in report.errors]
    assert got == [
        (4, "M003", "bad phone: '12345'"),
        (5, "M001", "duplicate member number M001 (first on line 2)"),
        (6, "M005", "bad date in birthday: '1990-02-30' (expected YYYY-MM-DD)"),
        (7, "M006", "unknown tier: 'Diamond' (expected Standard/Silver/Gold/Platinum)"),
        (8, "M007", "missing name"),
        (9, "M008", "bad email: 'not-an-email' (An email address must have an @-sign.)"),
        (10, "M009", "bad locale: 'fr-FR' (expected zh-CN, zh-TW or en)"),
        (11, "M010", "bad timezone: 'Mars/Olympus' (expected an IANA zone)"),
        (12, "M011", "unknown maintaining_agent: '4242'"),
        (13, "", "expected 17 fields, got 2"),
        (17, "M014", "bad phone: '<unknown>'"),
        (18, "", "missing member_no"),
        (19, "M016", "bad date in joined_on: '2099-01-01' is in the future; "
                     "bad consent_call: 'maybe' (expected 1/0, true/false, yes/no)"),
    ]  # fmt: skip
    assert (report.rows, report.inserted, report.updated, report.rejected) == (17, 4, 0, 13)
    assert "4 inserted" in report.summary() and "13 rejected" in report.summary()
    with session_scope(engine) as s:
        members = {m.member_no: m for m in s.scalars(select(Member))}
        assert set(members) == {"M001", "M002", "M013", "M017"}
        assert members["M001"].name == "李伟" and members["M001"].tier == Tier.GOLD
        assert members["M013"].notes == "two\nlines"
        assert members["M017"].name == "陳大文"
        phones = set(s.scalars(select(MemberPhone.e164)))
        assert phones == {"+8613800138000", "+447911123456", "+85291234567"}
        assert s.scalar(select(func.sum(PointsLedger.delta))) == 400


def test_reimport_is_idempotent_and_updates(engine: Engine, tmp_path: Path) -> None:
    setup_agents(engine)
    lines = [
        HEADER,
        row("M001", "李伟", "13800138000;+85291234567"),
        row("M002", "王芳", "13900139000"),
    ]
    path = write(tmp_path, lines)
    first = import_members(engine, path, now=NOW)
    again = import_members(engine, path, now=NOW)
    assert (first.inserted, first.updated, again.inserted, again.updated) == (2, 0, 0, 2)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Member)) == 2
        assert s.scalar(select(func.count()).select_from(MemberPhone)) == 3
        assert s.scalar(select(func.count()).select_from(PointsLedger)) == 2  # no adjust rows
    changed = [HEADER, row("M001", "李伟", "+85291234567;13700137000", points_balance="250", tier="Platinum"),
               row("M002", "王芳", "", points_balance="")]  # fmt: skip
    report = import_members(engine, write(tmp_path, changed, name="b.csv"), now=NOW)
    assert (report.inserted, report.updated, report.rejected) == (0, 2, 0)
    with session_scope(engine) as s:
        m1 = s.scalars(select(Member).where(Member.member_no == "M001")).one()
        assert (m1.tier, m1.points_balance) == (Tier.PLATINUM, 250)
        assert [p.e164 for p in m1.phones] == ["+85291234567", "+8613700137000"]
        m2 = s.scalars(select(Member).where(Member.member_no == "M002")).one()
        assert [p.e164 for p in m2.phones] == ["+8613900139000"] and m2.points_balance == 100
        adjust = s.scalars(select(PointsLedger).where(PointsLedger.reason == "adjust")).one()
        assert (adjust.delta, adjust.balance_after) == (150, 250)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_encodings_and_chinese_round_trip(engine: Engine, tmp_path: Path, encoding: str) -> None:
    setup_agents(engine)
    lines = [HEADER, row("M001", "李伟", "+8613800138000", notes="喜欢绿茶，M码"), row("M002", "张𠮷", "+8613900139000"),
             row("M003", "陳大文", "+85291234567", locale="zh-TW", timezone="Asia/Hong_Kong")]  # fmt: skip
    if encoding == "gb18030":
        lines[2] = row("M002", "欧阳娜娜", "+8613900139000")
    path = write(tmp_path, lines, encoding)
    assert detect_encoding(path) == ("gb18030" if encoding == "gb18030" else "utf-8-sig")
    report = import_members(engine, path, now=NOW)
    assert report.rejected == 0 and report.inserted == 3
    with session_scope(engine) as s:
        out = io.StringIO()
        assert export_members(s, out) == 3
    exported = out.getvalue().splitlines()
    assert exported[0] == HEADER
    original = [HEADER, *[ln for ln in lines[1:]]]
    assert exported == original  # round trip: the same columns, the same values
    # Re-importing the export changes nothing.
    path2 = tmp_path / "export.csv"
    path2.write_text(out.getvalue(), encoding="utf-8")
    again = import_members(engine, path2, now=NOW)
    assert (again.inserted, again.updated, again.rejected) == (0, 3, 0)
    with session_scope(engine) as s:
        out2 = io.StringIO()
        export_members(s, out2)
    assert out2.getvalue() == out.getvalue()


def test_file_level_errors(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(CsvFileError, match="unknown column"):
        import_members(engine, write(tmp_path, ["member_no,name,shoe_size", "M1,李伟,42"]))
    with pytest.raises(CsvFileError, match="missing column"):
        import_members(engine, write(tmp_path, ["member_no,phones", "M1,13800138000"]))
    with pytest.raises(CsvFileError, match="empty file"):
        import_members(engine, write(tmp_path, []))
    report = import_members(engine, write(tmp_path, ["member_no,name", "M1,李伟"]), now=NOW)
    assert report.inserted == 1


def test_a_failing_batch_commits_nothing(engine: Engine, tmp_path: Path) -> None:
    setup_agents(engine)
    # A database-level failure that validation cannot foresee: a trigger rejecting one phone.
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER boom BEFORE INSERT ON member_phones WHEN NEW.e164 = '+8613900000666' "
                              "BEGIN SELECT RAISE(ABORT, 'boom'); END"))  # fmt: skip
        else:
            conn.execute(text("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.e164 = '+8613900000666' "
                              "THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"))  # fmt: skip
            conn.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON member_phones FOR EACH ROW EXECUTE FUNCTION boom()"
                )
            )
    lines = [HEADER] + [row(f"M{i:03d}", f"会员{i}", f"1390000{i:04d}") for i in range(1, 8)]
    lines[5] = row("M005", "会员5", "13900000666")  # line 6, in the third batch of two (M005, M006)
    report = import_members(engine, write(tmp_path, lines), batch_size=2, now=NOW)
    assert [(e.line, e.member_no) for e in report.errors] == [(6, "M005"), (7, "M006")]
    assert all("batch rolled back" in e.message and "boom" in e.message for e in report.errors)
    assert (report.inserted, report.batches) == (5, 3)
    with session_scope(engine) as s:
        assert set(s.scalars(select(Member.member_no))) == {"M001", "M002", "M003", "M004", "M007"}
        assert s.scalar(select(func.count()).select_from(MemberPhone)) == 5


def test_export_then_import_into_a_fresh_database_is_identical(
    engine: Engine, tmp_path: Path
) -> None:
    setup_agents(engine)
    lines = [HEADER] + [
        row(f"M{i:03d}", f"会员{i}", f"+861390000{i:04d}", email=f"m{i}@example.cn")
        for i in range(1, 30)
    ]
    import_members(engine, write(tmp_path, lines), batch_size=7, now=NOW)
    with session_scope(engine) as s:
        out = io.StringIO()
        export_members(s, out, page=10)
    assert out.getvalue().splitlines() == lines
    assert NOW.date() > dt.date(2024, 1, 2)


def test_emails_validated_with_their_line_and_zones_from_numbers(
    engine: Engine, tmp_path: Path
) -> None:
    """email-validator at import: internationalised addresses are kept (normalised), broken
    ones are reported with their line; a member without a zone gets their number's."""
    setup_agents(engine)
    lines = [
        HEADER,  # 1
        row("E001", email="李伟@例子.中国", timezone=""),  # 2 ok (SMTPUTF8 address)
        row("E002", email="wang@@example.com"),  # 3 bad
        row("E003", email="Wang.Fang@EXAMPLE.com", phones="+447911123456", timezone=""),  # 4 ok
        row("E004", email="a@b"),  # 5 bad: no dot in the domain
    ]
    report = import_members(engine, write(tmp_path, lines), now=NOW)
    got = [(e.line, e.member_no, e.message.split(" (")[0]) for e in report.errors]
    assert got == [(3, "E002", "bad email: 'wang@@example.com'"), (5, "E004", "bad email: 'a@b'")]
    with session_scope(engine) as s:
        m = {x.member_no: x for x in s.scalars(select(Member))}
        assert m["E001"].email == "李伟@例子.中国" and m["E001"].timezone == "Asia/Shanghai"
        assert m["E003"].email == "Wang.Fang@example.com"
        assert m["E003"].timezone == "Europe/London"


def test_consent_columns_record_when_consent_was_recorded(engine: Engine, tmp_path: Path) -> None:
    """A row stating consent choices sets ``consent_recorded_at`` (new and updated members);
    a file without consent columns, or with them left empty, leaves it as it was."""
    setup_agents(engine)
    later = NOW + dt.timedelta(days=3)
    import_members(engine, write(tmp_path, [HEADER, row("C1"), row("C2", phones="13800138002",
                   consent_call="", consent_sms="", consent_email="")]), now=NOW)  # fmt: skip
    with session_scope(engine) as s:
        got = dict(s.execute(select(Member.member_no, Member.consent_recorded_at)).all())
    assert got == {"C1": NOW, "C2": None}
    import_members(
        engine, write(tmp_path, ["member_no,name", "C1,李伟伟"], name="b.csv"), now=later
    )
    import_members(
        engine,
        write(tmp_path, ["member_no,name,consent_sms", "C2,李伟,0"], name="c.csv"),
        now=later,
    )
    with session_scope(engine) as s:
        got = dict(s.execute(select(Member.member_no, Member.consent_recorded_at)).all())
    assert got == {"C1": NOW, "C2": later}
