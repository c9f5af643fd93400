"""lm-eval result folders -> one tidy table: a row per (run, task) with its settings and metrics.

Everything downstream (leaderboards, plots, the regression gate) reads this frame or the
per-sample scores below, never lm-eval's JSON directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import find_files, iter_jsonl, read_json
from fireact_eval.scoring import QUALITY_METRICS

# Everything besides the model and the task that changes a run's numbers: the rollout
# settings (defaults from RolloutSettings, for files that do not record them all), where the
# questions came from, and how many were asked.
SETTINGS = ("method", "shots", "format", "family", "search", "max_turns", "reflect_at",
            "noise", "noise_p", "noise_seed", "data")
IDENTITY = ("model", "task", *SETTINGS, "n")
# fireact_<dataset>[_<method>][_noise_<kind>]: the naming the shipped task YAMLs follow
_VARIANT = re.compile(r"(_(io|cot|react|reflexion))?(_noise_(none|random))?$")


@dataclass(frozen=True)
class Run:
    """One ``lm_eval --output_path`` result file and the name it goes by in tables."""

    label: str
    results_file: Path


def find_runs(specs: list[str]) -> list[Run]:
    """``PATH`` or ``LABEL=PATH``; a folder means every ``results_*.json`` under it (one run
    each, labelled by the model), a file means that run."""
    runs = []
    for spec in specs:
        label, sep, rest = spec.partition("=")
        if not sep or "/" in label:
            label, rest = "", spec
        runs += [Run(label or _model_name(read_json(f, "results file")), f)
                 for f in find_files(rest, "results_*.json")]
    return runs


def _model_name(results: dict) -> str:
    args = (results.get("config") or {}).get("model_args") or {}
    if isinstance(args, dict):
        return str(args.get("peft") or args.get("lora_local_path") or args.get("pretrained")
                   or args.get("model") or results.get("model_name") or "model")
    return str(results.get("model_name") or args)


def dataset_of(task: str) -> str:
    """``fireact_hotpotqa_cot_noise_random`` -> ``hotpotqa``."""
    return _VARIANT.sub("", task).removeprefix("fireact_")


def _defaults() -> dict[str, str]:
    from fireact_eval.harness import RolloutSettings

    return {k: str(v) for k, v in RolloutSettings().as_metadata().items()}


def _settings(meta: dict, defaults: dict[str, str]) -> dict[str, str]:
    values = {k: str(meta.get(k, defaults.get(k, ""))) for k in SETTINGS if k != "data"}
    values["data"] = str(meta.get("questions") or meta.get("data_dir") or "")
    return values


def load_runs(specs: list[str]) -> pd.DataFrame:
    """A row per (run, task): label, task, dataset, settings, n, score (the headline metric),
    score_stderr, and every ``metric`` / ``metric_stderr`` the run reported.  The same run
    found twice is an error: results are never averaged."""
    rows, defaults = [], _defaults()
    for run in find_runs(specs):
        results = read_json(run.results_file, "results file")
        for task, metrics in (results.get("results") or {}).items():
            config = (results.get("configs") or {}).get(task)
            if config is None:  # a group's aggregate row, not a task
                continue
            meta = config.get("metadata") or {}
            row = {"model": run.label, "task": task, "dataset": dataset_of(task),
                   **_settings(meta, defaults),
                   "n": (results.get("n-samples") or {}).get(task, {}).get("effective"),
                   "results_file": str(run.results_file)}
            for key, value in metrics.items():
                name, _, filt = key.partition(",")
                if filt == "none" and isinstance(value, (int, float)):
                    row[name] = value
            primary = next((m for m in QUALITY_METRICS if m in row), None)
            if primary is None:
                continue
            row.update(metric=primary, score=row[primary],
                       score_stderr=row.get(f"{primary}_stderr"))
            rows.append(row)
    if not rows:
        raise FireactError("no fireact task results in " + ", ".join(specs))
    frame = pd.DataFrame(rows)
    twice = frame[frame.duplicated(list(IDENTITY), keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        files = twice[(twice[list(IDENTITY)] == first[list(IDENTITY)]).all(axis=1)]
        raise FireactError(
            f"the same run is there more than once ({first['model']}, {first['task']}, "
            f"n={first['n']}): {', '.join(files['results_file'])}; keep one (runs are never "
            "averaged) or name them apart with LABEL=PATH")
    return frame


def distinguishing(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    """The identity columns beyond ``keys`` that differ between runs sharing ``keys``: a
    table adds them to its index, so two different runs are two rows, never one mean."""
    others = [c for c in IDENTITY if c not in keys and c != "task"]
    grouped = frame.groupby(keys, dropna=False)
    return [c for c in others if (grouped[c].nunique(dropna=False) > 1).any()]


def sample_scores(results_file: str | Path, task: str, metric: str) -> dict[str, float]:
    """Per-doc values of ``metric`` from the run's ``samples_<task>_*.jsonl`` (keyed by lm-eval's
    doc hash, so two runs pair up even under different ``--limit``); empty without
    ``--log_samples``."""
    results_file = Path(results_file)
    stamp = results_file.stem.removeprefix("results_")
    path = results_file.parent / f"samples_{task}_{stamp}.jsonl"
    if not path.is_file():
        return {}
    return {str(r.get("doc_hash", r.get("doc_id"))): float(r[metric])
            for _, r in iter_jsonl(path, "samples file") if metric in r}
