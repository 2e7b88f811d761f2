"""The survey state machine: pure, no I/O, shared by the FastAGI and the Twilio paths.

State is a small immutable value (current question, attempt number) so the Twilio path can
carry it in its callback URLs and the AGI path in a local variable::

    step = begin(survey)                       # -> Step(state, action=Ask(q_csat))
    step = advance(survey, step.state, Digits("4"))
    step.answer   # Answer(question_id="q_csat", value="4", ...) -> store it now
    step.action   # Ask(q_nps) | Finish(completed=True)

Rules:
- a valid answer is recorded and the branch for it is followed (``END`` finishes, completed);
- an invalid key or silence re-asks the same question with a notice, up to the question's
  ``max_attempts`` tries in all; after that the survey either ends (``on_exhausted="end"``,
  the response stays partial) or skips to the question's default next (``"skip"``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from surveys.definitions import END, Question, Survey

__all__ = [
    "Answer",
    "Ask",
    "Digits",
    "Finish",
    "Input",
    "NoInput",
    "Notice",
    "State",
    "Step",
    "advance",
    "begin",
    "resume",
]


class Notice(enum.StrEnum):
    """Why a question is asked again."""

    INVALID = "invalid"
    NO_INPUT = "no_input"


@dataclass(frozen=True)
class Digits:
    """Keys the member typed (may be an invalid answer)."""

    value: str


@dataclass(frozen=True)
class NoInput:
    """The member typed nothing before the timeout."""


Input = Digits | NoInput


@dataclass(frozen=True)
class State:
    question_id: str | None
    """The question being asked; None once finished."""
    attempt: int = 1
    """1 for the first time a question is asked, 2 for the first re-prompt, ..."""


@dataclass(frozen=True)
class Ask:
    question: Question
    attempt: int
    notice: Notice | None = None
    """Play this notice (invalid / no input) before the question."""


@dataclass(frozen=True)
class Finish:
    completed: bool
    """True when the survey ran to its end; False when it gave up after repeated bad input."""


Action = Ask | Finish


@dataclass(frozen=True)
class Answer:
    question_id: str
    value: str
    question: Question


@dataclass(frozen=True)
class Step:
    state: State
    action: Action
    answer: Answer | None = None


def _ask(survey: Survey, qid: str, attempt: int = 1, notice: Notice | None = None) -> Step:
    if qid == END:
        return Step(State(None), Finish(completed=True))
    q = survey.question(qid)
    return Step(State(qid, attempt), Ask(q, attempt, notice))


def begin(survey: Survey) -> Step:
    return _ask(survey, survey.first.id)


def resume(survey: Survey, state: State) -> Step:
    """The action for a state restored from elsewhere (e.g. a Twilio callback URL)."""
    if state.question_id is None:
        return Step(state, Finish(completed=True))
    return _ask(survey, state.question_id, state.attempt)


def advance(survey: Survey, state: State, event: Input) -> Step:
    """Apply one input to ``state``. Raises ValueError for a finished or unknown state."""
    if state.question_id is None:
        raise ValueError("the survey is finished")
    q = survey.question(state.question_id)
    if isinstance(event, Digits) and event.value in q.keys:
        answer = Answer(q.id, event.value, q)
        nxt = _ask(survey, q.target(event.value))
        return Step(nxt.state, nxt.action, answer)
    notice = Notice.INVALID if isinstance(event, Digits) and event.value else Notice.NO_INPUT
    if state.attempt < q.max_attempts:
        return _ask(survey, q.id, state.attempt + 1, notice)
    if survey.on_exhausted == "skip":
        return _ask(survey, q.default_next)
    return Step(State(None), Finish(completed=False))
