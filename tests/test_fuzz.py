"""Property-based fuzzing of the parser, the transcript round trip and the engine.

Each property runs twice: a few hundred cases by default, 10,000 in the slow run
(``pytest -m slow``), as a hostile model or search engine would feed them.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireact_eval.rollout import Episode, reflect_before, run_episodes
from fireact_eval.trajectory import Trajectory
from fireact_eval.transcript import (
    parse_action,
    parse_messages,
    parse_step,
    parse_transcript,
    parse_turn,
    reflection_step,
    render_messages,
    render_text,
    to_text,
)

FAST = 300
SLOW = int(os.environ.get("FIREACT_FUZZ_EXAMPLES", "10000"))  # .ci/run: a budgeted 3,000
PIECES = ["Thought:", "Action:", "Observation:", "Reflection:", "search[", "finish[", "Search [",
          "]", "[", "\n", "\r", "\r\n", "\u2028", " ", "\t", "1", "x", "Paris", ":", "Action 2:"]
# Text a hostile model might write: label fragments, brackets, every kind of line break.
model_text = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=30).map("".join)
# A single line that is no label: a thought, an argument.
plain_line = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                                            blacklist_characters="[]:"), max_size=30).map(
    lambda s: " ".join(s.split()) or "x")


def twice(prop, *strategies):
    """The property as a fast test and as a slow 10,000-case one."""

    def make(examples: int):
        @settings(max_examples=examples, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(st.tuples(*strategies))
        def test(args):
            prop(*args)

        return test

    return make(FAST), pytest.mark.slow(make(SLOW))


def _parser_never_raises(text):
    turn = parse_turn(text)
    assert "\nObservation" not in turn.text.replace("\r", "\n")
    if turn.action is not None:
        assert turn.action == parse_action(turn.action.name + "[" + turn.action.argument + "]")
    parse_transcript(text)


test_parser_never_raises, test_parser_never_raises_slow = twice(_parser_never_raises,
                                                                model_text)


def _engine_never_raises_and_keeps_its_books(generations, observations):
    answers = iter(generations * 20)
    replies = iter(observations * 20)
    episodes = [Episode("Q\n", {"search": lambda q: next(replies)}, max_turns=4,
                        reflect=reflect_before((3,))) for _ in range(3)]
    trajectories = run_episodes(episodes, lambda reqs: [next(answers) for _ in reqs],
                                progress=False)
    for traj in trajectories:
        acts = [s for s in traj.steps if s.kind == "act"]
        assert traj.turns == len(acts) <= 4
        assert traj.finished == (bool(acts) and acts[-1].action == "finish")
        assert traj.tool_calls + traj.invalid_actions + traj.finished == traj.turns
        assert all("\n" not in (s.observation or "") for s in acts)
        Trajectory.from_json(traj.to_json())


test_engine_never_raises, test_engine_never_raises_slow = twice(
    _engine_never_raises_and_keeps_its_books, st.lists(model_text, min_size=1, max_size=6),
    st.lists(model_text, min_size=1, max_size=6))


def _engine_transcripts_round_trip(turns, answer):
    """Whatever the search engine returns (labels, line breaks), the transcript the engine
    writes parses back to the same steps."""
    script = [f"Thought: {t}\nAction: search[{a}]" for t, a, _ in turns]
    script.append(f"Thought: done\nAction: finish[{answer}]")
    replies = iter([obs for _, _, obs in turns])
    generations = iter(script)
    [traj] = run_episodes([Episode("Q\n", {"search": lambda q: next(replies)},
                                   max_turns=len(script))],
                          lambda reqs: [next(generations) for _ in reqs], progress=False)
    again = parse_transcript(to_text(traj.steps))
    assert [(s.action, s.argument, s.observation) for s in again.steps] == [
        (s.action, s.argument, s.observation) for s in traj.steps]
    assert to_text(again.steps) == to_text(traj.steps) and again.answer == traj.answer


test_transcripts_round_trip, test_transcripts_round_trip_slow = twice(
    _engine_transcripts_round_trip,
    st.lists(st.tuples(plain_line, plain_line, model_text), min_size=1, max_size=5), plain_line)


def _steps(turns, finish):
    """Steps as the engine records them: parsed turns, one-line observations, reflections
    after an observation, optionally a closing ``finish``."""
    steps = []
    for thought, tool, argument, observation, reflection in turns:
        step = parse_step(f"Thought: {thought}\nAction: {tool}[{argument}]")
        step.observation = observation
        steps.append(step)
        if reflection is not None:
            steps.append(reflection_step(f" {reflection}"))
    if finish is not None:
        steps.append(parse_step(f"Thought: done\nAction: finish[{finish}]"))
    return steps


step_tuples = st.lists(st.tuples(plain_line, st.sampled_from(["search", "lookup", "Search"]),
                                 plain_line, plain_line, st.none() | plain_line), max_size=6)


def _render_parse_render_is_the_identity(prompt, turns, finish):
    """Every layout: what the engine renders parses back to the same steps, which render
    to the same text (or messages) again."""
    steps = _steps(turns, finish)
    text = render_text(f"Question: {prompt}\n", steps)
    parsed = parse_transcript(text)
    assert parsed.steps == steps
    assert render_text(f"Question: {prompt}\n", parsed.steps) == text
    assert parsed.finished == (finish is not None)
    messages = render_messages(prompt, steps)
    head, again = parse_messages(messages)
    assert again.steps == steps and render_messages(head, again.steps) == messages


test_render_parse_render, test_render_parse_render_slow = twice(
    _render_parse_render_is_the_identity, plain_line, step_tuples, st.none() | plain_line)
