"""Per-sample metrics from one logged trajectory (an lm-eval ``process_results`` hook).

Plain Python: it reads the trajectory JSON the engine returned and never calls a model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from fireact_eval.answer_match import choice_letter, exact_match, f1, normalize_answer, yes_no
from fireact_eval.catalog import FINISH
from fireact_eval.outcomes import OUTCOMES, PREFIX, classify, outcome_metrics
from fireact_eval.stats import pass_at_k, pass_hat_k
from fireact_eval.tools import NULL_OBSERVATION
from fireact_eval.trajectory import INVALID_ACTION, PERTURBED, Step, Trajectory, tries_from_json

__all__ = ["qa", "yes_no_accuracy", "multiple_choice_accuracy", "DATASET_SCORERS",
           "after_faults", "false_alarms", "trusted_fault", "fault_recovery", "recovery",
           "higher_is_better", "scorer", "tries_correct", "FAULT_METRICS", "RECOVERY_METRICS",
           "COST_METRICS", "QUALITY_METRICS"]

QUALITY_METRICS = ("exact_match", "acc")  # a task's headline score: the first it reports
COST_METRICS = (
    "turns", "tool_calls", "tool_errors", "perturbed_calls", "invalid_actions",
    "prompt_tokens", "gen_tokens", "seconds",
)
OUTCOME_METRICS = tuple(PREFIX + name for name in OUTCOMES)
# What an agent does after a search came back empty (``None``: noise=none, or nothing found):
# how many did, and after how many of them it searched again rather than answered or
# stopped (FireAct's robustness claim is about this behaviour, not only the score).
RECOVERY_METRICS = ("empty_results", "searches_after_empty", "repeats_after_empty")
# What an agent does after a faulted call (any kind; ``results table --shape faults`` splits
# them by kind): the same search again, another search, an answer; whether a question that
# met a fault still ended right; whether the answer came from the faulty observation; and
# false alarms, the same search again after a clean result (a clean tool answers the same).
FAULT_METRICS = ("retries_after_fault", "searches_after_fault", "answers_after_fault",
                 "fault_recovered", "trusted_fault", "false_alarms")
LOWER_IS_BETTER = ("empty_results", "answers_after_fault", "trusted_fault", "false_alarms")


def higher_is_better(metric: str) -> bool:
    """lm-eval's direction of each metric we report: quality, ``finished``, searching again
    and recovering up; cost, empty results, answering after a fault, trusting one, false
    alarms and every failure outcome down."""
    return (metric not in COST_METRICS and metric not in OUTCOME_METRICS[1:]
            and metric not in LOWER_IS_BETTER)


def cost(traj: Trajectory) -> dict[str, float]:
    return {name: getattr(traj, name) for name in COST_METRICS} | {"finished": int(traj.finished)}


def recovery(traj: Trajectory) -> dict[str, int]:
    """``empty_results``: tool calls whose result was ``None``; ``searches_after_empty``:
    those followed, in the next turn, by another tool call (not an answer, an invalid
    action or the end of the run); ``repeats_after_empty``: of those, the calls that ask
    the same again (same tool, same argument, case and spacing aside): a retry, where a
    search for something else may be a guess at what the empty result would have named.
    Reflections are not turns and are skipped."""
    acts = [s for s in traj.steps if s.kind == "act"]
    empty = [i for i, s in enumerate(acts) if s.observation == NULL_OBSERVATION
             and s.mark != INVALID_ACTION and s.action != FINISH]
    again = [i for i in empty if i + 1 < len(acts) and acts[i + 1].action != FINISH
             and acts[i + 1].mark != INVALID_ACTION and acts[i + 1].observation is not None]

    repeats = sum(1 for i in again if _call(acts[i + 1]) == _call(acts[i]))
    return {"empty_results": len(empty), "searches_after_empty": len(again),
            "repeats_after_empty": repeats}


def _call(step: Step) -> tuple[str, str]:
    return step.action or "", " ".join((step.argument or "").casefold().split())


def after_faults(traj: Trajectory) -> list[tuple[str, str]]:
    """(fault kind, what came next) for each faulted call: ``retry`` (the same search
    again), ``search`` (another one), ``answer``, or ``stop`` (an invalid action, the turn
    limit).  Reflections are not turns and are skipped."""
    acts = [s for s in traj.steps if s.kind == "act"]
    followed = []
    for i, step in enumerate(acts):
        if step.mark != PERTURBED:
            continue
        after = acts[i + 1] if i + 1 < len(acts) else None
        if after is None or after.mark == INVALID_ACTION:
            what = "stop"
        elif after.action == FINISH:
            what = "answer"
        else:
            what = "retry" if _call(after) == _call(step) else "search"
        followed.append((step.fault or "none", what))
    return followed


def false_alarms(traj: Trajectory) -> int:
    """Clean, non-empty results followed by the same search again: a clean tool answers it
    the same, so the agent took a right result for a fault."""
    acts = [s for s in traj.steps if s.kind == "act"]
    return sum(1 for step, after in zip(acts, acts[1:], strict=False)
               if step.mark is None and step.action != FINISH and step.observation
               and step.observation != NULL_OBSERVATION and after.mark != INVALID_ACTION
               and _call(after) == _call(step))


def trusted_fault(traj: Trajectory, correct: bool) -> bool:
    """A wrong answer taken from a faulty observation: it occurs in a faulted one and in no
    clean one (exact in the world, whose invented names occur once)."""
    if correct or not traj.answer or not normalize_answer(traj.answer):
        return False
    answer = normalize_answer(traj.answer)
    acts = [s for s in traj.steps if s.kind == "act" and s.observation]
    faulted = any(answer in normalize_answer(s.observation) for s in acts if s.mark == PERTURBED)
    return faulted and not any(answer in normalize_answer(s.observation) for s in acts
                               if s.mark is None)


def fault_recovery(traj: Trajectory, correct: bool) -> dict[str, int]:
    followed = [what for _, what in after_faults(traj)]
    return {"retries_after_fault": followed.count("retry"),
            "searches_after_fault": followed.count("search"),
            "answers_after_fault": followed.count("answer"),
            "fault_recovered": int(bool(followed) and correct),
            "trusted_fault": int(trusted_fault(traj, correct)),
            "false_alarms": false_alarms(traj)}


def scorer(*quality: str):
    """Declare what a ``process_results`` hook reports: its quality metrics (the headline
    first), then the outcome, cost and recovery metrics every scorer adds.  ``ReactTask``
    builds its task's whole metric list from this, so no YAML repeats it."""

    def declare(fn):
        fn.metrics = (*quality, *OUTCOME_METRICS, *COST_METRICS, "finished", *RECOVERY_METRICS,
                      *FAULT_METRICS)
        return fn

    return declare


def _scored(traj: Trajectory, quality: dict[str, float]) -> dict[str, float]:
    """Quality metrics (the first is the headline), the outcome, cost and recovery of one
    try."""
    correct = next(iter(quality.values())) == 1.0
    return {**quality, **outcome_metrics(classify(traj, correct)), **cost(traj),
            **recovery(traj), **fault_recovery(traj, correct)}


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
