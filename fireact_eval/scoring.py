"""Per-sample metrics from one logged trajectory (an lm-eval ``process_results`` hook).

Plain Python: it reads the trajectory JSON the engine returned and never calls a model.
"""

from __future__ import annotations

from collections.abc import Sequence

from fireact_eval.answer_match import choice_letter, exact_match, f1, yes_no
from fireact_eval.outcomes import OUTCOMES, PREFIX, classify, outcome_metrics
from fireact_eval.trajectory import Trajectory

QUALITY_METRICS = ("exact_match", "acc")  # a task's headline score: the first it reports
COST_METRICS = (
    "turns", "tool_calls", "tool_errors", "perturbed_calls", "invalid_actions",
    "prompt_tokens", "gen_tokens", "seconds",
)
OUTCOME_METRICS = tuple(PREFIX + name for name in OUTCOMES)


def higher_is_better(metric: str) -> bool:
    """lm-eval's direction of each metric we report: quality and ``finished`` up, cost and
    every failure outcome down."""
    return metric not in COST_METRICS and metric not in OUTCOME_METRICS[1:]


def cost(traj: Trajectory) -> dict[str, float]:
    return {name: getattr(traj, name) for name in COST_METRICS} | {"finished": int(traj.finished)}


def scorer(*quality: str):
    """Declare what a ``process_results`` hook reports: its quality metrics (the headline
    first), then the outcome and cost metrics every scorer adds.  ``ReactTask`` builds its
    task's whole metric list from this, so no YAML repeats it."""

    def declare(fn):
        fn.metrics = (*quality, *OUTCOME_METRICS, *COST_METRICS, "finished")
        return fn

    return declare


def _scored(traj: Trajectory, quality: dict[str, float]) -> dict[str, float]:
    """Quality metrics (the first is the headline), the outcome and the cost of a sample."""
    correct = next(iter(quality.values())) == 1.0
    return {**quality, **outcome_metrics(classify(traj, correct)), **cost(traj)}


@scorer("exact_match", "f1")
def qa(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """Open-answer QA (HotpotQA, the demo): exact match and F1 on ``doc["answer"]``, plus cost."""
    traj = Trajectory.from_json(results[0])
    return _scored(traj, {"exact_match": exact_match(traj.answer, doc["answer"]),
                          "f1": f1(traj.answer, doc["answer"])})


@scorer("acc")
def yes_no_accuracy(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """StrategyQA: accuracy on the answer's leading yes/no."""
    traj = Trajectory.from_json(results[0])
    return _scored(traj, {"acc": float(yes_no(traj.answer) == doc["answer"])})


@scorer("acc")
def multiple_choice_accuracy(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """MMLU: accuracy on the chosen option, given as its letter or its text."""
    traj = Trajectory.from_json(results[0])
    return _scored(traj, {"acc": float(choice_letter(traj.answer, doc["choices"])
                                       == doc["answer"])})
