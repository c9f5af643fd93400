"""lm-eval task configs for fireact-eval (installed as ``fireact_eval.tasks``).

``TASKS_DIR`` is what ``fireact-eval tasks-dir`` prints for ``lm_eval --include_path``.
"""

from pathlib import Path

TASKS_DIR = str(Path(__file__).resolve().parent)


def task_names() -> set[str]:
    """Every task (and group) defined here: one YAML file each, named as the task."""
    return {path.stem for path in Path(TASKS_DIR).glob("fireact*.yaml")}


def base_metadata(dataset: str) -> dict:
    """What the base task of ``dataset`` (``fireact_<dataset>``) sets in its ``metadata``:
    the variant table's row, for code that rolls the task out without lm-eval (GRPO)."""
    from fireact_eval.tasks._generate_variants import BASES

    return dict(BASES[dataset])
