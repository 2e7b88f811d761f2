"""The pure survey state machine."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys.definitions import load_builtin
from surveys.engine import Ask, Digits, Finish, NoInput, Notice, State, advance, begin, resume

SURVEY = load_builtin("satisfaction")


def qid(step: object) -> str:
    assert isinstance(step, Ask)
    return step.question.id


def test_happy_path_records_each_answer() -> None:
    step = begin(SURVEY)
    assert qid(step.action) == "q_csat" and step.answer is None
    answers = []
    for digits in ("4", "10", "2"):
        step = advance(SURVEY, step.state, Digits(digits))
        assert step.answer is not None
        answers.append((step.answer.question_id, step.answer.value))
    assert answers == [("q_csat", "4"), ("q_nps", "10"), ("q_callback", "2")]
    assert step.action == Finish(completed=True) and step.state == State(None)


def test_invalid_then_no_input_then_exhausted_ends_partial() -> None:
    step = begin(SURVEY)
    step = advance(SURVEY, step.state, Digits("9"))
    assert isinstance(step.action, Ask) and step.action.notice is Notice.INVALID
    assert step.state == State("q_csat", 2) and step.answer is None
    step = advance(SURVEY, step.state, NoInput())
    assert isinstance(step.action, Ask) and step.action.notice is Notice.NO_INPUT
    step = advance(SURVEY, step.state, Digits(""))  # "#" alone = nothing typed
    assert step.action == Finish(completed=False)


def test_skip_policy_moves_on() -> None:
    skip = dataclasses.replace(SURVEY, on_exhausted="skip")
    state = State("q_csat", 3)
    step = advance(skip, state, NoInput())
    assert qid(step.action) == "q_nps" and step.answer is None


def test_finished_state_rejects_input_and_resume() -> None:
    with pytest.raises(ValueError, match="finished"):
        advance(SURVEY, State(None), Digits("1"))
    assert resume(SURVEY, State("q_nps", 2)).action == Ask(SURVEY.question("q_nps"), 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="0123456789*#", max_size=3)), max_size=40))
def test_any_input_sequence_terminates_and_only_stores_valid_answers(
    inputs: list[str | None],
) -> None:
    step = begin(SURVEY)
    fed = 0
    for item in inputs:
        if isinstance(step.action, Finish):
            break
        step = advance(SURVEY, step.state, NoInput() if item is None else Digits(item))
        fed += 1
        if step.answer is not None:
            assert step.answer.value in step.answer.question.keys
    # 3 questions x 3 attempts bound the dialog
    assert fed <= 9
