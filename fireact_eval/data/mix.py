"""Mixing training data: so many (or such a share) of each task x method, de-duplicated,
drawn with a seed.

``hotpotqa:react=500,hotpotqa:cot=187`` takes that many rows of each pair; a value of at
most 1 (``strategyqa:react=0.5``; ``1`` is all) takes that share of the pair's rows;
``*`` for a method takes every method of the task (``mmlu:*=1.0``).  Asking for more rows
than a pair has is an error, never a silent shortfall.  FireAct's own mixes are named presets.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable

from fireact_eval.data.examples import Example
from fireact_eval.errors import FireactError

PRESETS = {  # FireAct's mixes (its Table 5): every row of these pairs
    "single-task": "hotpotqa:react=1.0",
    "multi-method": "hotpotqa:react=1.0,hotpotqa:cot=1.0,hotpotqa:reflexion=1.0",
    "multi-task": "hotpotqa:react=1.0,strategyqa:react=1.0,mmlu:react=1.0",
    "multi-task-multi-method": "hotpotqa:*=1.0,strategyqa:*=1.0,mmlu:*=1.0",
}


def parse_mix(spec: str) -> list[tuple[str, str, float]]:
    """``task:method=amount`` items (or a preset name) as (task, method, amount)."""
    spec = PRESETS.get(spec, spec)
    items = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        pair, sep, amount = item.partition("=")
        task, colon, method = pair.partition(":")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not (sep and colon and task and method) or not math.isfinite(value) or value < 0 or (
                value > 1 and not value.is_integer()):
            raise FireactError(f"bad mix item {item!r}: expected task:method=COUNT or "
                               f"task:method=SHARE (0-1), or a preset: {', '.join(PRESETS)}")
        items.append((task, method, value))
    if not items:
        raise FireactError("empty mix")
    return items


def mix(examples: Iterable[Example], spec: str, seed: int = 0) -> list[Example]:
    """The rows the mix asks for, de-duplicated (the same question and transcript once),
    in a seeded order."""
    pairs: dict[tuple[str, str], list[Example]] = defaultdict(list)
    seen: set[str] = set()
    for example in examples:
        if example.key() not in seen:
            seen.add(example.key())
            pairs[(example.task, example.method)].append(example)
    rng = random.Random(seed)
    chosen: list[Example] = []
    asked: dict[tuple[str, str], str] = {}  # each pair -> the mix item that asked for it
    for task, method, amount in parse_mix(spec):
        keys = sorted(k for k in pairs if k[0] == task and (method == "*" or k[1] == method))
        if not keys:
            available = ", ".join(f"{t}:{m}" for t, m in sorted(pairs)) or "none"
            raise FireactError(f"no {task}:{method} rows to mix (available: {available})")
        for key in keys:
            if key in asked:  # two items drawing from one pair would repeat its rows
                raise FireactError(f"{key[0]}:{key[1]} is asked for twice ({asked[key]} and "
                                   f"{task}:{method}); name each task:method once")
            asked[key] = f"{task}:{method}"
            rows = pairs[key]
            want = round(amount * len(rows)) if amount <= 1 else int(amount)
            if want > len(rows):
                raise FireactError(f"the mix asks for {want} {key[0]}:{key[1]} rows; the data "
                                   f"has {len(rows)}")
            chosen += rng.sample(rows, want)
    rng.shuffle(chosen)
    return chosen
