"""The regression gate: is a candidate checkpoint worse than its baseline beyond noise?

Both runs are scored on the same questions, so the test is paired: for each task, the mean
of the per-question differences (candidate - baseline) and its standard error.  A task
regresses when the mean drop exceeds both ``z`` standard errors and the ``tolerance``.
Without per-sample files (no ``--log_samples``) it falls back to the two runs' own standard
errors, unpaired, which is wider.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from fireact_eval.errors import FireactError
from fireact_eval.results.frame import ENVIRONMENT, load_runs, sample_scores


@dataclass(frozen=True)
class Verdict:
    task: str
    metric: str
    baseline: float
    candidate: float
    delta: float  # candidate - baseline, signed so that positive is better
    noise: float  # z standard errors of the difference
    paired: int  # questions compared pairwise (0: unpaired fallback)
    regressed: bool
    baseline_n: int = 0  # questions the baseline answered (with sample files)

    def line(self) -> str:
        how = (f"paired n={self.paired} of {self.baseline_n}" if self.paired else "unpaired")
        verdict = "REGRESSED" if self.regressed else "ok"
        return (f"{self.task:<32} {self.metric:<12} {self.baseline:8.4f} {self.candidate:8.4f} "
                f"{self.delta:+8.4f} ±{self.noise:.4f} ({how})  {verdict}")


def compare(baseline: pd.Series, candidate: pd.Series, metric: str, z: float,
            tolerance: float, min_overlap: float = 1.0) -> Verdict:
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
    diffs = [cand[k] - base[k] for k in shared]
    n = len(diffs)
    if n >= 2:
        mean = sum(diffs) / n
        se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n)
    else:
        n, mean = 0, candidate[metric] - baseline[metric]
        se = math.hypot(baseline.get(f"{metric}_stderr") or 0.0,
                        candidate.get(f"{metric}_stderr") or 0.0)
    delta, noise = sign * mean, z * se
    return Verdict(baseline["task"], metric, float(baseline[metric]), float(candidate[metric]),
                   delta, noise, n, delta < -max(noise, tolerance), len(base))


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


def _check_thresholds(z: float, tolerance: float, min_overlap: float) -> None:
    if not (math.isfinite(z) and z > 0):
        raise FireactError(f"--z must be a positive number of standard errors, got {z}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise FireactError(f"--tolerance must be 0 or more, got {tolerance}")
    if not 0 < min_overlap <= 1:
        raise FireactError(f"--min-overlap must be a share in (0, 1], got {min_overlap}")


Z, TOLERANCE, MIN_OVERLAP = 1.96, 0.0, 1.0  # the defaults, here and in `fireact-eval gate`


def gate(baseline: str, candidate: str, metrics: list[str] | None = None, z: float = Z,
         tolerance: float = TOLERANCE, min_overlap: float = MIN_OVERLAP,
         allow_different_settings: bool = False) -> list[Verdict]:
    """A verdict per (task, metric) the two runs share; default metric: each task's score.
    With sample files the candidate must have answered at least ``min_overlap`` of the
    baseline's questions (default: all of them), in the same environment (``ENVIRONMENT``)
    unless ``allow_different_settings``."""
    _check_thresholds(z, tolerance, min_overlap)
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
            verdicts.append(compare(b, c, metric, z, tolerance, min_overlap))
    return verdicts


def as_records(verdicts: list[Verdict]) -> list[dict]:
    return [asdict(v) for v in verdicts]
