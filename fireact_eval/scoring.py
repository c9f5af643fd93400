"""Per-sample metrics from one logged trajectory (an lm-eval ``process_results`` hook).

Plain Python: it reads the trajectory JSON the engine returned and never calls a model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from fireact_eval.answer_match import choice_letter, exact_match, f1, normalize_answer, yes_no
from fireact_eval.outcomes import OUTCOMES, PREFIX, classify, outcome_metrics
from fireact_eval.stats import pass_at_k, pass_hat_k
from fireact_eval.trajectory import Trajectory, tries_from_json

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
    """Quality metrics (the first is the headline), the outcome and the cost of one try."""
    correct = next(iter(quality.values())) == 1.0
    return {**quality, **outcome_metrics(classify(traj, correct)), **cost(traj)}


def _score_tries(response: str, quality: Callable[[Trajectory], dict[str, float]]
                 ) -> dict[str, float]:
    """A sample's metrics over its tries: each metric's mean over them (one try: its own
    values; outcome shares still add up to 1), and for repeated questions pass@k (a try
    was right), pass^k (every try was) and the majority answer's headline score."""
    tries = tries_from_json(response)
    scored = [_scored(t, quality(t)) for t in tries]
    metrics = {name: sum(s[name] for s in scored) / len(scored) for name in scored[0]}
    if len(tries) > 1:
        headline = next(iter(scored[0]))  # _scored puts the quality metrics first
        n, right = len(tries), sum(s[headline] == 1.0 for s in scored)
        answers = [None if t.answer is None else normalize_answer(t.answer) for t in tries]
        votes = Counter(a for a in answers if a is not None)
        majority = scored[answers.index(votes.most_common(1)[0][0])][headline] if votes else 0.0
        metrics |= {"pass_at_k": pass_at_k(n, right, n), "pass_hat_k": pass_hat_k(n, right, n),
                    "majority_" + headline: majority}
    return metrics


@scorer("exact_match", "f1")
def qa(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """Open-answer QA (HotpotQA, the demo): exact match and F1 on ``doc["answer"]``, plus cost."""
    return _score_tries(results[0], lambda t: {"exact_match": exact_match(t.answer, doc["answer"]),
                                               "f1": f1(t.answer, doc["answer"])})


@scorer("acc")
def yes_no_accuracy(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """StrategyQA: accuracy on the answer's leading yes/no."""
    return _score_tries(results[0], lambda t: {"acc": float(yes_no(t.answer) == doc["answer"])})


@scorer("acc")
def multiple_choice_accuracy(doc: dict, results: Sequence[str]) -> dict[str, float]:
    """MMLU: accuracy on the chosen option, given as its letter or its text."""
    return _score_tries(results[0], lambda t: {
        "acc": float(choice_letter(t.answer, doc["choices"]) == doc["answer"])})


# Which scorer each dataset's answers need: ReactTask's ``process_results`` unless a YAML
# names its own, and what ``convert`` scores each try of a repeated question with.
DATASET_SCORERS = {"hotpotqa": qa, "bamboogle": qa, "demo": qa, "world": qa,
                   "strategyqa": yes_no_accuracy, "mmlu": multiple_choice_accuracy}


def tries_correct(dataset: str, doc: dict, tries: Sequence[Trajectory]) -> list[bool] | None:
    """Whether each try was right by its dataset's headline metric; None for a dataset
    without a known scorer (a custom task's own ``process_results``)."""
    score = DATASET_SCORERS.get(dataset)
    if score is None:
        return None
    return [score(doc, [t.to_json()])[score.metrics[0]] == 1.0 for t in tries]


def repeat_metrics(headline: str) -> tuple[str, ...]:
    """What a task with repeats reports besides its scorer's metrics."""
    return ("pass_at_k", "pass_hat_k", "majority_" + headline)
