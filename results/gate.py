"""The regression gate: is a candidate checkpoint worse than its baseline beyond noise?

Both runs are scored on the same questions, so the test is paired, on the questions both
answered (matched by lm-eval's doc hash).  When every per-question score is 0/1 the decision
is McNemar's exact test on the discordant questions (a question both runs get right or both
get wrong is no evidence); otherwise (a cost metric, or the per-question means of a run with
repeats) it is the paired bootstrap interval of the mean difference.  Either way the
verdict carries that interval.  A task regresses when the candidate is significantly worse
at ``level`` and the drop also exceeds ``tolerance``.  Without per-sample files (no
``--log_samples``) it falls back to a normal interval from the two runs' own standard
errors, unpaired, which is wider.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd
from scipy import stats as scipy_stats

from fireact_eval.errors import FireactError
from fireact_eval.results.frame import ENVIRONMENT, load_runs, sample_scores
from fireact_eval.results.names import GATE_MIN_OVERLAP, GATE_TOLERANCE
from fireact_eval.stats import LEVEL, mcnemar_exact, paired_bootstrap

MCNEMAR, BOOTSTRAP, UNPAIRED = "McNemar exact", "paired bootstrap", "unpaired normal"


@dataclass(frozen=True)
class Verdict:
    task: str
    metric: str
    baseline: float
    candidate: float
    delta: float  # candidate - baseline, signed so that positive is better
    low: float  # the interval of delta at the gate's level
    high: float
    test: str  # what decided: MCNEMAR (0/1 scores), BOOTSTRAP, or UNPAIRED (no samples)
    p_value: float  # McNemar's two-sided p (NaN for the other tests)
    paired: int  # questions compared pairwise (0: unpaired fallback)
    regressed: bool
    baseline_n: int = 0  # questions the baseline answered (with sample files)

    def line(self) -> str:
        how = (f"paired n={self.paired} of {self.baseline_n}" if self.paired else "unpaired")
        p = "" if math.isnan(self.p_value) else f" p={self.p_value:.3g}"
        verdict = "REGRESSED" if self.regressed else "ok"
        return (f"{self.task:<32} {self.metric:<12} {self.baseline:8.4f} {self.candidate:8.4f} "
                f"{self.delta:+8.4f} [{self.low:+.4f}, {self.high:+.4f}]{p} ({self.test}, "
                f"{how})  {verdict}")


def compare(baseline: pd.Series, candidate: pd.Series, metric: str, level: float = LEVEL,
            tolerance: float = 0.0, min_overlap: float = 1.0) -> Verdict:
    # lm-eval's own direction for the metric, as the baseline's file records it
    sign = 1.0 if baseline["result"].higher_is_better.get(metric, True) else -1.0
    base = sample_scores(baseline, metric)
    cand = sample_scores(candidate, metric)
    shared = sorted(base.keys() & cand.keys())
    if base and cand and len(shared) < min_overlap * len(base):
        raise FireactError(
            f"{baseline['task']}: the candidate answered {len(shared)} of the baseline's "
            f"{len(base)} questions; evaluate it on the same questions (same --limit and "
            f"data) or lower --min-overlap (now {min_overlap:g})")
    p_value = float("nan")
    if len(shared) >= 2:
        n = len(shared)
        diffs = [sign * (cand[k] - base[k]) for k in shared]
        delta = sum(diffs) / n
        low, high = paired_bootstrap(diffs, level)
        if all(base[k] in (0.0, 1.0) and cand[k] in (0.0, 1.0) for k in shared):
            test = MCNEMAR
            p_value = mcnemar_exact(sum(d < 0 for d in diffs), sum(d > 0 for d in diffs))
            worse = delta < 0 and p_value < 1 - level
        else:
            test, worse = BOOTSTRAP, high < 0
    else:  # no sample files: the runs' own standard errors, unpaired
        n, test = 0, UNPAIRED
        delta = sign * (candidate[metric] - baseline[metric])
        se = math.hypot(baseline.get(f"{metric}_stderr") or 0.0,
                        candidate.get(f"{metric}_stderr") or 0.0)
        half = float(scipy_stats.norm.ppf((1 + level) / 2)) * se
        low, high = delta - half, delta + half
        worse = high < 0
    return Verdict(baseline["task"], metric, float(baseline[metric]), float(candidate[metric]),
                   delta, low, high, test, p_value, n, worse and delta < -tolerance, len(base))


def one_run(runs: pd.DataFrame, task: str, side: str) -> pd.Series:
    rows = runs[runs["task"] == task]
    if len(rows) > 1:
        raise FireactError(f"{task}: the {side} holds {len(rows)} runs ("
                           + "; ".join(f"{r.model}: {r.results_file}" for r in rows.itertuples())
                           + f"); point --{side} at one of them")
    return rows.iloc[0]


def shared_tasks(base: pd.DataFrame, cand: pd.DataFrame) -> list[str]:
    """The tasks both sides ran; none is an error."""
    shared = sorted(set(base["task"]) & set(cand["task"]))
    if not shared:
        raise FireactError(f"no task in common: baseline has {sorted(set(base['task']))}, "
                           f"candidate has {sorted(set(cand['task']))}")
    return shared


def environment_differences(baseline: pd.Series, candidate: pd.Series) -> list[str]:
    """How two runs of one task differ in their environment (search, noise, turn limit,
    questions): a difference between them would be the environment's, not the agent's."""
    return [f"{k}: baseline {baseline[k]!s}, candidate {candidate[k]!s}" for k in ENVIRONMENT
            if str(baseline[k]) != str(candidate[k])]


def _check_thresholds(level: float, tolerance: float, min_overlap: float) -> None:
    if not 0.5 <= level < 1:
        raise FireactError(f"--level must be a confidence level in [0.5, 1), got {level}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise FireactError(f"--tolerance must be 0 or more, got {tolerance}")
    if not 0 < min_overlap <= 1:
        raise FireactError(f"--min-overlap must be a share in (0, 1], got {min_overlap}")


TOLERANCE, MIN_OVERLAP = GATE_TOLERANCE, GATE_MIN_OVERLAP


def gate(baseline: str, candidate: str, metrics: list[str] | None = None, level: float = LEVEL,
         tolerance: float = TOLERANCE, min_overlap: float = MIN_OVERLAP,
         allow_different_settings: bool = False) -> list[Verdict]:
    """A verdict per (task, metric) the two runs share; default metric: each task's score.
    With sample files the candidate must have answered at least ``min_overlap`` of the
    baseline's questions (default: all of them), in the same environment (``ENVIRONMENT``)
    unless ``allow_different_settings``."""
    _check_thresholds(level, tolerance, min_overlap)
    base, cand = load_runs([baseline]), load_runs([candidate])
    verdicts = []
    for task in shared_tasks(base, cand):
        b, c = one_run(base, task, "baseline"), one_run(cand, task, "candidate")
        if (differ := environment_differences(b, c)) and not allow_different_settings:
            raise FireactError(f"{task}: the runs differ in their environment ("
                               + "; ".join(differ) + "); compare runs of the same settings, "
                               "or pass --allow-different-settings")
        for metric in metrics or [b["metric"]]:
            if metric not in b or metric not in c or pd.isna(b[metric]) or pd.isna(c[metric]):
                raise FireactError(f"{task}: metric {metric!r} missing from one of the runs")
            verdicts.append(compare(b, c, metric, level, tolerance, min_overlap))
    return verdicts


def as_records(verdicts: list[Verdict]) -> list[dict]:
    return [asdict(v) for v in verdicts]
