"""Noisy tools, as in FireAct's robustness study (Table 3): with probability ``p`` a search
observation is replaced by ``None`` (``noise=none``) or by a random other real response of
the same backend (``noise=random``); ``noise=off``, the default, leaves the tool clean.

Whether a call is perturbed, and by what, depends only on (seed, doc id, turn), so
per-sample results are identical for any batch size, order, ``--limit`` or resumed run.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from fireact_eval.catalog import NOISE_KINDS
from fireact_eval.errors import FireactError
from fireact_eval.tools import NULL_OBSERVATION

# (observation, turn) -> (observation the agent sees, whether it was perturbed)
Perturb = Callable[[str, int], tuple[str, bool]]


def no_noise(observation: str, turn: int) -> tuple[str, bool]:
    """The clean tool: every observation as it came."""
    return observation, False


def validate_noise(kind: str, p: float) -> None:
    if kind not in NOISE_KINDS:
        raise FireactError(f"unknown noise={kind!r}; valid values: {', '.join(NOISE_KINDS)}")
    if not 0.0 <= p <= 1.0:
        raise FireactError(f"noise_p must be between 0 and 1, got {p}")


def _draw(seed: int, doc_key: str, turn: int) -> random.Random:
    return random.Random(f"{seed}/{doc_key}/{turn}")  # str seeds hash stably (sha512)


def try_key(doc_key: str, attempt: int) -> str:
    """The noise key of a question's ``attempt``-th try (0: the question itself, so a run
    without repeats draws as before): each try gets its own draws, a pure function of
    (seed, doc, try, turn)."""
    return doc_key if attempt == 0 else f"{doc_key}/try{attempt}"


def perturbed_at(p: float, seed: int, doc_key: str, turn: int) -> bool:
    """Whether the tool call of ``turn`` on this doc is perturbed: the draw ``perturb``
    makes, so a trajectory logged without per-step marks can be marked afterwards."""
    return _draw(seed, doc_key, turn).random() < p


def make_perturbation(
    kind: str, p: float, seed: int, doc_key: str, pool: Sequence[str] = ()
) -> Perturb:
    """The perturbation for one doc; ``no_noise`` when ``kind`` is ``off`` (the clean tool).

    Args:
        kind: ``none`` replaces the observation with ``None``; ``random`` with a response
            drawn from ``pool`` (real responses of the same backend).
        p: probability that a call is perturbed (FireAct: 0.5).
        seed: run-level seed; with ``doc_key`` and the turn it fixes every draw.
    """
    validate_noise(kind, p)
    if kind == "off":
        return no_noise
    if kind == "random" and not pool:
        raise FireactError("noise=random needs a pool of real responses; this backend has none")

    def perturb(observation: str, turn: int) -> tuple[str, bool]:
        rng = _draw(seed, doc_key, turn)
        if rng.random() >= p:
            return observation, False
        if kind == "none":
            return NULL_OBSERVATION, True
        index = rng.randrange(len(pool))
        if pool[index] == observation:  # "another" response: step past the true one
            index = (index + 1) % len(pool)
        return pool[index], True

    return perturb
