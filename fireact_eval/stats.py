"""The statistics of a comparison, in one place, wired to scipy rather than written by hand
(imported where used: scipy.stats costs ~1 s, which a command's argument error should not pay).

Two runs of the same questions are paired data: a question one agent answers and the other
does not is the evidence, a question both answer is not.  So the paired view uses McNemar's
exact test on the discordant questions and a paired bootstrap of the per-question
differences; a single run's score gets the Wilson interval of a binomial proportion.
Questions run several times (repeats) are clusters: a question's repeats are not independent
draws, so their interval resamples questions, never single samples, and pass@k / pass^k are
the unbiased estimators over each question's n tries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [  # the public API (docs/python-api.md)
    "LEVEL",
    "wilson_interval",
    "mcnemar_exact",
    "paired_bootstrap",
    "PairedBinary",
    "paired_binary",
    "paired_scores",
    "pass_at_k",
    "pass_hat_k",
    "clustered_mean",
]

LEVEL = 0.95
RESAMPLES = 10_000


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n`` (good at small n and near 0 or 1,
    where the normal interval leaves [0, 1]); (nan, nan) for n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy import stats

    ci = stats.binomtest(int(successes), int(n)).proportion_ci(level, method="wilson")
    return float(ci.low), float(ci.high)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under "no difference" each of the ``only_a +
    only_b`` discordant questions is a fair coin; 1.0 when there are none."""
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(only_b, discordant, 0.5).pvalue)


def paired_bootstrap(differences: Sequence[float], level: float = LEVEL,
                     resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean per-question difference: questions are
    resampled with their pair intact.  Seeded, so a report is reproducible; a constant
    difference has the degenerate interval (d, d)."""
    values = np.asarray(differences, dtype=float)
    if values.size == 0:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    from scipy import stats

    result = stats.bootstrap((values,), np.mean, confidence_level=level, n_resamples=resamples,
                             method="percentile", batch=max(1, 2_000_000 // values.size),
                             rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class PairedBinary:
    """Two runs' scores on the questions they share: the mean difference (b - a) with its
    paired bootstrap interval, and for 0/1 scores the 2x2 table and McNemar's exact
    p-value (None and NaN for graded scores, such as a question's mean over tries)."""

    n: int
    both: int | None
    only_a: int | None
    only_b: int | None
    neither: int | None
    p_value: float
    difference: float
    low: float
    high: float


def paired_binary(a: Sequence[float], b: Sequence[float], level: float = LEVEL,
                  seed: int = 0) -> PairedBinary:
    if len(a) != len(b):
        raise ValueError(f"paired scores of unequal length: {len(a)} and {len(b)}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = int(np.sum((x == 1) & (y == 1)))
    only_a = int(np.sum((x == 1) & (y != 1)))
    only_b = int(np.sum((x != 1) & (y == 1)))
    low, high = paired_bootstrap(y - x, level, seed=seed)
    return PairedBinary(len(x), both, only_a, only_b, len(x) - both - only_a - only_b,
                        mcnemar_exact(only_a, only_b),
                        float(np.mean(y - x)) if len(x) else float("nan"), low, high)


def paired_scores(a: Sequence[float], b: Sequence[float], level: float = LEVEL,
                  seed: int = 0) -> PairedBinary:
    """``paired_binary`` for 0/1 scores; for graded ones (per-question means over repeated
    tries) only the mean difference and its paired bootstrap interval: McNemar's test
    needs each question to be right or wrong."""
    if all(v in (0.0, 1.0) for v in (*a, *b)):
        return paired_binary(a, b, level, seed)
    if len(a) != len(b):
        raise ValueError(f"paired scores of unequal length: {len(a)} and {len(b)}")
    differences = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    low, high = paired_bootstrap(differences, level, seed=seed)
    return PairedBinary(len(differences), None, None, None, None, float("nan"),
                        float(differences.mean()) if len(differences) else float("nan"),
                        low, high)


def pass_at_k(n: int, correct: int, k: int) -> float:
    """The chance that at least one of k tries drawn from a question's n is correct: the
    unbiased estimator 1 - C(n - c, k) / C(n, k) (Chen et al., 2021, HumanEval)."""
    _check_tries(n, correct, k)
    from scipy import special

    return 1.0 - float(special.comb(n - correct, k, exact=True) / special.comb(n, k, exact=True))


def pass_hat_k(n: int, correct: int, k: int) -> float:
    """pass^k: the chance that all k tries drawn from a question's n are correct,
    C(c, k) / C(n, k) (tau-bench, Yao et al., 2024): how reliably, not how possibly."""
    _check_tries(n, correct, k)
    from scipy import special

    return float(special.comb(correct, k, exact=True) / special.comb(n, k, exact=True))


def _check_tries(n: int, correct: int, k: int) -> None:
    if not (0 <= correct <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= correct <= n and 1 <= k <= n, got n={n}, "
                         f"correct={correct}, k={k}")


def clustered_mean(by_question: Sequence[Sequence[float]], level: float = LEVEL,
                   resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """The mean score over every try of every question, with the percentile bootstrap
    interval that resamples whole questions (each with all its tries): repeats of one
    question are correlated, and an interval over single tries would be too narrow.
    Every question must have the same number of tries."""
    counts = {len(tries) for tries in by_question}
    if not by_question or counts == {0}:
        return float("nan"), float("nan"), float("nan")
    if len(counts) > 1:
        raise ValueError(f"questions with different numbers of tries: {sorted(counts)}")
    means = np.asarray([np.mean(tries) for tries in by_question], dtype=float)
    low, high = paired_bootstrap(means, level, resamples, seed)  # one value per question
    return float(means.mean()), low, high
