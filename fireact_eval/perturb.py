"""Tool faults: what a seeded faulty search does to an observation.

FireAct's robustness study (Table 3) replaced an observation with ``None`` or a random other
result with probability ``p``.  The faults agents meet are wider, and these are the kinds
(``catalog.NOISE_KINDS``), each told apart on the step it hit (``Step.fault``):

- ``none``: ``None``, an empty result;
- ``random``: a random other real response of the same backend;
- ``error``: an explicit failure the agent is told about (a 503, a timeout, a rate limit),
  worded as the engine words a real tool failure;
- ``distractor``: a real passage about a related but wrong entity, from the same backend
  (the best-ranked result for the query that is not the clean one; the world's own: the same
  kind of entity in the same province);
- ``truncated``: the true observation cut before its answer-bearing part (the world cuts
  before the first fact its passage carries; elsewhere after the first sentence).

A spec is one kind with ``noise_p`` (``noise=none``: FireAct's, drawn exactly as before) or a
mixture, ``error:0.2+distractor:0.2`` (``,`` works too where the form allows), one draw per
call picking the kind.  ``persist`` says what a draw depends on: ``transient`` (seed, doc
id, turn: every call draws afresh) or ``permanent`` (seed, doc id and the normalised query:
the same query fails the same way all episode; a reformulated one draws anew).  Either
way per-sample results are identical for any batch size, order, ``--limit``, layout,
backend or resumed run.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fireact_eval.catalog import NOISE_KINDS, NOISE_PERSISTENCE
from fireact_eval.errors import FireactError
from fireact_eval.tools import NULL_OBSERVATION, Search
from fireact_eval.tools.passage_index import cut_short

__all__ = [
    "Perturb", "NoiseSpec", "parse_noise", "make_perturbation", "no_noise", "try_key",
    "perturbed_at", "tool_failed_observation", "truncate", "DistractingSearch",
    "TruncatingSearch", "check_backend", "ERRORS", "TOOL_FAILED_PREFIX",
]

# (observation, turn, query) -> (observation the agent sees, the fault's kind or None)
Perturb = Callable[[str, int, str], tuple[str, str | None]]
# How the engine tells the agent a tool call failed, for a real failure and an injected one
# alike (the trajectory report reads runs logged before per-step marks by it).
TOOL_FAILED_PREFIX = "The search tool failed ("
# What an ``error`` fault says: the failures a served search meets
ERRORS = ("503 Service Unavailable", "504 Gateway Timeout", "429 Too Many Requests",
          "ReadTimeout: no reply in 10 s")


def tool_failed_observation(reason: str) -> str:
    return f"{TOOL_FAILED_PREFIX}{reason}); try again or answer."


@runtime_checkable
class DistractingSearch(Protocol):
    """A backend that can give a related but wrong result for a query: ``None`` when it has
    no result besides the clean one."""

    def distractor(self, query: str, observation: str) -> str | None: ...


@runtime_checkable
class TruncatingSearch(Protocol):
    """A backend that knows where its passages' facts are (the world)."""

    def truncate(self, observation: str) -> str: ...


def no_noise(observation: str, turn: int, query: str = "") -> tuple[str, str | None]:
    """The clean tool: every observation as it came."""
    return observation, None


@dataclass(frozen=True)
class NoiseSpec:
    """Which faults, with which probability each (in draw order), and how long they last."""

    kinds: tuple[tuple[str, float], ...] = ()
    persist: str = "transient"

    @property
    def p(self) -> float:
        return round(sum(p for _, p in self.kinds), 10)

    @property
    def name(self) -> str:
        """As settings record it: ``off``, one kind (its p is ``noise_p``), or the mixture."""
        if not self.kinds:
            return "off"
        if len(self.kinds) == 1:
            return self.kinds[0][0]
        return "+".join(f"{kind}:{p:g}" for kind, p in self.kinds)

    def has(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.kinds)


def _probability(text: str, where: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise FireactError(f"{where}: {text!r} is not a probability") from None
    if not 0.0 <= p <= 1.0:
        raise FireactError(f"noise_p must be between 0 and 1, got {p}")
    return p


def parse_noise(spec: str, p: float = 0.5, persist: str = "transient") -> NoiseSpec:
    """A noise spec: ``off``, a kind (with ``p``), ``kind:P`` or a mixture of them joined by
    ``+`` or ``,``; an item ``persist=transient|permanent`` sets the persistence (else
    ``persist``).  One line for anything else."""
    if not 0.0 <= p <= 1.0:
        raise FireactError(f"noise_p must be between 0 and 1, got {p}")
    if persist not in NOISE_PERSISTENCE:
        raise FireactError(f"unknown noise_persist={persist!r}; valid values: "
                           f"{', '.join(NOISE_PERSISTENCE)}")
    items = [item.strip() for item in re.split(r"[+,]", str(spec))]
    kinds: list[tuple[str, float]] = []
    for item in items:
        if item.startswith("persist="):
            persist = item.partition("=")[2]
            if persist not in NOISE_PERSISTENCE:
                raise FireactError(f"noise={spec}: persist is one of "
                                   f"{', '.join(NOISE_PERSISTENCE)}, got {persist!r}")
            continue
        kind, colon, weight = item.partition(":")
        if kind not in NOISE_KINDS:
            raise FireactError(f"unknown noise={kind!r}; valid values: {', '.join(NOISE_KINDS)}"
                               " (a mixture: kind:P+kind:P, e.g. error:0.2+distractor:0.2)")
        if kind == "off":
            if len(items) > 1:
                raise FireactError(f"noise={spec}: off mixes with nothing")
            continue
        if any(k == kind for k, _ in kinds):
            raise FireactError(f"noise={spec}: {kind} is given twice")
        if not colon and len(items) - sum(i.startswith("persist=") for i in items) > 1:
            raise FireactError(f"noise={spec}: in a mixture every kind has its probability "
                               f"({kind}:0.2)")
        kinds.append((kind, _probability(weight, f"noise={spec}") if colon else p))
    if sum(w for _, w in kinds) > 1.0 + 1e-9:
        raise FireactError(f"noise={spec}: the probabilities add up to more than 1")
    return NoiseSpec(tuple(kinds), persist)


def _draw(seed: int, doc_key: str, turn: int) -> random.Random:
    return random.Random(f"{seed}/{doc_key}/{turn}")  # str seeds hash stably (sha512)


def _query_key(query: str) -> str:
    return " ".join(query.casefold().split())


def try_key(doc_key: str, attempt: int) -> str:
    """The noise key of a question's ``attempt``-th try (0: the question itself, so a run
    without repeats draws as before): each try gets its own draws, a pure function of
    (seed, doc, try, turn)."""
    return doc_key if attempt == 0 else f"{doc_key}/try{attempt}"


def perturbed_at(p: float, seed: int, doc_key: str, turn: int) -> bool:
    """Whether the tool call of ``turn`` on this doc was perturbed by a one-kind transient
    spec: the draw ``perturb`` makes, so a trajectory logged before per-step marks can be
    marked afterwards."""
    return _draw(seed, doc_key, turn).random() < p


def truncate(observation: str, tool: Search | None = None) -> str:
    """The observation cut before its answer-bearing part, marked ``...`` as a snippet
    cut short is: the backend's own cut where it knows its facts (the world), else the
    first sentence of several, or the first half of a single one."""
    if isinstance(tool, TruncatingSearch):
        return tool.truncate(observation)
    return cut_short(observation)


def check_backend(spec: NoiseSpec, tool: Search | None, pool: Sequence[str], name: str
                  ) -> None:
    """A kind the backend cannot produce, as one line before any model loads."""
    if spec.has("random") and not pool:
        raise FireactError(f"noise=random needs a pool of real responses; search={name} has "
                           "none")
    if spec.has("distractor") and not _distracts(tool):
        raise FireactError(f"noise=distractor: search={name} gives one result a query (a "
                           "replay recorded one); use a backend that ranks (local, wiki, "
                           "world, retriever, serpapi)")


def _distracts(tool: Search | None) -> bool:
    return tool is not None and getattr(tool, "distracts", isinstance(tool, DistractingSearch))


def make_perturbation(
    kind: str | NoiseSpec, p: float, seed: int, doc_key: str, pool: Sequence[str] = (),
    tool: Search | None = None, persist: str = "transient",
) -> Perturb:
    """The faulty tool of one doc; ``no_noise`` when the spec is ``off`` (the clean tool).

    Args:
        kind: a spec (``parse_noise``) or its parsed form.
        p: probability that a call is faulted, for a one-kind spec (FireAct: 0.5).
        seed: run-level seed; with ``doc_key`` and the turn (or the query) it fixes every
            draw.
        pool: real responses of the backend, for ``random``.
        tool: the backend, for ``distractor`` and ``truncated``.
    """
    spec = kind if isinstance(kind, NoiseSpec) else parse_noise(kind, p, persist)
    if not spec.kinds:
        return no_noise
    check_backend(spec, tool, pool, type(tool).__name__ if tool is not None else "(no tool)")

    def perturb(observation: str, turn: int, query: str = "") -> tuple[str, str | None]:
        rng = _draw(seed, doc_key, turn if spec.persist == "transient"
                    else f"q={_query_key(query)}")  # type: ignore[arg-type]
        u, bound = rng.random(), 0.0
        for fault, weight in spec.kinds:
            bound += weight
            if u < bound:
                return _fault(fault, observation, query, rng, pool, tool)
        return observation, None

    return perturb


def _fault(kind: str, observation: str, query: str, rng: random.Random,
           pool: Sequence[str], tool: Search | None) -> tuple[str, str | None]:
    if kind == "none":
        return NULL_OBSERVATION, kind
    if kind == "random":
        index = rng.randrange(len(pool))
        if pool[index] == observation:  # "another" response: step past the true one
            index = (index + 1) % len(pool)
        return pool[index], kind
    if kind == "error":
        return tool_failed_observation(rng.choice(ERRORS)), kind
    if kind == "distractor":
        other = tool.distractor(query, observation) if tool is not None else None
        if other is None:  # nothing else ranks for it: the search found nothing else
            return NULL_OBSERVATION, "none"
        return other, kind
    return truncate(observation, tool), kind
