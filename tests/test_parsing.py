import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fireact_eval.trajectory import Step, Trajectory
from fireact_eval.transcript import (
    Action,
    parse_action,
    parse_step,
    parse_transcript,
    parse_turn,
    to_text,
)

from conftest import FIREACT_DATA


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("search[Paris]", Action("search", "Paris")),
        ("Action: Search [ Paris ]", Action("search", "Paris")),
        ("action 3:FINISH[yes]", Action("finish", "yes")),
        ("search[Paris", Action("search", "Paris")),  # missing ]
        ("finish[Paris] because it is the capital", Action("finish", "Paris")),  # trailing text
        ("finish[the [1] answer]", Action("finish", "the [1] answer")),  # brackets inside
        ("finish[]", Action("finish", "")),
        ("search[a]\nObservation: made up", Action("search", "a")),  # only the first line
        ("I will search for Paris", None),
        ("", None),
        ("[Paris]", None),
    ],
)
def test_parse_action(text, expected):
    assert parse_action(text) == expected


def test_parse_turn_cuts_invented_observations():
    turn = parse_turn("Thought: look it up\nAction: search[x]\nObservation: invented\nThought: y")
    assert turn.thought == "look it up"
    assert turn.action == Action("search", "x")
    assert turn.text == "Thought: look it up\nAction: search[x]"


def test_parse_turn_without_action_label():
    turn = parse_turn("thought 2: I know it\nfinish[Pellow]")
    assert turn.thought == "I know it"
    assert turn.action == Action("finish", "Pellow")


def test_parse_turn_without_any_action():
    turn = parse_turn("Thought: hmm, let me think about it")
    assert turn.action is None
    assert turn.thought == "hmm, let me think about it"


TRANSCRIPT = """Below is an instruction. Question: Where was the founder born?
Thought: I need the founder first.
Action: search[Velmora Observatory]
Observation: It was founded by Ilse Brandauer.
Thought 2: Now her birthplace.
Action 2: Search[Ilse Brandauer
Observation 2: She was born in Kettwick.
Thought: She was born in Kettwick.
Action: finish[Kettwick]
Observation: Episode finished, reward = True
"""


def test_trajectory_from_text():
    traj = parse_transcript(TRANSCRIPT)
    assert [s.action for s in traj.steps] == ["search", "search", "finish"]
    assert [s.argument for s in traj.steps] == ["Velmora Observatory", "Ilse Brandauer", "Kettwick"]
    assert traj.steps[0].thought == "I need the founder first."
    assert traj.steps[1].observation == "She was born in Kettwick."
    assert traj.answer == "Kettwick" and traj.finished


def test_trajectory_without_finish_has_no_answer():
    traj = parse_transcript("Thought: a\nAction: search[b]\nObservation: c\n")
    assert traj.answer is None and not traj.finished and len(traj.steps) == 1
    assert parse_transcript("no thoughts at all").steps == []


def test_trajectory_round_trips():
    traj = parse_transcript(TRANSCRIPT)
    assert parse_transcript(to_text(traj.steps)).steps == traj.steps
    assert Trajectory.from_json(traj.to_json()) == traj
    assert isinstance(json.loads(traj.to_json())["steps"][0], dict)


def test_step_from_generation():
    step = parse_step(" Thought: x\nAction: finish[y] ")
    assert (step.thought, step.action, step.argument) == ("x", "finish", "y")


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_parses_fireact_released_trajectories():
    rows = json.loads((FIREACT_DATA / "finetune/alpaca_format/hotpotqa.json").read_text())
    trajs = [parse_transcript(r["output"]) for r in rows]
    assert len(trajs) == 500
    assert sum(t.finished for t in trajs) == 500
    assert sum(len(t.steps) for t in trajs) > 1000
    assert all(s.action in ("search", "finish") for t in trajs for s in t.steps)


def test_reflection_lines_round_trip_as_reflection_steps():
    """What `fireact-eval convert` writes for a Reflexion rollout reads back the same."""
    steps = [
        Step("Thought: Find X.\nAction: search[X]", "Find X.", "search", "X", "Nothing."),
        Step("Reflection: I should search Y.", "I should search Y.", kind="reflection"),
        Step("Thought: Try Y.\nAction: search[Y]", "Try Y.", "search", "Y", "Y is Z."),
        Step("Thought: Z.\nAction: finish[Z]", "Z.", "finish", "Z"),
    ]
    back = parse_transcript(to_text(Trajectory(steps=steps).steps))
    assert back.steps == steps and back.turns == 3 and back.answer == "Z"


@pytest.mark.parametrize("brk", ["\r", "\r\n", "\u2028", "\u2029", "\x85", "\v", "\f"])
def test_any_line_break_ends_the_action_line(brk):
    turn = parse_turn(f"Thought: look{brk}Action: search[Paris]{brk}Observation: invented")
    assert turn.action == Action("search", "Paris") and turn.thought == "look"
    assert "invented" not in turn.text
    assert parse_action(f"finish[Oslo]{brk}and more") == Action("finish", "Oslo")


# junk the demo agent's own sampled tries had after a correct call (round 1's checkpoint)
SAMPLED_JUNK = [
    "Thought: I need to search Halden Cross.\nAction: search[Halden Cross] (Thought) "
    "search[Halden Cross]",
    "Thought: I need to search Alda Korvin.\nAction: search[Alda Korvin] (Alda Korvin)",
    "Thought: I need to search Alda Korvin.\nAction: search[Alda Korvin] search[Alda Korvin]",
    "Thought: I need to search Ilse.\nAction: search[Ilse] search[Ilse][Ilse][Thought: x.]",
    "Thought: The answer is 1958.\nAction: finish[1958] (1958)",
    "Thought: So.\nAction: finish[Paris] because it is the capital",
    "I will search for Paris",
]


@pytest.mark.parametrize("text", SAMPLED_JUNK)
def test_an_action_line_with_more_than_one_call_is_not_one_call(text):
    from fireact_eval.transcript import one_call

    assert not one_call(parse_step(text))


@pytest.mark.parametrize("text", [
    "Thought: Find X.\nAction: search[X]", "search[X]", "Action 2: Search [ X ] ",
    "Thought: a\nb\nAction: finish[yes]"])
def test_one_call_is_what_the_grammar_writes(text):
    from fireact_eval.transcript import one_call

    assert one_call(parse_step(text))
    assert one_call(Step("Reflection: I was wrong.", "I was wrong.", kind="reflection"))


@given(st.text(alphabet=st.characters(blacklist_characters="[]\n\r\x0b\x0c\x1c\x1d\x1e"
                                      "\x85\u2028\u2029"), max_size=40),
       st.sampled_from(["search", "finish", "lookup"]))
def test_every_call_the_grammar_writes_is_one_call(argument, tool):
    """Any bracket-free argument, rendered as the grammar writes a turn, passes; the same
    with a second call after it does not."""
    from fireact_eval.transcript import one_call

    step = parse_step(f"Thought: t.\nAction: {tool}[{argument}]")
    assert one_call(step)
    assert not one_call(parse_step(f"Thought: t.\nAction: {tool}[{argument}] {tool}[x]"))
