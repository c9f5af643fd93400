"""Teacher trajectories -> fine-tuning data, the FireAct way.

A teacher run is an ordinary ``lm_eval ... --log_samples`` run of our tasks (few-shot, any
method).  Every method already yields the one ReAct format: a ReAct rollout is its
Thought/Action/Observation turns, a CoT answer is one turn ending in ``finish[answer]``, and a
Reflexion rollout keeps its ``Reflection:`` steps.  So converting is: read the logged
trajectories, keep the successful ones, and write them with the *zero-shot* prompt (the bare
question) in FireAct's alpaca or chat layout, which ``fireact-eval train`` reads.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fireact_eval.errors import FireactError
from fireact_eval.run_files import LoggedSample, read_samples, samples_files
from fireact_eval.scoring import QUALITY_METRICS
from fireact_eval.trajectory import Trajectory
from fireact_eval.transcript import render_messages, to_text

TRAINING_METHODS = ("react", "cot", "reflexion")  # FireAct's; io answers carry no reasoning


@dataclass(frozen=True)
class Sample:
    """One logged rollout: which task and method produced it, and whether it succeeded."""

    task: str
    method: str
    question: str
    trajectory: Trajectory
    success: bool


def is_success(logged: LoggedSample) -> bool:
    """Finished, and right by the task's own quality metric (exact match, or accuracy)."""
    score = next((logged.scores[m] for m in QUALITY_METRICS if m in logged.scores), None)
    return logged.trajectory.finished and score == 1.0


def teacher_samples(paths: Iterable[str | Path]) -> Iterator[Sample]:
    """Every logged rollout under ``paths`` (files or ``--output_path`` folders)."""
    for path in [f for p in paths for f in samples_files(p)]:
        for logged in read_samples(path):
            yield Sample(logged.task, str(logged.settings.get("method", "react")),
                         logged.question, logged.trajectory, is_success(logged))


def to_alpaca(sample: Sample) -> dict[str, str]:
    return {"instruction": sample.question.strip(), "input": "",
            "output": to_text(sample.trajectory.steps)}


def to_chat(sample: Sample) -> dict[str, list[dict[str, str]]]:
    return {"messages": render_messages(sample.question.strip(), sample.trajectory.steps)}


@dataclass
class ConvertReport:
    """How many rollouts each (task, method) had, and how many became training rows."""

    seen: Counter
    kept: Counter
    out: Path

    def lines(self) -> list[str]:
        rows = [f"{task:<32} {method:<10} {self.kept[(task, method)]:>6} / {n}"
                for (task, method), n in sorted(self.seen.items())]
        total = f"{sum(self.kept.values())} training rows -> {self.out}"
        return ["task                             method       kept / rollouts", *rows, total]


def convert(
    paths: Iterable[str | Path], out: str | Path, fmt: str = "alpaca",
    methods: Iterable[str] = TRAINING_METHODS, keep_failed: bool = False,
) -> ConvertReport:
    """Write successful rollouts as alpaca JSON (``fmt="alpaca"``) or chat JSONL (``"chat"``)."""
    if fmt not in ("alpaca", "chat"):
        raise FireactError(f"unknown format {fmt!r}; valid: alpaca, chat")
    methods = tuple(methods)
    seen: Counter = Counter()
    kept: Counter = Counter()
    rows: list[dict] = []
    unique: set[str] = set()
    for sample in teacher_samples(paths):
        key = (sample.task, sample.method)
        seen[key] += 1
        if sample.method not in methods or not (sample.success or keep_failed):
            continue
        row = to_alpaca(sample) if fmt == "alpaca" else to_chat(sample)
        text = json.dumps(row, ensure_ascii=False, sort_keys=True)
        if text in unique:  # the same file given twice, or a run inside a given folder
            continue
        unique.add(text)
        kept[key] += 1
        rows.append(row)
    if not rows:
        raise FireactError("no successful rollouts to convert (of "
                           f"{sum(seen.values())} read; methods: {', '.join(methods)})")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        if fmt == "alpaca":
            json.dump(rows, fh, ensure_ascii=False, indent=1)
        else:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    tmp.replace(out)  # a crash never leaves half a training file behind
    return ConvertReport(seen, kept, out)
