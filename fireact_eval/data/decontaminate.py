"""Drop training questions that appear in an evaluation set we ship.

A training question is contaminated when, after HotpotQA's answer normalisation (lower
case, no punctuation, no articles, single spaces), it equals an evaluation question, or
nearly does: the Jaccard similarity of their word sets is at least ``NEAR_DUPLICATE``
(0.8: e.g. 8 of 10 distinct words shared and none extra), for questions of at least
``MIN_WORDS`` words (shorter ones share most words by chance).  FireAct's released multi-task
files hold StrategyQA dev questions it evaluates on; this finds them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fireact_eval.answer_match import normalize_answer
from fireact_eval.catalog import DATASETS
from fireact_eval.data.examples import Example
from fireact_eval.errors import FireactError

NEAR_DUPLICATE = 0.8
MIN_WORDS = 6
_PREFIX = "question:"


def normalize_question(text: str) -> str:
    text = text.strip()
    if text.lower().startswith(_PREFIX):
        text = text[len(_PREFIX):]
    return normalize_answer(text)


@dataclass(frozen=True)
class Match:
    """A training example found in an evaluation set."""

    eval_set: str
    kind: str  # exact | near
    similarity: float
    train_question: str
    eval_question: str
    source: str


class EvalIndex:
    """Every question of the evaluation sets, for exact and near-duplicate lookups."""

    def __init__(self, eval_sets: dict[str, Iterable[str]]) -> None:
        self.exact: dict[str, tuple[str, str]] = {}
        self.words: list[tuple[str, str, frozenset[str]]] = []
        self.postings: dict[str, list[int]] = defaultdict(list)
        for name, questions in eval_sets.items():
            for question in questions:
                norm = normalize_question(question)
                self.exact.setdefault(norm, (name, question))
                words = frozenset(norm.split())
                if len(words) >= MIN_WORDS:
                    for word in words:
                        self.postings[word].append(len(self.words))
                    self.words.append((name, question, words))

    def find(self, question: str, threshold: float = NEAR_DUPLICATE) -> Match | None:
        norm = normalize_question(question)
        if norm in self.exact:
            name, original = self.exact[norm]
            return Match(name, "exact", 1.0, question, original, "")
        words = frozenset(norm.split())
        if len(words) < MIN_WORDS:
            return None
        # A set with Jaccard >= t holds all but (1 - t) of these words: it must hold one of
        # the rarest floor((1 - t) * n) + 1 of them, so only their postings are candidates.
        rarest = sorted(words, key=lambda w: len(self.postings.get(w, ())))
        probe = rarest[: math.floor((1 - threshold) * len(words)) + 1]
        best: Match | None = None
        for i in {i for w in probe for i in self.postings.get(w, ())}:
            name, original, other = self.words[i]
            score = len(words & other) / len(words | other)
            if score >= threshold and (best is None or score > best.similarity):
                best = Match(name, "near", score, question, original, "")
        return best


@dataclass
class DecontaminationReport:
    matches: list[Match] = field(default_factory=list)

    def counts(self) -> dict[str, Counter]:
        by_set: dict[str, Counter] = defaultdict(Counter)
        for m in self.matches:
            by_set[m.eval_set][m.kind] += 1
        return dict(by_set)

    def lines(self) -> list[str]:
        if not self.matches:
            return ["decontamination: no training question found in any evaluation set"]
        return [f"decontamination: dropped {c['exact']} exact and {c['near']} near-duplicate "
                f"questions of {name}" for name, c in sorted(self.counts().items())]


def decontaminate(examples: Iterable[Example], index: EvalIndex,
                  threshold: float = NEAR_DUPLICATE) -> tuple[list[Example],
                                                              DecontaminationReport]:
    kept, report = [], DecontaminationReport()
    for example in examples:
        match = index.find(example.question, threshold)
        if match is None:
            kept.append(example)
        else:
            report.matches.append(Match(match.eval_set, match.kind, match.similarity,
                                        match.train_question, match.eval_question,
                                        example.source))
    return kept, report


def shipped_eval_sets(data_dir: str | None = None,
                      names: tuple[str, ...] | list[str] = ()) -> dict[str, list[str]]:
    """The questions of every evaluation set we ship (the tasks' test splits), or of those
    ``names``, from ``data_dir`` in FireAct's layout or the Hub; one error naming the ways
    out otherwise."""
    from fireact_eval import questions

    sets = {}
    for name in names or DATASETS:  # each dataset's loader has its name
        if name not in DATASETS:
            raise FireactError(f"no evaluation set {name!r}; valid: {', '.join(DATASETS)}")
        loader: Callable = getattr(questions, name)
        try:
            sets[name] = list(loader(data_dir=data_dir)["test"]["question"])
        except FireactError as err:
            raise FireactError(f"decontamination needs every evaluation set; {name}: {err}; "
                               "or pass --no-decontaminate") from None
    return sets
