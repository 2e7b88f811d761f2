"""Survey definitions: TOML in, a validated immutable :class:`Survey` out.

A definition (see ``surveys/data/satisfaction.toml`` for the shipped one)::

    name = "satisfaction"
    locales = ["zh-CN", "zh-TW", "en"]      # every prompt needs a text per locale
    default_locale = "zh-CN"
    timeout_s = 5                           # wait for the first key
    max_attempts = 3                        # tries per question (invalid or no input)
    on_exhausted = "end"                    # "end" (partial) or "skip" (go on)

    [intro]      audio = "…"  text = { zh-CN = "…", zh-TW = "…", en = "…" }   (optional)
    [invalid]    the notice played before re-asking after a wrong key
    [no_input]   the notice played before re-asking after silence
    [closing]    the goodbye

    [[questions]]
    id = "q_csat"
    kind = "csat"            # csat (1-5) | nps (0-10) | yesno | choice
    audio = "survey-satisfaction-csat"
    text = { … }
    next = { "1" = "q_callback", default = "end" }   # optional; default: the next question
    # yesno: yes = "1", no = "2";   choice: keys = ["1", "2", "3"]
    # field = "csat" | "nps" | "callback"  (which survey_responses column the answer fills)

Validation is strict and names the question and key in every error: unknown keys,
texts missing for a locale, branch targets that do not exist, branches on keys that are
not valid answers, cycles (a survey must always end), scales that do not match the kind.
All problems are collected and raised together as :class:`SurveyDefinitionError`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "END",
    "LOCALES",
    "Field",
    "Kind",
    "Prompt",
    "Question",
    "Survey",
    "SurveyDefinitionError",
    "builtin_names",
    "load_builtin",
    "load_file",
    "parse_survey",
    "sha256_of",
]

END = "end"
"""Branch target that ends the survey (completed)."""

LOCALES = ("zh-CN", "zh-TW", "en")
"""Locales the product knows (member.locale values)."""

_AUDIO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_KEY_RE = re.compile(r"^[0-9*#]{1,4}$")


class Kind(enum.StrEnum):
    CSAT = "csat"
    NPS = "nps"
    YESNO = "yesno"
    CHOICE = "choice"


class Field(enum.StrEnum):
    """The ``survey_responses`` column an answer also fills (for scoring and escalation)."""

    CSAT = "csat"
    NPS = "nps"
    CALLBACK = "callback"


SCALES: dict[Kind, tuple[int, int]] = {Kind.CSAT: (1, 5), Kind.NPS: (0, 10)}


@dataclass(frozen=True)
class Prompt:
    """Something the member hears: a recorded file (Asterisk) and its text per locale (TTS)."""

    audio: str
    text: Mapping[str, str]

    def text_for(self, locale: str) -> str:
        return self.text[locale]


@dataclass(frozen=True)
class Question:
    id: str
    kind: Kind
    prompt: Prompt
    keys: tuple[str, ...]
    """Every valid answer, as typed on the keypad (e.g. ``"10"`` for NPS ten)."""
    next: Mapping[str, str]
    """Answer -> target question id or ``END``; ``"default"`` for any other answer."""
    default_next: str
    field: Field | None = None
    yes: str | None = None
    no: str | None = None
    max_attempts: int = 3
    timeout_s: float = 5.0

    @property
    def max_digits(self) -> int:
        return max(len(k) for k in self.keys)

    def target(self, answer: str) -> str:
        return self.next.get(answer, self.default_next)

    def field_value(self, answer: str) -> int | bool | None:
        """The value for :attr:`field` (int score or callback bool), None if no field."""
        if self.field is None:
            return None
        if self.field is Field.CALLBACK:
            return answer == self.yes
        return int(answer)


@dataclass(frozen=True)
class Survey:
    name: str
    title: Mapping[str, str]
    locales: tuple[str, ...]
    default_locale: str
    questions: tuple[Question, ...]
    closing: Prompt
    invalid: Prompt
    no_input: Prompt
    intro: Prompt | None = None
    on_exhausted: str = "end"
    source: str = field(default="", repr=False, compare=False)

    @property
    def first(self) -> Question:
        return self.questions[0]

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(f"survey {self.name!r} has no question {qid!r}")

    def prompts(self) -> list[Prompt]:
        """Every prompt, in playing order (intro, questions, notices, closing)."""
        out = [self.intro] if self.intro else []
        out += [q.prompt for q in self.questions]
        out += [self.invalid, self.no_input, self.closing]
        return out

    def pick_locale(self, wanted: str | None) -> str:
        """The survey locale closest to ``wanted`` (exact, then same language), else default."""
        if wanted:
            norm = wanted.replace("_", "-")
            for loc in self.locales:
                if loc.lower() == norm.lower():
                    return loc
            lang = norm.split("-")[0].lower()
            for loc in self.locales:
                if loc.split("-")[0].lower() == lang:
                    return loc
        return self.default_locale


class SurveyDefinitionError(ValueError):
    """A survey definition is invalid; ``errors`` lists every problem found."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: invalid survey definition:\n  - " + "\n  - ".join(errors))


def sha256_of(source_toml: str) -> str:
    return hashlib.sha256(source_toml.encode("utf-8")).hexdigest()


_TOP_KEYS = {
    "name",
    "title",
    "locales",
    "default_locale",
    "timeout_s",
    "max_attempts",
    "on_exhausted",
    "intro",
    "invalid",
    "no_input",
    "closing",
    "questions",
}
_PROMPT_KEYS = {"audio", "text"}
_QUESTION_KEYS = {
    "id",
    "kind",
    "audio",
    "text",
    "keys",
    "scale",
    "next",
    "field",
    "yes",
    "no",
    "max_attempts",
    "timeout_s",
}


class _Collector:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")


def _unknown(c: _Collector, where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    for key in sorted(set(data) - allowed):
        c.add(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")


def _texts(c: _Collector, where: str, value: Any, locales: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(value, dict):
        c.add(where, "text must be a table of locale = text")
        return {}
    out: dict[str, str] = {}
    for loc, text in value.items():
        if loc not in locales:
            c.add(where, f"text for locale {loc!r} which the survey does not list in locales")
        elif not isinstance(text, str) or not text.strip():
            c.add(where, f"text for locale {loc!r} must be a non-empty string")
        else:
            out[loc] = text.strip()
    for loc in locales:
        if loc not in value:
            c.add(where, f"text missing for locale {loc!r}")
    return out


def _prompt(c: _Collector, where: str, data: Any, locales: tuple[str, ...]) -> Prompt | None:
    if not isinstance(data, dict):
        c.add(where, "must be a table with audio and text")
        return None
    _unknown(c, where, data, _PROMPT_KEYS)
    return _prompt_fields(c, where, data, locales)


def _prompt_fields(
    c: _Collector, where: str, data: Mapping[str, Any], locales: tuple[str, ...]
) -> Prompt | None:
    audio = data.get("audio")
    if not isinstance(audio, str) or not _AUDIO_RE.match(audio):
        c.add(
            where,
            f"audio must be a file name without extension or directory "
            f"(letters, digits, - and _), got {audio!r}",
        )
        audio = None
    text = _texts(c, where, data.get("text"), locales)
    if audio is None or len(text) != len(locales):
        return None
    return Prompt(audio=audio, text=text)


def _positive_int(c: _Collector, where: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        c.add(where, f"must be an integer 1-10, got {value!r}")
        return default
    return value


def _timeout(c: _Collector, where: str, value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 60:
        c.add(where, f"must be a number of seconds 1-60, got {value!r}")
        return default
    return float(value)


def _question(
    c: _Collector,
    index: int,
    data: Any,
    locales: tuple[str, ...],
    max_attempts: int,
    timeout_s: float,
) -> tuple[Question | None, dict[str, Any]]:
    """One ``[[questions]]`` entry: id and kind, prompt, keys, field, branches, limits (each
    step adds its errors to ``c``); the question, or None when it cannot be built."""
    where = f"questions[{index}]"
    if not isinstance(data, dict):
        c.add(where, "must be a table")
        return None, {}
    qid = data.get("id")
    if not isinstance(qid, str) or not _ID_RE.match(qid) or qid == END:
        c.add(where, f"id must be an identifier (letters, digits, _) other than 'end', got {qid!r}")
        return None, data
    where = f"question {qid!r}"
    _unknown(c, where, data, _QUESTION_KEYS)
    try:
        kind = Kind(data.get("kind", ""))
    except ValueError:
        c.add(
            where,
            f"kind must be one of {', '.join(k.value for k in Kind)}, got {data.get('kind')!r}",
        )
        return None, data
    prompt = _prompt_fields(c, where, data, locales)
    keys, yes, no = _question_keys(c, where, kind, data)
    fld = _question_field(c, where, kind, data.get("field"))
    nxt = _question_next(c, where, keys, data.get("next", {}))
    if prompt is None or not keys:
        return None, data
    q = Question(
        id=qid,
        kind=kind,
        prompt=prompt,
        keys=keys,
        next={k: v for k, v in nxt.items() if k != "default"},
        default_next=nxt.get("default", ""),  # filled in by the caller
        field=fld,
        yes=yes if kind is Kind.YESNO else None,
        no=no if kind is Kind.YESNO else None,
        max_attempts=_positive_int(
            c, f"{where} max_attempts", data.get("max_attempts"), max_attempts
        ),
        timeout_s=_timeout(c, f"{where} timeout_s", data.get("timeout_s"), timeout_s),
    )
    return q, data


def _question_keys(
    c: _Collector, where: str, kind: Kind, data: dict[str, Any]
) -> tuple[tuple[str, ...], Any, Any]:
    """The keypad answers a question accepts, from its kind (a scale's digits, yes/no keys)
    or its ``keys``; with the ``yes``/``no`` keys of a yesno question (else None)."""
    keys: tuple[str, ...] = ()
    raw_keys = data.get("keys")
    if raw_keys is not None and (
        not isinstance(raw_keys, list) or not all(isinstance(k, str) for k in raw_keys)
    ):
        c.add(where, 'keys must be a list of strings such as ["1", "2"]')
        raw_keys = None
    yes = no = None
    if kind in SCALES:
        lo, hi = SCALES[kind]
        scale = data.get("scale")
        if scale is not None and scale != [lo, hi]:
            c.add(
                where, f"scale {scale!r} does not match kind {kind.value!r} (must be [{lo}, {hi}])"
            )
        keys = tuple(str(n) for n in range(lo, hi + 1))
        if raw_keys is not None and tuple(raw_keys) != keys:
            c.add(
                where,
                f"keys {raw_keys!r} do not match the {kind.value} scale {lo}-{hi} "
                f"(omit keys for {kind.value})",
            )
    elif kind is Kind.YESNO:
        yes, no = data.get("yes", "1"), data.get("no", "2")
        for name, val in (("yes", yes), ("no", no)):
            if not isinstance(val, str) or not _KEY_RE.match(val):
                c.add(where, f'{name} must be a keypad key such as "1", got {val!r}')
        if yes == no:
            c.add(where, "yes and no must be different keys")
        keys = (str(yes), str(no))
        if raw_keys is not None and set(raw_keys) != set(keys):
            c.add(where, f"keys {raw_keys!r} do not match yes={yes!r} / no={no!r}")
        if data.get("scale") is not None:
            c.add(where, "scale is only for csat and nps questions")
    else:
        if raw_keys is None or not raw_keys:
            c.add(where, 'a choice question needs keys, e.g. keys = ["1", "2", "3"]')
        else:
            keys = tuple(raw_keys)
        if data.get("scale") is not None:
            c.add(where, "scale is only for csat and nps questions")
    for k in keys:
        if not _KEY_RE.match(k):
            c.add(where, f"key {k!r} is not keypad input (digits, * or #, at most 4)")
    if len(set(keys)) != len(keys):
        c.add(where, "keys must not repeat")
    return keys, yes, no


def _question_field(c: _Collector, where: str, kind: Kind, raw_field: Any) -> Field | None:
    """The response column a question fills: ``field``, else its kind's (csat, nps)."""
    default_field = {Kind.CSAT: Field.CSAT, Kind.NPS: Field.NPS}.get(kind)
    if raw_field is None:
        return default_field
    fld: Field | None = None
    try:
        fld = Field(raw_field)
    except ValueError:
        c.add(
            where,
            f"field must be one of {', '.join(f.value for f in Field)}, got {raw_field!r}",
        )
    if fld is Field.CALLBACK and kind is not Kind.YESNO:
        c.add(where, "field 'callback' needs a yesno question")
    if fld in (Field.CSAT, Field.NPS) and fld != default_field:
        c.add(where, f"field {fld.value!r} needs a {fld.value} question (kind is {kind.value!r})")
    return fld


def _question_next(
    c: _Collector, where: str, keys: tuple[str, ...], raw_next: Any
) -> dict[str, str]:
    """``next``: answer -> question id (or ``end``), with an optional ``default``."""
    nxt: dict[str, str] = {}
    if not isinstance(raw_next, dict) or not all(isinstance(v, str) for v in raw_next.values()):
        c.add(
            where,
            'next must be a table of answer = "question id" (or "end"), with optional default',
        )
        return nxt
    for answer, target in raw_next.items():
        if answer != "default" and keys and answer not in keys:
            c.add(
                where,
                f"next branches on key {answer!r} which is not a valid answer "
                f"(valid: {', '.join(keys)})",
            )
        nxt[answer] = target
    return nxt


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in colour:
                continue
            if colour[nxt] == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour[nxt] == white:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = black
        return None

    for node in edges:
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


def parse_survey(source_toml: str, *, source: str = "<survey>") -> Survey:
    """Parse and validate a survey definition; raise :class:`SurveyDefinitionError`.

    Steps: the survey's own keys (:func:`_survey_header`), its prompts, its questions one by
    one (:func:`_question`), then the links between questions (:func:`_link_questions`) and
    the shape of the whole (:func:`_check_flow`: no cycle, every question reachable, each
    response field filled once). Every error is collected; they are raised together."""
    try:
        data = tomllib.loads(source_toml)
    except tomllib.TOMLDecodeError as exc:
        raise SurveyDefinitionError(source, [f"not valid TOML: {exc}"]) from None
    c = _Collector()
    _unknown(c, "survey", data, _TOP_KEYS)
    head = _survey_header(c, data)
    prompts = _survey_prompts(c, data, head.locales)
    questions, seen, ids = _survey_questions(c, data, head)
    questions = _link_questions(c, questions, seen, ids)
    _check_flow(c, questions)
    if c.errors:
        raise SurveyDefinitionError(source, c.errors)
    intro = prompts.get("intro")
    closing, invalid, no_input = prompts["closing"], prompts["invalid"], prompts["no_input"]
    assert closing is not None and invalid is not None and no_input is not None
    return Survey(
        name=head.name,
        title=head.title,
        locales=head.locales,
        default_locale=head.default_locale,
        questions=tuple(questions),
        closing=closing,
        invalid=invalid,
        no_input=no_input,
        intro=intro,
        on_exhausted=head.on_exhausted,
        source=source_toml,
    )


@dataclasses.dataclass(frozen=True)
class _Header:
    """The survey-level keys, validated (defaults in place of bad values)."""

    name: str
    locales: tuple[str, ...]
    default_locale: str
    title: dict[str, str]
    max_attempts: int
    timeout_s: float
    on_exhausted: str


def _survey_header(c: _Collector, data: dict[str, Any]) -> _Header:
    name = data.get("name")
    if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_\-]{0,63}$", name):
        c.add("survey", f"name must be lower-case letters, digits, - or _ (max 64), got {name!r}")
        name = "?"
    raw_locales = data.get("locales", list(LOCALES))
    if (
        not isinstance(raw_locales, list)
        or not raw_locales
        or not all(isinstance(x, str) and x in LOCALES for x in raw_locales)
    ):
        c.add("survey", f"locales must be a non-empty list drawn from {', '.join(LOCALES)}")
        raw_locales = list(LOCALES)
    locales = tuple(raw_locales)
    default_locale = data.get("default_locale", locales[0])
    if default_locale not in locales:
        c.add("survey", f"default_locale {default_locale!r} is not one of the survey's locales")
        default_locale = locales[0]
    title = _texts(c, "survey title", data.get("title", {}), locales) if "title" in data else {}
    max_attempts = _positive_int(c, "survey max_attempts", data.get("max_attempts"), 3)
    timeout_s = _timeout(c, "survey timeout_s", data.get("timeout_s"), 5.0)
    on_exhausted = data.get("on_exhausted", "end")
    if on_exhausted not in ("end", "skip"):
        c.add("survey", f"on_exhausted must be 'end' or 'skip', got {on_exhausted!r}")
    return _Header(
        str(name),
        locales,
        str(default_locale),
        title,
        max_attempts,
        timeout_s,
        str(on_exhausted),
    )


def _survey_prompts(
    c: _Collector, data: dict[str, Any], locales: tuple[str, ...]
) -> dict[str, Prompt | None]:
    """The survey's own prompts: ``[intro]`` (optional), ``[invalid]``, ``[no_input]``,
    ``[closing]``."""
    prompts: dict[str, Prompt | None] = {}
    for section in ("intro", "invalid", "no_input", "closing"):
        if section in data:
            prompts[section] = _prompt(c, f"[{section}]", data[section], locales)
        elif section != "intro":
            c.add("survey", f"[{section}] prompt is required")
    return prompts


def _survey_questions(
    c: _Collector, data: dict[str, Any], head: _Header
) -> tuple[list[Question], set[str], list[Any]]:
    """Every ``[[questions]]`` entry that could be built, the ids seen (duplicates are an
    error) and the ids in file order (for each question's default next)."""
    raw_questions = data.get("questions")
    questions: list[Question] = []
    if not isinstance(raw_questions, list) or not raw_questions:
        c.add("survey", "at least one [[questions]] entry is required")
        raw_questions = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_questions):
        q, raw_data = _question(c, i, raw, head.locales, head.max_attempts, head.timeout_s)
        qid = raw_data.get("id") if isinstance(raw_data, dict) else None
        if isinstance(qid, str):
            if qid in seen:
                c.add(f"question {qid!r}", "duplicate question id")
            seen.add(qid)
        if q is not None:
            questions.append(q)
    ids = [r.get("id") for r in raw_questions if isinstance(r, dict)]
    return questions, seen, ids


def _link_questions(
    c: _Collector, questions: list[Question], seen: set[str], ids: list[Any]
) -> list[Question]:
    """Branch targets must exist; a question without a default next goes to the following
    question in file order (the last one to ``end``)."""
    fixed: list[Question] = []
    for q in questions:
        where = f"question {q.id!r}"
        for answer, target in [*q.next.items(), ("default", q.default_next)]:
            if target and target != END and target not in seen:
                c.add(where, f"next for {answer!r} goes to unknown question {target!r}")
        if not q.default_next:
            pos = ids.index(q.id)
            default = ids[pos + 1] if pos + 1 < len(ids) else END
            q = dataclasses.replace(q, default_next=str(default))
        fixed.append(q)
    return fixed


def _check_flow(c: _Collector, questions: list[Question]) -> None:
    """The whole survey: no branching cycle, every question reachable from the first, each
    response field filled by one question at most."""
    edges = {q.id: sorted({*q.next.values(), q.default_next} - {END}) for q in questions}
    cycle = _find_cycle(edges)
    if cycle:
        c.add(f"question {cycle[0]!r}", f"branching makes a cycle: {' -> '.join(cycle)}")
    if questions:
        reachable: set[str] = set()
        todo = [questions[0].id]
        while todo:
            cur = todo.pop()
            if cur in reachable or cur not in edges:
                continue
            reachable.add(cur)
            todo.extend(edges[cur])
        for q in questions:
            if q.id not in reachable:
                c.add(f"question {q.id!r}", "is never asked (no branch leads to it)")
    for fld in Field:
        owners = [q.id for q in questions if q.field is fld]
        if len(owners) > 1:
            c.add(
                "survey", f"field {fld.value!r} is filled by several questions: {', '.join(owners)}"
            )


def load_file(path: str | Path) -> Survey:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SurveyDefinitionError(str(p), ["no such file"]) from None
    return parse_survey(text, source=str(p))


def builtin_names() -> list[str]:
    """Names of the surveys shipped as package data (``surveys/data/*.toml``)."""
    root = resources.files("surveys") / "data"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def builtin_source(name: str) -> str:
    if name not in builtin_names():
        raise KeyError(f"no built-in survey {name!r} (have: {', '.join(builtin_names())})")
    return (resources.files("surveys") / "data" / f"{name}.toml").read_text(encoding="utf-8")


def load_builtin(name: str) -> Survey:
    return parse_survey(builtin_source(name), source=f"surveys/data/{name}.toml")
