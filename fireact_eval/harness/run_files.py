"""lm-eval's output files, read in one place: runs -> tasks -> samples.

``lm_eval --output_path DIR --log_samples`` writes, per run, ``results_<stamp>.json`` (every
task's metrics, its config with the metadata the task recorded, lm-eval's own
``higher_is_better``, ``n-samples``) and, per task, ``samples_<task>_<stamp>.jsonl`` (a line
per doc: ``doc``, ``doc_hash``, the request's ``arguments``, ``resps``, and the per-sample
metrics).  ``results``, ``gate``, ``convert`` and ``index build`` read them through this
module only, and take every setting from what the task recorded, never from its name.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import files_read, find_files, iter_jsonl, read_json, write_atomic
from fireact_eval.options import parse_pairs
from fireact_eval.outcomes import classify, from_metrics
from fireact_eval.scoring import QUALITY_METRICS, tries_correct
from fireact_eval.training_card import TrainingCard
from fireact_eval.trajectory import Trajectory, tries_from_json

__all__ = [  # the public API (docs/python-api.md)
    "LoggedSample",
    "TaskResult",
    "RunResult",
    "read_run",
    "read_samples",
    "samples_files",
    "results_files",
    "run_inputs",
    "split_label",
    "logged_sample",
    "samples_task",
    "recorded_dataset",
    "model_name",
    "decoding_of",
    "run_seed",
    "sample_record",
    "write_run",
]

RESULTS_FILES = "results_*.json"
SAMPLES_FILES = "samples_*.jsonl"
_SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<stamp>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")


@dataclass(frozen=True)
class LoggedSample:
    """One rollout as ``--log_samples`` wrote it.

    ``settings`` are the rollout settings the request carried (``arguments.gen_args_0``),
    ``scores`` every per-sample metric lm-eval recorded next to it, ``prompt`` the prompt
    the rollout started from, ``doc_id`` lm-eval's index of the doc, ``dataset`` as the
    task's YAML names it (``hotpotqa`` for ``fireact_hotpotqa_cot``).  ``trajectory`` is
    the first try; ``tries`` every try of a question run with ``repeats`` (one otherwise),
    ``identical_tries`` when greedy decoding made them copies of one rollout."""

    task: str
    doc_hash: str
    doc: dict
    settings: dict
    trajectory: Trajectory
    scores: dict[str, float]
    prompt: str = ""
    doc_id: int = -1
    dataset: str = ""
    tries: tuple[Trajectory, ...] = ()
    identical_tries: bool = False

    @property
    def question(self) -> str:
        return str(self.doc.get("question", ""))

    @property
    def metric(self) -> str | None:
        """The headline metric (exact match or accuracy) this sample was scored on."""
        return next((m for m in QUALITY_METRICS if m in self.scores), None)

    @property
    def correct(self) -> bool:
        return self.metric is not None and self.scores[self.metric] == 1.0

    def scored_tries(self) -> list[tuple[Trajectory, bool]]:
        """Every try with whether it was right: the recorded score for a single try; for
        repeats, each try scored by its dataset's scorer (the sample records only their
        mean).  Greedy repeats are copies: one try."""
        if len(self.tries) <= 1 or self.identical_tries:
            return [(self.trajectory, self.correct)]
        right = tries_correct(self.dataset, self.doc, self.tries)
        if right is None:
            raise FireactError(
                f"{self.task}: its samples hold {len(self.tries)} tries each and dataset "
                f"{self.dataset!r} has no scorer in fireact_eval.scoring.DATASET_SCORERS to "
                "tell which were right; add one there")
        return list(zip(self.tries, right, strict=True))

    @property
    def outcome(self) -> str:
        """As recorded (``outcome_*`` metrics), or for samples logged before outcomes were,
        derived from the trajectory by the same rules."""
        return from_metrics(self.scores) or classify(self.trajectory, self.correct)


def logged_sample(record: Any, task: str, where: str, dataset: str = "") -> LoggedSample:
    """One samples line of a fireact task; a FireactError naming ``where`` otherwise."""
    try:
        settings = record["arguments"]["gen_args_0"].get("arg_2") or {}
        response = record["resps"][0][0]
        tries = tuple(tries_from_json(response))
        identical = bool(json.loads(response).get("repeats_identical"))
        doc = record["doc"]
        if "question" not in doc:
            raise KeyError("question")
    except (KeyError, IndexError, TypeError, AttributeError, json.JSONDecodeError):
        raise FireactError(f"{where}: not a fireact-eval sample (a logged rollout of a "
                           "fireact_* task)") from None
    scores = {k: float(v) for k, v in record.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "doc_id"}
    prompt = record["arguments"]["gen_args_0"].get("arg_0")
    return LoggedSample(task, str(record.get("doc_hash", record.get("doc_id"))), doc,
                        dict(settings), tries[0], scores,
                        prompt if isinstance(prompt, str) else "", int(record.get("doc_id", -1)),
                        dataset, tries, identical)


def samples_task(path: Path) -> str:
    """The task a samples file belongs to, from lm-eval's file naming."""
    match = _SAMPLES_NAME.match(path.name)
    return match["task"] if match else path.stem


def recorded_dataset(path: Path, task: str) -> str:
    """The dataset a samples file's task names in its YAML (``metadata.dataset``), from the
    results file lm-eval wrote beside it; the task name where there is none (a samples file
    on its own, or a task from before datasets were recorded)."""
    match = _SAMPLES_NAME.match(path.name)
    results = path.parent / f"results_{match['stamp']}.json" if match else None
    if results is None or not results.is_file():
        return task
    try:
        config = (read_json(results, "results file").get("configs") or {}).get(task) or {}
    except (FireactError, AttributeError):
        return task
    return str((config.get("metadata") or {}).get("dataset") or task)


def read_samples(path: str | Path) -> Iterator[LoggedSample]:
    path = Path(path)
    task = samples_task(path)
    dataset = recorded_dataset(path, task)
    for line_no, record in iter_jsonl(path, "samples file"):
        yield logged_sample(record, task, f"{path}, line {line_no}", dataset)


def samples_files(path: str | Path) -> list[Path]:
    """A samples file given directly, or every one under a folder."""
    return find_files(path, SAMPLES_FILES, " (run lm_eval with --log_samples --output_path DIR)")


@dataclass(frozen=True)
class TaskResult:
    """One task of one run: the metadata it recorded (every rollout setting, defaults
    included, and where its questions came from), its metrics (``name`` and
    ``name_stderr``, lm-eval's ``none`` filter), lm-eval's ``higher_is_better`` for each,
    the number of questions asked, and its samples file when there is one."""

    task: str
    metadata: dict[str, Any]
    metrics: dict[str, float]
    higher_is_better: dict[str, bool]
    n: int | None
    samples_path: Path | None = None

    @property
    def dataset(self) -> str:
        """As the task's YAML names it (``metadata.dataset``); files from before it was
        recorded show the task name."""
        return str(self.metadata.get("dataset") or self.task)

    @functools.cached_property
    def _samples(self) -> tuple[LoggedSample, ...]:
        # read once: tables, the gate and the report each walk a run's samples
        return tuple(read_samples(self.samples_path)) if self.samples_path else ()

    def samples(self) -> Iterator[LoggedSample]:
        return iter(self._samples)

    def sample_scores(self, metric: str) -> dict[str, float]:
        """Per-doc values of ``metric``, keyed by lm-eval's doc hash (so two runs pair up
        even under different ``--limit``); empty without ``--log_samples``."""
        return {s.doc_hash: s.scores[metric] for s in self.samples() if metric in s.scores}


@dataclass(frozen=True)
class RunResult:
    """One ``results_*.json`` file: the model it evaluated and its tasks (a group's
    aggregate rows, which have no config, are not tasks)."""

    path: Path
    model: str
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    decoding: str = ""  # lm-eval's --gen_kwargs, normalised ("" for the task's own)
    seed: str = ""  # every seed the run was given (``run_seed``)
    training: str = ""  # the recipe of the checkpoint (``TrainingCard.recipe_digest``)
    train_on_test: bool = False  # its card says it trained on test questions, when asked


def decoding_of(results: dict) -> str:
    """The run's ``--gen_kwargs`` as sorted ``key=value`` pairs: a run at temperature 0.7
    is not a greedy run of the same model."""
    kwargs = (results.get("config") or {}).get("gen_kwargs") or ""
    if isinstance(kwargs, dict):
        pairs = [f"{k}={v}" for k, v in kwargs.items()]
    else:
        pairs = [p.strip() for p in str(kwargs).split(",") if p.strip()]
    return ",".join(sorted(pairs))


def _model_args(results: dict) -> dict:
    args = (results.get("config") or {}).get("model_args") or {}
    if isinstance(args, str):  # lm-eval records the command line's string as given
        args = parse_pairs(args, "model_args", strict=False)
    return args


def _card(args: dict) -> TrainingCard | None:
    """``fireact-eval train``'s card beside the adapter or model the run loaded, if it is
    on this machine (a merged model sits in the adapter's ``merged/``)."""
    for key in ("peft", "lora_local_path", "pretrained"):
        if not isinstance(args.get(key), str):
            continue
        folder = Path(args[key])
        for beside in (folder, folder.parent):
            if TrainingCard.exists(beside) and (beside == folder or folder.name == "merged"):
                try:
                    return TrainingCard.read(beside)
                except FireactError:  # a damaged card: the run is read without its recipe
                    return None
    return None


def run_seed(results: dict, card: TrainingCard | None) -> str:
    """Every seed a run was given: lm-eval's ``--seed`` (python, numpy, torch, few-shot),
    the backend's sampler ``seed=`` model arg (vllm, API), the checkpoint's training seed
    from its card.  Runs that differ only here are one recipe under different seeds."""
    config = results.get("config") or {}
    run = [config.get(k) for k in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")]
    parts = []
    if len(set(run)) == 1 and run[0] is not None:
        parts.append(f"run={run[0]}")  # lm_eval --seed N: the one seed for all four
    elif any(v is not None for v in run):
        parts.append("run=" + ",".join("-" if v is None else str(v) for v in run))
    if (sampler := _model_args(results).get("seed")) is not None:
        parts.append(f"sampler={sampler}")
    if card is not None and (train := card.seed) is not None:
        parts.append(f"train={train}")
    return " ".join(parts)


def model_name(results: dict) -> str:
    """What a run is called when not labelled: its adapter, else its weights."""
    args = (results.get("config") or {}).get("model_args") or {}
    if isinstance(args, dict):
        return str(args.get("peft") or args.get("lora_local_path") or args.get("pretrained")
                   or args.get("model") or results.get("model_name") or "model")
    return str(results.get("model_name") or args)


def read_run(path: str | Path) -> RunResult:
    path = Path(path)
    results = read_json(path, "results file")
    if not isinstance(results, dict):
        raise FireactError(f"{path}: not an lm-eval results file")
    stamp = path.stem.removeprefix("results_")
    tasks = {}
    for task, values in (results.get("results") or {}).items():
        config = (results.get("configs") or {}).get(task)
        if config is None:
            continue
        metrics = {}
        for key, value in values.items():
            name, _, filt = key.partition(",")
            if filt == "none" and isinstance(value, (int, float)):
                metrics[name] = float(value)
        samples = path.parent / f"samples_{task}_{stamp}.jsonl"
        tasks[task] = TaskResult(
            task=task, metadata=dict(config.get("metadata") or {}), metrics=metrics,
            higher_is_better={k: bool(v) for k, v in
                              ((results.get("higher_is_better") or {}).get(task) or {}).items()},
            n=(results.get("n-samples") or {}).get(task, {}).get("effective"),
            samples_path=samples if samples.is_file() else None,
        )
    card = _card(_model_args(results))
    return RunResult(path, model_name(results), tasks, decoding_of(results),
                     run_seed(results, card), card.recipe_digest() if card else "",
                     bool(card and card.train_on_test))


def split_label(spec: str) -> tuple[str, str]:
    """``LABEL=PATH`` -> ``(LABEL, PATH)``; a bare ``PATH`` (a ``=`` after a ``/`` is the
    path's own) -> ``("", PATH)``."""
    label, sep, rest = spec.partition("=")
    return (label, rest) if sep and "/" not in label else ("", spec)


def run_inputs(specs: list[str]) -> set[Path]:
    """The lm-eval files a command given these runs (``PATH`` or ``LABEL=PATH``) reads: the
    ones an output must never be written over."""
    return files_read([split_label(s)[1] for s in specs], (RESULTS_FILES, SAMPLES_FILES))


def results_files(path: str | Path) -> list[Path]:
    """A results file given directly, or every one under a folder (one run each)."""
    return find_files(path, RESULTS_FILES)


def sample_record(doc_id: int, doc: dict, prompt: str, settings: dict, response: str,
                  metrics: dict[str, float]) -> dict:
    """One samples line as ``--log_samples`` writes it for a fireact task (for runs we
    import rather than run: ``results import-fireact``)."""
    from lm_eval.utils import hash_string

    return {"doc_id": doc_id, "doc": doc, "target": doc.get("answer"),
            "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {}, "arg_2": settings}},
            "resps": [[response]], "filtered_resps": [response], "filter": "none",
            "metrics": list(metrics),
            "doc_hash": hash_string(json.dumps(doc, indent=2, ensure_ascii=False)), **metrics}


def write_run(folder: Path, task: str, metadata: dict, samples: list[dict], label: str,
              stamp: str) -> None:
    """A results file and its samples file in lm-eval's layout: each metric's mean and
    standard error over the samples (lm-eval's ``mean`` / ``mean_stderr``), the config with
    its metadata, ``higher_is_better``, ``n-samples`` and the model's name."""
    from fireact_eval.scoring import higher_is_better

    values: dict[str, list[float]] = {}
    for sample in samples:
        for name in sample["metrics"]:
            values.setdefault(name, []).append(float(sample[name]))
    results = {}
    for name, column in values.items():
        n, mean = len(column), sum(column) / len(column)
        results[f"{name},none"] = mean
        results[f"{name}_stderr,none"] = (
            math.sqrt(sum((v - mean) ** 2 for v in column) / (n - 1) / n) if n > 1 else 0.0)
    record = {
        "results": {task: {"alias": task, **results}},
        "configs": {task: {"task": task, "metadata": metadata}},
        "higher_is_better": {task: {name: higher_is_better(name) for name in values}},
        "n-samples": {task: {"original": len(samples), "effective": len(samples)}},
        "config": {"model": "imported", "model_args": {"pretrained": label}},
        "model_name": label,
    }
    write_atomic(folder / f"samples_{task}_{stamp}.jsonl",
                 "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
    write_atomic(folder / f"results_{stamp}.json", json.dumps(record, indent=2))
