"""The ReAct transcript grammar, in one place: how turns are parsed and rendered, and which
spans of a rendered transcript the agent wrote itself.

A transcript is a prompt, then steps: ``Thought: ...`` / ``Action: tool[argument]`` turns,
each followed by ``Observation: ...`` (none after ``finish``), and Reflexion's
``Reflection: ...`` lines.  Three layouts carry it: ``plain`` and ``alpaca`` text (the
prompt differs, see ``prompts``) and ``chat`` messages (turns as the assistant's, observations
as the user's).  The rollout engine renders with ``render_text`` / ``render_messages``;
``convert`` writes with them; replay indexing and the trainers read files back with
``parse_transcript`` / ``parse_messages``; and ``text_spans`` says which characters of a
plain transcript the model generated, so the trainer's loss falls on exactly those.

Parsing forgives what small models write: case, spaces and indentation before a label, a
step number (``Action 2:``), a missing closing ``]``, trailing text, any Unicode line break.
What it cannot read becomes an action of ``None``; the engine then answers with an
observation listing the valid actions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from fireact_eval.catalog import FINISH, SEARCH  # noqa: F401  (the grammar's action names)
from fireact_eval.trajectory import Step, Trajectory

# Where a turn's generation stops: before the observation it would invent, or a next
# question (the tasks' YAML ``until``; tests/test_grpo.py holds the two equal).
STOP_SEQUENCES = ("\nObservation", "\nQuestion:")

__all__ = [  # the public API (docs/python-api.md)
    "STOP_SEQUENCES",
    "FINISH",
    "SEARCH",
    "OBSERVATION",
    "INVALID_ACTION_PREFIX",
    "REFLECTION",
    "REFLECTION_REQUEST",
    "Action",
    "ParsedTurn",
    "parse_action",
    "parse_turn",
    "parse_step",
    "parse_transcript",
    "parse_messages",
    "reflection_step",
    "turn_text",
    "render_text",
    "render_messages",
    "text_spans",
    "to_text",
    "one_line",
    "unify_line_breaks",
]

OBSERVATION = "Observation:"
# How the observation after an invalid action begins, in every layout (the report and the
# outcome classes read it)
INVALID_ACTION_PREFIX = "Invalid action:"
REFLECTION = "Reflection:"  # the label of a Reflexion step, in transcripts and prompts
REFLECTION_REQUEST = (  # chat layout: the user message that asks for one
    "You have not answered yet. In one sentence starting with 'Reflection:', say what went "
    "wrong so far and what to try next."
)

_LINE_BREAKS = re.compile("\r\n?|[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_LABEL = re.compile(r"^[ \t]*(thought|action|observation)(?:[ \t]*\d+)?[ \t]*:[ \t]*",
                    re.I | re.M)
_THOUGHT = re.compile(r"^[ \t]*thought(?:[ \t]*\d+)?[ \t]*:", re.I | re.M)
_TURN = re.compile(r"^[ \t]*(?:thought|action)(?:[ \t]*\d+)?[ \t]*:", re.I | re.M)
_OBSERVATION = re.compile(r"^[ \t]*observation(?:[ \t]*\d+)?[ \t]*:[ \t]*", re.I | re.M)
# A reflection follows an observation on a line of its own (observations are one line).
_REFLECTION = re.compile(r"\n[ \t]*reflection[ \t]*:[ \t]*", re.I)
_CALL = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*\[(.*)$", re.S)


@dataclass(frozen=True)
class Action:
    """A tool call: ``name`` lower-cased, ``argument`` stripped."""

    name: str
    argument: str


@dataclass(frozen=True)
class ParsedTurn:
    """One generated turn: the thought, the action (None if unreadable) and the text kept.

    ``text`` is the generation cut after the action line, so a model that runs on and
    invents its own observation does not put that invention into the next prompt.
    """

    thought: str | None
    action: Action | None
    text: str


def unify_line_breaks(text: str) -> str:
    """Every line break a model may emit (``\\r\\n``, ``\\r``, U+2028, ...) as ``\\n``, so an
    action line ends where the model ended it."""
    return _LINE_BREAKS.sub("\n", text)


def one_line(observation: str) -> str:
    """An observation as one line: a passage's line breaks would otherwise put lines such as
    ``Thought: ...`` into the transcript that the agent (and ``parse_transcript``) would
    take for its own."""
    return " ".join(line.strip() for line in unify_line_breaks(observation).split("\n")
                    if line.strip())


# ---------------------------------------------------------------- parsing one turn


def parse_action(text: str) -> Action | None:
    """``"Action 1: Search [Paris ]"`` -> ``Action("search", "Paris")``; None if not a call.

    Only the first line counts.  The argument runs to the last ``]`` on it (so brackets
    inside an answer survive) or to the end of the line when the ``]`` is missing.
    """
    line = _LABEL.sub("", unify_line_breaks(text).strip(), count=1).split("\n", 1)[0]
    match = _CALL.match(line)
    if match is None:
        return None
    name, rest = match.groups()
    argument = rest[: rest.rindex("]")] if "]" in rest else rest
    return Action(name.lower(), argument.strip())


def parse_turn(generation: str) -> ParsedTurn:
    """Split one generated turn into thought and action.

    Without an ``Action:`` label, a last line that looks like ``tool[...]`` is taken as
    the action: fine-tuned small models often drop the label.
    """
    text = unify_line_breaks(generation).strip()
    invented = next((m for m in _LABEL.finditer(text) if m.group(1).lower() == "observation"),
                    None)
    if invented is not None:  # where the "\nObservation" stop string would have cut it
        text = text[: invented.start()].strip()
    labels = {m.group(1).lower(): m for m in reversed(list(_LABEL.finditer(text)))}
    action_label = labels.get("action")
    thought_label = labels.get("thought")
    if action_label is not None:
        action_line_end = text.find("\n", action_label.end())
        action_text = text[action_label.end() : None if action_line_end < 0 else action_line_end]
        kept = text if action_line_end < 0 else text[:action_line_end]
        thought_end = action_label.start()
    else:
        last_line = text.rsplit("\n", 1)[-1]
        action_text = last_line if _CALL.match(last_line) else ""
        kept = text
        thought_end = len(text) - len(last_line) if action_text else len(text)
    thought_before_action = thought_label is not None and thought_label.end() <= thought_end
    thought_start = thought_label.end() if thought_before_action else 0
    thought = text[thought_start:thought_end].strip() or None
    return ParsedTurn(thought=thought, action=parse_action(action_text), text=kept.strip())


def one_call(step: Step) -> bool:
    """Whether a turn's action line is one ``tool[argument]`` and nothing after it.

    ``parse_action`` also reads ``search[X] (Thought) search[X]`` (the argument runs to the
    last ``]``), so an evaluation does not fail an agent on it; but a training set made of a
    small model's own sampled tries should not teach it: trained on such rows, the demo
    agent's second self-improvement round wrote them on every turn and lost half its exact
    match.  The parser's own reading decides: the line ends at the call's ``]`` and the
    argument holds no bracket (so an answer holding ``[`` or ``]`` does not pass).  A
    reflection is no action and passes.
    """
    if step.kind != "act":
        return True
    line = step.text.strip().rsplit("\n", 1)[-1]
    return (step.action is not None and line.endswith("]")
            and not {"[", "]"} & set(step.argument or ""))


def parse_step(generation: str) -> Step:
    """One generated Thought/Action turn as a step (no observation yet)."""
    turn = parse_turn(generation)
    return Step(
        text=turn.text,
        thought=turn.thought,
        action=turn.action.name if turn.action else None,
        argument=turn.action.argument if turn.action else None,
    )


def turn_text(thought: str | None, action: str, argument: str) -> str:
    """A turn as the grammar writes it: ``Thought: ...`` (when there is one), then
    ``Action: tool[argument]`` (what a turn read from another layout becomes)."""
    return (f"Thought: {thought}\n" if thought else "") + f"Action: {action}[{argument}]"


def reflection_step(generation: str) -> Step:
    """The first line of what the model wrote, without a repeated ``Reflection:`` label."""
    line = generation.strip().split("\n", 1)[0].strip()
    line = line[len(REFLECTION):].strip() if line.lower().startswith("reflection:") else line
    return Step(text=f"{REFLECTION} {line}", thought=line, kind="reflection")


# ---------------------------------------------------------------- parsing whole transcripts


def _finished(steps: list[Step]) -> Trajectory:
    traj = Trajectory(steps=steps, turns=sum(s.kind == "act" for s in steps))
    if steps and steps[-1].action == FINISH:
        traj.answer, traj.finished = steps[-1].argument, True
    return traj


def parse_transcript(text: str) -> Trajectory:
    """A whole plain ``Thought/Action/Observation`` transcript as steps.  Text before the
    first ``Thought:`` (or ``Action:``: an answer without reasoning) -- an instruction
    template, the question -- is not part of it, nor is
    anything after ``finish[...]`` (FireAct's files close with ``Observation: Episode
    finished, reward = True``, which no agent ever sees)."""
    first = _TURN.search(text)
    if first is None:
        return Trajectory()
    steps: list[Step] = []
    # Each chunk is "Thought...Action..." optionally followed by "Observation: ...".
    before, *chunks = _THOUGHT.split(text[first.start():])
    for chunk in ([before] if before.strip() else []) + ["Thought:" + c for c in chunks]:
        turn_text, *obs = _OBSERVATION.split(chunk, maxsplit=1)
        step = parse_step(turn_text)
        steps.append(step)
        if step.action == FINISH:
            break
        observation, *reflection = _REFLECTION.split(obs[0], maxsplit=1) if obs else [None]
        step.observation = observation.strip() if observation is not None else None
        if reflection:  # Reflexion: a "Reflection:" line after an observation
            line = reflection[0].strip()
            steps.append(Step(f"{REFLECTION} {line}", line, kind="reflection"))
    return _finished(steps)


def parse_messages(messages: Sequence[dict],
                   read_turn: Callable[[dict], Step] | None = None,
                   ) -> tuple[list[dict], Trajectory]:
    """A chat transcript (``render_messages``' layout, FireAct's chat files) as the messages
    before the agent's first turn (the prompt) and the steps; a ``REFLECTION_REQUEST``
    followed by an assistant message is a reflection step.  ``read_turn``: how one
    assistant message becomes a step (the text grammar by default; ``tool_calls`` reads
    its calls); a ``tool`` message's content is the observation as it stands, a user
    message's loses its ``Observation:`` label."""
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"),
                 len(messages))
    steps: list[Step] = []
    reflecting = False
    for message in messages[first:]:
        content = str(message.get("content") or "")
        if message.get("role") == "assistant":
            if reflecting:
                steps.append(reflection_step(content))
            else:
                steps.append(read_turn(message) if read_turn else parse_step(content))
                if steps[-1].action == FINISH:
                    break
            reflecting = False
        elif content == REFLECTION_REQUEST:
            reflecting = True
        elif steps and steps[-1].kind == "act" and steps[-1].observation is None:
            if message.get("role") != "tool":
                content = _OBSERVATION.sub("", content, count=1)
            steps[-1].observation = content.strip()
    return list(messages[:first]), _finished(steps)


# ---------------------------------------------------------------- rendering


def text_spans(prompt: str, steps: Sequence[Step]) -> Iterator[tuple[str, bool]]:
    """The plain transcript as consecutive spans ``(text, generated)``: ``generated`` marks
    what the model itself wrote when this trajectory ran (its turns; the ``Observation:``
    label it ended a turn with, where the stop string cut its generation; of a reflection,
    the words after the ``Reflection:`` label the prompt supplied).  Everything else
    (prompt, observations, separators) came from the harness.  ``render_text`` is their
    concatenation, so the spans a trainer learns are by construction the ones evaluation
    generates."""
    yield prompt, False
    for step in steps:
        if step.kind == "reflection":
            yield REFLECTION, False
            yield step.text[len(REFLECTION):], True
            yield "\n", False
            continue
        yield step.text, True
        if step.observation is None:
            yield "\n", False
        else:  # the model ends its turn by writing the label (the stop string cuts it there)
            yield f"\n{OBSERVATION}", True
            yield f" {step.observation}\n", False


def render_text(prompt: str, steps: Sequence[Step], reflect: bool = False) -> str:
    """Completion backends (``plain`` and ``alpaca``): the prompt, then each turn followed
    by its observation; with ``reflect``, the ``Reflection:`` label the model continues."""
    text = "".join(span for span, _ in text_spans(prompt, steps))
    return text + REFLECTION if reflect else text


def to_text(steps: Sequence[Step]) -> str:
    """The transcript alone, as FireAct's alpaca fine-tuning files hold it in ``output``."""
    return render_text("", steps).removesuffix("\n")


def render_messages(
    prompt: str | Sequence[dict], steps: Sequence[Step], reflect: bool = False
) -> list[dict[str, str]]:
    """Chat backends: the prompt as the user's message (or the given leading messages),
    turns as assistant messages and observations as user messages (the layout of FireAct's
    chat fine-tuning data); a reflection is asked for by a ``REFLECTION_REQUEST``."""
    messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str)
                else [dict(m) for m in prompt])
    for s in steps:
        if s.kind == "reflection":
            messages.append({"role": "user", "content": REFLECTION_REQUEST})
            messages.append({"role": "assistant", "content": s.text})
            continue
        messages.append({"role": "assistant", "content": s.text})
        if s.observation is not None:  # a finish turn has none
            messages.append({"role": "user", "content": f"{OBSERVATION} {s.observation}"})
    if reflect:
        messages.append({"role": "user", "content": REFLECTION_REQUEST})
    return messages
