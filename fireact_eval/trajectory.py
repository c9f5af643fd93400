"""The record passed between engine, metrics, result files and fine-tuning data.

A ``Trajectory`` is what one agent did on one question: its steps and what they cost.
It round-trips through JSON (``--log_samples`` files) and through the ReAct transcript
text of FireAct's fine-tuning files (``from_text`` / ``to_text``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields

from fireact_eval.actions import parse_turn

_OBSERVATION = re.compile(r"^[ \t]*observation(?:[ \t]*\d+)?[ \t]*:[ \t]*", re.I | re.M)
_THOUGHT = re.compile(r"^[ \t]*thought(?:[ \t]*\d+)?[ \t]*:", re.I | re.M)
REFLECTION = "Reflection:"  # the label of a Reflexion step, in transcripts and prompts
REFLECTION_REQUEST = (  # chat backends: the user message that asks for one
    "You have not answered yet. In one sentence starting with 'Reflection:', say what went "
    "wrong so far and what to try next."
)
# A reflection follows an observation on a line of its own (observations are one line).
_REFLECTION = re.compile(r"\n[ \t]*reflection[ \t]*:[ \t]*", re.I)


@dataclass
class Step:
    """One turn: what the model wrote (``text``), what it meant, and what came back.

    ``kind`` is ``act`` for a Thought/Action turn, ``reflection`` for a Reflexion step
    (its text in ``thought``; no action, no observation, not counted as a turn)."""

    text: str
    thought: str | None = None
    action: str | None = None
    argument: str | None = None
    observation: str | None = None
    kind: str = "act"

    @classmethod
    def from_generation(cls, generation: str) -> Step:
        turn = parse_turn(generation)
        return cls(
            text=turn.text,
            thought=turn.thought,
            action=turn.action.name if turn.action else None,
            argument=turn.action.argument if turn.action else None,
        )


@dataclass
class Trajectory:
    """Steps plus the cost counters that the metrics report per sample.

    ``seconds`` is this trajectory's share of wall time: each turn's time is split
    evenly among the trajectories still running in it, so the shares add up to the run.
    """

    steps: list[Step] = field(default_factory=list)
    answer: str | None = None
    finished: bool = False
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    perturbed_calls: int = 0
    invalid_actions: int = 0
    prompt_tokens: int = 0
    gen_tokens: int = 0
    seconds: float = 0.0

    @classmethod
    def from_text(cls, text: str) -> Trajectory:
        """Parse a whole ``Thought/Action/Observation`` transcript (``Reflection:`` lines become
        reflection steps); text before the first ``Thought:`` (an instruction template, the
        question) is ignored."""
        first = _THOUGHT.search(text)
        if first is None:
            return cls()
        traj = cls()
        # Each chunk is "Thought...Action..." optionally followed by "Observation: ...".
        for chunk in _THOUGHT.split(text[first.start() :])[1:]:
            turn_text, *obs = _OBSERVATION.split("Thought:" + chunk, maxsplit=1)
            step = Step.from_generation(turn_text)
            observation, *reflection = _REFLECTION.split(obs[0], maxsplit=1) if obs else [None]
            step.observation = observation.strip() if observation is not None else None
            traj.steps.append(step)
            if step.action == "finish":
                traj.answer, traj.finished = step.argument, True
                break
            if reflection:  # Reflexion: a "Reflection:" line after an observation
                line = reflection[0].strip()
                traj.steps.append(Step(f"{REFLECTION} {line}", line, kind="reflection"))
        traj.turns = sum(s.kind == "act" for s in traj.steps)
        return traj

    def to_text(self) -> str:
        """The transcript as FireAct's fine-tuning data writes it."""
        parts = []
        for step in self.steps:
            parts.append(step.text)
            if step.observation is not None:
                parts.append(f"Observation: {step.observation}")
        return "\n".join(parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Trajectory:
        raw = json.loads(data)
        known = {f.name for f in fields(cls)}
        steps = [Step(**s) for s in raw.get("steps", [])]
        return cls(**{k: v for k, v in raw.items() if k in known and k != "steps"}, steps=steps)
