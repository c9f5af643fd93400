"""Repeats' statistics against known values: pass@k and pass^k by their definitions, and a
question-clustered interval that keeps its coverage where one over single tries does not."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fireact_eval.stats import clustered_mean, pass_at_k, pass_hat_k, wilson_interval


def test_pass_at_k_and_pass_hat_k_known_values():
    # 4 tries, 2 correct, k = 2: of the 6 pairs, 5 hold a correct try and 1 holds only correct
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_at_k(8, 0, 8) == 0.0 and pass_hat_k(8, 8, 8) == 1.0
    assert pass_at_k(8, 1, 8) == 1.0 and pass_hat_k(8, 7, 8) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 2)
    with pytest.raises(ValueError):
        pass_hat_k(4, 2, 5)


@given(st.integers(1, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_k_estimators_are_their_definitions_over_every_k_subset(case):
    """tau-bench's pass^k and HumanEval's pass@k are averages over all k-subsets of the
    n tries: enumerate them."""
    n, correct, k = case
    tries = [1] * correct + [0] * (n - correct)
    subsets = list(combinations(tries, k))
    assert pass_at_k(n, correct, k) == pytest.approx(np.mean([any(s) for s in subsets]))
    assert pass_hat_k(n, correct, k) == pytest.approx(np.mean([all(s) for s in subsets]))
    assert pass_hat_k(n, correct, k) <= correct / n <= pass_at_k(n, correct, k) + 1e-12


def test_a_question_clustered_interval_keeps_its_coverage():
    """30 questions of very different difficulty (p ~ Beta(0.5, 0.5)), 8 tries each: the
    interval that resamples questions covers the true mean ~95 % of the time; a Wilson
    interval over the 240 tries as if independent covers far less."""
    rng = np.random.default_rng(7)
    covered = naive = 0
    sims = 200
    for _ in range(sims):
        p = rng.beta(0.5, 0.5, size=30)
        tries = (rng.random((30, 8)) < p[:, None]).astype(float)
        _, low, high = clustered_mean(tries.tolist(), resamples=2000, seed=1)
        covered += low <= 0.5 <= high
        w_low, w_high = wilson_interval(int(tries.sum()), tries.size)
        naive += w_low <= 0.5 <= w_high
    assert 0.88 <= covered / sims <= 0.99
    assert naive / sims < 0.75


def test_clustered_mean_refuses_unequal_repeats():
    assert clustered_mean([[1.0, 0.0], [1.0, 1.0]])[0] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="different numbers of tries"):
        clustered_mean([[1.0], [1.0, 0.0]])
