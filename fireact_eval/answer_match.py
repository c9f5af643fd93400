"""Answer scoring with the normalisation of HotpotQA's official evaluation script.

Pure functions: the rollout engine never scores and these never call a model.
"""

from __future__ import annotations

import re
import string
from collections import Counter

__all__ = [  # the public API (docs/python-api.md)
    "normalize_answer",
    "exact_match",
    "f1",
    "yes_no",
    "choice_letter",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_YES_NO = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str | None, gold: str) -> float:
    """1.0 when the normalised prediction equals the normalised gold answer, else 0.0; a
    gold answer that normalises to nothing matches nothing (an empty finish[] is no answer)."""
    if prediction is None or not normalize_answer(gold):
        return 0.0
    return float(normalize_answer(prediction) == normalize_answer(gold))


def yes_no(text: str | None) -> str | None:
    """The leading yes/no of an answer ("Yes, because ..." -> "yes"), else None."""
    words = normalize_answer(text or "").split()
    return words[0] if words and words[0] in ("yes", "no") else None


def choice_letter(prediction: str | None, choices: list[str], letters: str = "ABCD") -> str | None:
    """The option an answer picks: a bare letter ("B", "(b)", "B. Paris") or an option's text."""
    if prediction is None:
        return None
    text = prediction.strip()
    head = text.strip("()[] ").split(".")[0].split(")")[0].strip().upper()
    if len(head) == 1 and head in letters[: len(choices)]:
        return head
    for letter, choice in zip(letters, choices, strict=False):
        if normalize_answer(text) == normalize_answer(choice):
            return letter
    return None


def f1(prediction: str | None, gold: str) -> float:
    """Token-level F1 of HotpotQA; yes/no/noanswer must match exactly, as in the official script."""
    if prediction is None:
        return 0.0
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in _YES_NO or ref in _YES_NO) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = Counter(pred_tokens) & Counter(ref_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)
