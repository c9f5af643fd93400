"""Teacher trajectories -> fine-tuning data, the FireAct way.

A teacher run is an ordinary ``lm_eval ... --log_samples`` run of our tasks (few-shot, any
method).  Every method already yields the one ReAct format: a ReAct rollout is its
Thought/Action/Observation turns, a CoT answer is one turn ending in ``finish[answer]``, and a
Reflexion rollout keeps its ``Reflection:`` steps.  So converting is: read the logged
trajectories, keep the successful ones, and write them with the *zero-shot* prompt (the bare
question) in FireAct's alpaca or chat layout, which ``fireact-eval train`` reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from fireact_eval.catalog import DATA_FORMATS, TRAINING_METHODS
from fireact_eval.data.decontaminate import DecontaminationReport, EvalIndex, decontaminate
from fireact_eval.data.examples import Example, write_examples
from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import LoggedSample, read_samples, samples_files
from fireact_eval.trajectory import Trajectory
from fireact_eval.transcript import one_call, turn_text


def is_success(trajectory: Trajectory, correct: bool) -> bool:
    """Finished, and right by the task's own quality metric (exact match, or accuracy), with
    a turn to learn from (a trajectory without one would be a row with an empty output)."""
    return (trajectory.finished and correct
            and any(step.kind == "act" for step in trajectory.steps))


def teacher_samples(paths: Iterable[str | Path]) -> Iterator[LoggedSample]:
    """Every logged rollout under ``paths`` (files or ``--output_path`` folders)."""
    for path in [f for p in paths for f in samples_files(p)]:
        yield from read_samples(path)


def as_example(logged: LoggedSample, trajectory: Trajectory) -> Example:
    """A try with the zero-shot prompt, the bare question, labelled with its dataset (as
    the task recorded it) and method.  A ``tools`` run's turns hold what the model wrote
    (``<tool_call>`` JSON): each call is rewritten in the grammar's text, as rows of every
    layout are written from (``tools`` rows render the calls back from it)."""
    steps = trajectory.steps
    if logged.settings.get("format") == "tools":
        steps = [replace(s, text=turn_text(s.thought, s.action, s.argument))
                 if s.kind == "act" and s.action and s.argument is not None else s
                 for s in steps]
    return Example(logged.question.strip(), steps,
                   logged.dataset or logged.task,
                   str(logged.settings.get("method", "react")), logged.doc_hash)


@dataclass
class ConvertReport:
    """How many rollouts each (task, method) had (each try of a repeated question is one),
    and how many became training rows."""

    seen: Counter
    kept: Counter
    out: Path
    decontamination: DecontaminationReport | None = None
    malformed: int | None = None  # successful tries dropped by strict_format (None: off)

    def lines(self) -> list[str]:
        rows = [f"{task:<32} {method:<10} {self.kept[(task, method)]:>6} / {n}"
                for (task, method), n in sorted(self.seen.items())]
        total = f"{sum(self.kept.values())} training rows -> {self.out}"
        checked = (self.decontamination.lines() if self.decontamination is not None
                   else ["decontamination: off"])
        if self.malformed is not None:
            checked.append(f"strict format: {self.malformed} successful tries dropped (an "
                           "action line that is not one tool[argument])")
        return ["task                             method       kept / rollouts", *rows,
                *checked, total]


def convert(
    paths: Iterable[str | Path], out: str | Path, fmt: str = "alpaca",
    methods: Iterable[str] = TRAINING_METHODS, keep_failed: bool = False,
    index: EvalIndex | None = None, strict_format: bool = False,
) -> ConvertReport:
    """Write successful rollouts as alpaca JSON (``fmt="alpaca"``) or chat JSONL (``"chat"``);
    with an ``index`` of the evaluation sets, drop the questions found in one; with
    ``strict_format``, drop a successful try with any action line that is not one call
    (``transcript.one_call``).  A run with ``repeats`` gives every successful try (distinct
    transcripts of one question are distinct rows; identical ones one)."""
    if fmt not in DATA_FORMATS:
        raise FireactError(f"unknown format {fmt!r}; valid: {', '.join(DATA_FORMATS)}")
    methods = tuple(methods)
    seen: Counter = Counter()
    malformed = 0
    examples: dict[str, Example] = {}
    tasks: dict[str, tuple[str, str]] = {}
    for logged in teacher_samples(paths):
        for trajectory, correct in logged.scored_tries():
            example = as_example(logged, trajectory)
            key = (example.task, example.method)  # as the rows are labelled
            tasks[example.key()] = key
            seen[key] += 1
            if example.method not in methods or not (is_success(trajectory, correct)
                                                     or keep_failed):
                continue
            if strict_format and not all(one_call(step) for step in example.steps):
                malformed += 1
                continue
            if example.key() in examples:  # the same file twice, or a try like another
                continue
            examples[example.key()] = example
    if not examples:
        raise FireactError("no successful rollouts to convert (of "
                           f"{sum(seen.values())} read; methods: {', '.join(methods)}"
                           + (f"; {malformed} dropped by strict format" if malformed else "")
                           + ")")
    chosen, report = list(examples.values()), None
    if index is not None:
        chosen, report = decontaminate(chosen, index)
    if not chosen:
        raise FireactError("every successful rollout was of an evaluation question")
    write_examples(chosen, out, fmt)  # whole or not at all
    return ConvertReport(seen, Counter(tasks[e.key()] for e in chosen), Path(out), report,
                         malformed if strict_format else None)
