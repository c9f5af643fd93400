"""inspect_ai's ``.eval`` logs of our tasks, read as lm-eval runs.

A log written by ``inspect eval fireact_eval/<dataset>`` holds, per sample, our scorer's
metrics and the trajectory (``inspect_tasks``); read through inspect's own reader, it is
written once in lm-eval's layout under the cache (keyed by the log's content), so
``results``, ``report`` and ``gate`` compare agents evaluated in inspect as they compare
lm-eval runs, question by question.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fireact_eval.catalog import task_name
from fireact_eval.errors import FireactError
from fireact_eval.paths import cache_root

__all__ = ["is_inspect_log", "inspect_logs", "as_lm_eval_run"]

SUFFIX = ".eval"


def is_inspect_log(path: Path) -> bool:
    return path.is_file() and path.suffix == SUFFIX


def inspect_logs(path: Path) -> list[Path]:
    """The ``.eval`` logs a spec names: the file itself, or those under a folder that holds
    no lm-eval results file."""
    if is_inspect_log(path):
        return [path]
    if path.is_dir() and not any(path.rglob("results_*.json")):
        return sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
    return []


def as_lm_eval_run(log_path: Path) -> Path:
    """The results file of ``log_path`` in lm-eval's layout, written once under the cache."""
    digest = hashlib.sha256(log_path.read_bytes()).hexdigest()[:16]
    folder = cache_root() / "inspect-runs" / digest
    found = sorted(folder.glob("results_*.json"))
    if found:
        return found[-1]
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise FireactError(f"{log_path}: reading inspect logs needs inspect_ai: pip install "
                           "'fireact-eval[inspect]'") from None
    from fireact_eval.harness.run_files import sample_record, write_run

    log = read_eval_log(str(log_path))
    recorded = (log.eval.metadata or {}).get("fireact")
    if recorded is None:
        raise FireactError(f"{log_path}: not a log of a fireact task (inspect eval "
                           "fireact_eval/<dataset>)")
    samples = []
    for number, sample in enumerate(log.samples or []):
        scores = [s for s in (sample.scores or {}).values() if "trajectory" in (s.metadata or {})]
        if not scores:  # a sample that errored before it was scored
            continue
        doc = sample.metadata["doc"]
        samples.append(sample_record(number, doc, str(doc["question"]), recorded,
                                     scores[0].metadata["trajectory"],
                                     scores[0].metadata["metrics"]))
    if not samples:
        raise FireactError(f"{log_path}: no scored sample")
    stamp = log.eval.created.replace(":", "-").replace("+", "")[:26]
    write_run(folder, task_name(str(recorded["dataset"])), recorded, samples, log.eval.model,
              stamp)
    return sorted(folder.glob("results_*.json"))[-1]
