"""lm-eval's Python API as ``fireact-eval generate`` drives it: a model loaded once, then
one ordinary run per task x method, written with lm-eval's own ``EvaluationTracker`` (the
same result and samples files as ``lm_eval --output_path DIR --log_samples``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_model(model: str, model_args: str, batch_size: str, device: str = ""):
    """A backend by its lm-eval name, loaded once for every run.  ``hf`` without a device
    gets the GPU where there is one, else the CPU (its own default is ``cuda``: a CUDA
    assertion on a machine without one, where ``lm_eval`` itself falls back)."""
    import lm_eval.api.registry
    import lm_eval.models  # noqa: F401  (registers the backends)

    if not device and model in ("hf", "hf-auto", "huggingface"):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    extra = {"batch_size": batch_size, **({"device": device} if device else {})}
    return lm_eval.api.registry.get_model(model).create_from_arg_string(model_args, extra)


def run_and_save(lm: Any, task: str, metadata: dict, folder: Path, cache: Path,
                 **evaluate: Any) -> None:
    """``simple_evaluate`` on one task with these metadata and a turn cache, then its
    results and samples saved under ``folder``; ``evaluate`` holds more arguments."""
    import lm_eval.evaluator
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from fireact_eval.tasks import TASKS_DIR

    tracker = EvaluationTracker(output_path=str(folder))
    cache.parent.mkdir(parents=True, exist_ok=True)
    # our folder alone: every task run here is ours, and indexing lm-eval's ~10k task files
    # cost ~12 s per run on a 2-core CPU
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata=metadata)
    results = lm_eval.evaluator.simple_evaluate(
        model=lm, tasks=[task], task_manager=manager, metadata=metadata,
        log_samples=True, evaluation_tracker=tracker, use_cache=str(cache), **evaluate)
    if results is None:  # not the main process
        return
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for name in results["configs"]:
        tracker.save_results_samples(task_name=name, samples=samples[name])
