"""The record passed between engine, metrics, result files and fine-tuning data.

A ``Trajectory`` is what one agent did on one question: its steps and what they cost.
It round-trips through JSON (``--log_samples`` files); its transcript text and chat
messages are read and written by ``fireact_eval.transcript``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

__all__ = [  # the public API (docs/python-api.md)
    "Step",
    "Trajectory",
    "MARKS",
]


@dataclass
class Step:
    """One turn: what the model wrote (``text``), what it meant, and what came back.

    ``kind`` is ``act`` for a Thought/Action turn, ``reflection`` for a Reflexion step
    (its text in ``thought``; no action, no observation, not counted as a turn).  ``mark``
    says what the engine did with the action, when it was not a plain tool call: one of
    ``MARKS`` (the trajectory view shows it; the cost counters count it); ``fault``, on a
    ``perturbed`` step, which kind of tool fault it met (``catalog.NOISE_KINDS``)."""

    text: str
    thought: str | None = None
    action: str | None = None
    argument: str | None = None
    observation: str | None = None
    kind: str = "act"
    mark: str | None = None
    fault: str | None = None


# An action the engine could not run, a tool call that failed, an observation the noisy
# tool replaced.
INVALID_ACTION, TOOL_ERROR, PERTURBED = "invalid_action", "tool_error", "perturbed"
MARKS = (INVALID_ACTION, TOOL_ERROR, PERTURBED)


@dataclass
class Trajectory:
    """Steps plus the cost counters that the metrics report per sample.

    ``seconds`` is this trajectory's share of wall time: each turn's time is split
    evenly among the trajectories still running in it, so the shares add up to the run.
    ``context_exceeded``: the engine stopped it because its next prompt no longer fit the
    model's context (the backend would have cut the question off the front).
    ``seed``: the sampling seed of this try (``seeds.try_seed``), whose per-call seeds the
    backend was given; None where there was none to give (greedy decoding, or ``hf``, which
    samples from the one generator ``lm_eval --seed`` seeds).
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
    context_exceeded: bool = False
    seed: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Trajectory:
        """The sample's (first) trajectory; a sample of repeated tries holds the others
        under ``repeats``, which ``tries_from_json`` reads."""
        return cls._from_raw(json.loads(data))

    @classmethod
    def _from_raw(cls, raw: dict) -> Trajectory:
        known = {f.name for f in fields(cls)}
        steps = [Step(**s) for s in raw.get("steps", [])]
        return cls(**{k: v for k, v in raw.items() if k in known and k != "steps"}, steps=steps)


def tries_to_json(tries: list[Trajectory], identical: bool = False) -> str:
    """One sample's response: its first try as a trajectory (what every reader of a single
    trajectory sees), the other tries under ``repeats``; ``repeats_identical`` when greedy
    decoding made the tries copies of one rollout rather than samples."""
    first, *others = tries
    record = asdict(first)
    if others:
        record["repeats"] = [asdict(t) for t in others]
        record["repeats_identical"] = identical
    return json.dumps(record, ensure_ascii=False)


def tries_from_json(data: str) -> list[Trajectory]:
    """Every try of a sample: one for a plain run, ``repeats`` + 1 for a repeated one."""
    raw = json.loads(data)
    return [Trajectory._from_raw(raw), *(Trajectory._from_raw(t) for t in raw.get("repeats", []))]
