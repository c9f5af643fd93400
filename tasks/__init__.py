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


def task_metadata(name: str) -> dict:
    """The ``metadata`` the YAML of task ``name`` sets (each variant's file holds the whole
    of it), read without lm-eval: what an experiment checks its settings against."""
    import yaml

    class Tags(yaml.SafeLoader):  # ``!function`` names code: not needed for the metadata
        pass

    Tags.add_multi_constructor("!", lambda loader, suffix, node: None)
    config = yaml.load((Path(TASKS_DIR) / f"{name}.yaml").read_text(encoding="utf-8"),
                       Loader=Tags)
    return dict(config.get("metadata") or {})
