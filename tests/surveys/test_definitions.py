"""Survey definitions: the shipped survey, strict validation errors, stored versions."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from crm_bridge.db import session_scope
from crm_bridge.models import SurveyDefinition
from surveys.definitions import (
    END,
    Field,
    Kind,
    SurveyDefinitionError,
    builtin_names,
    builtin_source,
    load_builtin,
    parse_survey,
    sha256_of,
)
from surveys.store import SurveyCatalog, publish_definition

PROMPTS = """
[invalid]
audio = "bad"
text = { en = "Invalid." }
[no_input]
audio = "silence"
text = { en = "No input." }
[closing]
audio = "bye"
text = { en = "Bye." }
"""


def survey(questions: str, head: str = "") -> str:
    return f'name = "t"\nlocales = ["en"]\n{head}\n{questions}\n{PROMPTS}'


def errors(source: str) -> list[str]:
    with pytest.raises(SurveyDefinitionError) as exc:
        parse_survey(source, source="t.toml")
    return exc.value.errors


def test_shipped_satisfaction_survey() -> None:
    assert "satisfaction" in builtin_names()
    s = load_builtin("satisfaction")
    assert [q.id for q in s.questions] == ["q_csat", "q_nps", "q_callback"]
    csat, nps, cb = s.questions
    assert (csat.kind, csat.keys, csat.field, csat.max_digits) == (
        Kind.CSAT,
        ("1", "2", "3", "4", "5"),
        Field.CSAT,
        1,
    )
    assert (nps.kind, nps.keys[0], nps.keys[-1], nps.max_digits) == (Kind.NPS, "0", "10", 2)
    assert (cb.kind, cb.field, cb.yes, cb.no, cb.default_next) == (
        Kind.YESNO,
        Field.CALLBACK,
        "1",
        "2",
        END,
    )
    assert s.locales == ("zh-CN", "zh-TW", "en") and s.default_locale == "zh-CN"
    for p in s.prompts():
        assert set(p.text) == set(s.locales)
    assert s.pick_locale("zh_TW") == "zh-TW" and s.pick_locale("en-GB") == "en"
    assert s.pick_locale("fr") == "zh-CN" and s.pick_locale(None) == "zh-CN"


def test_branching_and_default_next() -> None:
    s = parse_survey(
        survey(
            """
[[questions]]
id = "q1"
kind = "yesno"
audio = "q1"
text = { en = "Q1?" }
next = { "1" = "q3" }
[[questions]]
id = "q2"
kind = "choice"
keys = ["1", "2", "3"]
audio = "q2"
text = { en = "Q2?" }
[[questions]]
id = "q3"
kind = "csat"
scale = [1, 5]
audio = "q3"
text = { en = "Q3?" }
"""
        )
    )
    q1, q2, q3 = s.questions
    assert (q1.target("1"), q1.target("2")) == ("q3", "q2")
    assert q2.target("2") == "q3" and q3.target("5") == END


@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        (  # unknown key inside a question
            '[[questions]]\nid = "q1"\nkind = "csat"\naudio = "a"\ntext = { en = "x" }\nnxt = { default = "end" }',
            "question 'q1': unknown key 'nxt'",
        ),
        (  # bad branch target
            '[[questions]]\nid = "q1"\nkind = "csat"\naudio = "a"\ntext = { en = "x" }\nnext = { "5" = "q9" }',
            "question 'q1': next for '5' goes to unknown question 'q9'",
        ),
        (  # branch on a key that is not a valid answer
            '[[questions]]\nid = "q1"\nkind = "csat"\naudio = "a"\ntext = { en = "x" }\nnext = { "7" = "end" }',
            "question 'q1': next branches on key '7' which is not a valid answer (valid: 1, 2, 3, 4, 5)",
        ),
        (  # scale mismatch
            '[[questions]]\nid = "q1"\nkind = "csat"\nscale = [0, 10]\naudio = "a"\ntext = { en = "x" }',
            "question 'q1': scale [0, 10] does not match kind 'csat' (must be [1, 5])",
        ),
        (
            '[[questions]]\nid = "q1"\nkind = "nps"\nkeys = ["1", "2"]\naudio = "a"\ntext = { en = "x" }',
            "question 'q1': keys ['1', '2'] do not match the nps scale 0-10 (omit keys for nps)",
        ),
        (  # missing translation
            '[[questions]]\nid = "q1"\nkind = "csat"\naudio = "a"\ntext = { fr = "x" }',
            "question 'q1': text missing for locale 'en'",
        ),
        (  # audio must be a bare file name
            '[[questions]]\nid = "q1"\nkind = "csat"\naudio = "../etc/passwd"\ntext = { en = "x" }',
            "question 'q1': audio must be a file name",
        ),
        (
            '[[questions]]\nid = "q1"\nkind = "choice"\naudio = "a"\ntext = { en = "x" }',
            "question 'q1': a choice question needs keys",
        ),
        (
            '[[questions]]\nid = "q1"\nkind = "csat"\nfield = "callback"\naudio = "a"\ntext = { en = "x" }',
            "question 'q1': field 'callback' needs a yesno question",
        ),
        (
            '[[questions]]\nid = "q1"\nkind = "stars"\naudio = "a"\ntext = { en = "x" }',
            "question 'q1': kind must be one of csat, nps, yesno, choice, got 'stars'",
        ),
    ],
)
def test_validation_errors_name_question_and_key(questions: str, expected: str) -> None:
    found = errors(survey(questions))
    assert any(e.startswith(expected) for e in found), found


def test_cycle_is_reported_with_its_path() -> None:
    found = errors(
        survey(
            """
[[questions]]
id = "a"
kind = "yesno"
audio = "a"
text = { en = "A?" }
next = { "1" = "b", default = "end" }
[[questions]]
id = "b"
kind = "yesno"
audio = "b"
text = { en = "B?" }
next = { "2" = "a" }
"""
        )
    )
    assert "question 'a': branching makes a cycle: a -> b -> a" in found


def test_unreachable_duplicate_and_top_level_errors() -> None:
    found = errors(
        'name = "Bad Name"\nlocales = ["en"]\ncolour = "red"\n'
        '[[questions]]\nid = "a"\nkind = "yesno"\naudio = "a"\ntext = { en = "A?" }\nnext = { default = "end" }\n'
        '[[questions]]\nid = "b"\nkind = "yesno"\naudio = "b"\ntext = { en = "B?" }\n'
        '[[questions]]\nid = "b"\nkind = "yesno"\naudio = "b"\ntext = { en = "B?" }\n'
        '[closing]\naudio = "bye"\ntext = { en = "Bye." }\n'
    )
    assert "survey: unknown key 'colour'" in found[0] or any(
        "unknown key 'colour'" in e for e in found
    )
    assert any(e.startswith("survey: name must be lower-case") for e in found)
    assert "question 'b': duplicate question id" in found
    assert "question 'b': is never asked (no branch leads to it)" in found
    assert "survey: [invalid] prompt is required" in found
    assert "survey: [no_input] prompt is required" in found


def test_not_toml() -> None:
    assert errors("name = ")[0].startswith("not valid TOML")


def test_versions(engine: Engine) -> None:
    source = builtin_source("satisfaction")
    s1 = parse_survey(source)
    changed = parse_survey(source.replace("Goodbye.", "Goodbye and take care."))
    with session_scope(engine) as s:
        v1 = publish_definition(s, s1)
        again = publish_definition(s, parse_survey(source))
        v2 = publish_definition(s, changed)
        assert (v1.version, again.id, v2.version) == (1, v1.id, 2)
        assert v1.sha256 == sha256_of(source) and v2.sha256 != v1.sha256
        # the catalog serves the latest version, parsed from what was stored
        def_id, latest = SurveyCatalog().resolve(s, "satisfaction")
        assert (
            def_id == v2.id
            and latest.closing.text_for("en")
            == "Thank you for your feedback. Goodbye and take care."
        )
        assert s.scalar(select(func.count()).select_from(SurveyDefinition)) == 2
