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

SETTINGS = ("method", "shots", "format", "noise", "search")
DEFAULTS = {"method": "react", "shots": "fewshot", "format": "plain", "noise": "off",
            "search": "local"}
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


def load_runs(specs: list[str]) -> pd.DataFrame:
    """A row per (run, task): label, task, dataset, settings, n, score (the headline metric),
    score_stderr, and every ``metric`` / ``metric_stderr`` the run reported."""
    rows = []
    for run in find_runs(specs):
        results = read_json(run.results_file, "results file")
        for task, metrics in (results.get("results") or {}).items():
            config = (results.get("configs") or {}).get(task)
            if config is None:  # a group's aggregate row, not a task
                continue
            meta = {**DEFAULTS, **(config.get("metadata") or {})}
            row = {"model": run.label, "task": task, "dataset": dataset_of(task),
                   **{k: str(meta[k]) for k in SETTINGS},
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
    return pd.DataFrame(rows)


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
