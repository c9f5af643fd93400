"""How a rollout ended: one outcome per sample, from a closed set every method and task can reach.

AgentBench and tau2-bench give every sample one ending; ours are decided from the
trajectory and whether its answer scored, in this order, so the classes partition the
samples (each gets exactly one; their shares add up to 1 in every run):

- ``correct``: the headline metric (exact match or accuracy) is 1;
- ``wrong_answer``: finished with an answer that did not score;
- ``empty_answer``: finished with nothing to score (``finish[]``, or only punctuation);
- ``context_limit``: cut off because the next prompt no longer fit the model's context;
- ``format_failure``: cut off at ``max_turns`` with more than half of its turns invalid
  (unreadable or unknown actions; a CoT/IO answer without ``finish[...]`` is one such turn);
- ``tool_failure``: cut off at ``max_turns`` with at least half of its tool calls failed;
- ``turn_limit``: cut off at ``max_turns`` otherwise (it searched and never answered).

Pure functions of a ``Trajectory``: runs written before outcomes were recorded get theirs
from the same rules (``run_files.LoggedSample.outcome``).
"""

from __future__ import annotations

from fireact_eval.answer_match import normalize_answer
from fireact_eval.trajectory import Trajectory

OUTCOMES = ("correct", "wrong_answer", "empty_answer", "context_limit", "format_failure",
            "tool_failure", "turn_limit")
OUTCOME_HELP = {
    "correct": "answered, and the answer scored",
    "wrong_answer": "answered, and the answer did not score",
    "empty_answer": "finished with an empty answer",
    "context_limit": "cut off: the prompt outgrew the model's context",
    "format_failure": "cut off with most turns invalid (unreadable or unknown actions)",
    "tool_failure": "cut off with at least half of its tool calls failed",
    "turn_limit": "cut off at max_turns while still searching",
}
PREFIX = "outcome_"  # the per-sample metric of each class: outcome_correct, ...


def classify(trajectory: Trajectory, correct: bool) -> str:
    """The one outcome of a trajectory whose answer did (``correct``) or did not score."""
    t = trajectory
    if correct:
        return "correct"
    if t.finished:
        return "wrong_answer" if normalize_answer(t.answer or "") else "empty_answer"
    if t.context_exceeded:
        return "context_limit"
    if t.invalid_actions * 2 > t.turns:
        return "format_failure"
    if t.tool_calls and t.tool_errors * 2 >= t.tool_calls:
        return "tool_failure"
    return "turn_limit"


def outcome_metrics(outcome: str) -> dict[str, int]:
    """The per-sample metrics of one outcome: ``outcome_<name>`` 1 for it, 0 for the rest,
    so lm-eval's mean of each is that class's share of the run."""
    return {PREFIX + name: int(name == outcome) for name in OUTCOMES}


def from_metrics(scores: dict[str, float]) -> str | None:
    """The outcome a sample's recorded ``outcome_*`` metrics name, if it has them."""
    named = [name for name in OUTCOMES if scores.get(PREFIX + name) == 1]
    return named[0] if len(named) == 1 else None
