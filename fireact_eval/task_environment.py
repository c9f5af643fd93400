"""A task's environment for a door outside lm-eval (an MCP server, inspect_ai, a trainer's
environment): the task's settings as its YAML and the user's overrides give them, checked
at the door as ``lm_eval --metadata`` is; its questions through the task system's own
loaders; and an ``Environment`` per question, built exactly as an lm-eval run builds its
episode (the same faults for the same question and seed).
"""

from __future__ import annotations

from typing import Any

from fireact_eval.catalog import SINGLE_TURN_METHODS
from fireact_eval.environment import Environment
from fireact_eval.errors import FireactError
from fireact_eval.rollout_settings import CheckedMetadata, RolloutSettings, check_metadata
from fireact_eval.scoring import DATASET_SCORERS

__all__ = ["load_task", "new_environment"]


def load_task(task: str, overrides: dict[str, Any], training: bool = False
              ) -> tuple[dict[str, Any], CheckedMetadata, list[dict]]:
    """A task's metadata (its YAML's, with ``overrides`` on top) checked at the door, and
    its questions through the task system's own loader; one line for anything wrong.
    ``training``: a trainer's door, whose questions are the training split's (the test
    split refused)."""
    from fireact_eval import questions
    from fireact_eval.tasks import task_metadata, task_names

    if task not in task_names():
        raise FireactError(f"unknown task {task!r} (fireact_<dataset>[_<method>]"
                           "[_noise_<condition>]; `lm_eval ls tasks` lists them)")
    metadata = {**task_metadata(task), **({"split": "train"} if training else {}), **overrides}
    checked = check_metadata(metadata, allowed=("dataset",), training=training)
    if checked.settings.method in SINGLE_TURN_METHODS:
        raise FireactError(f"{task}: method {checked.settings.method} calls no tool; serve a "
                           "react task")
    dataset = str(metadata["dataset"])
    load = getattr(questions, dataset)
    source = {k: v for k, v in metadata.items() if k in ("questions", "data_dir", "split", "n",
                                                          "sample_seed")}
    docs = list(load(**source)["test"])
    checked.settings.build_tools()  # a missing corpus or an impossible fault: now
    return metadata, checked, docs


def new_environment(settings: RolloutSettings, dataset: str, doc: dict, key: str,
                    pools: dict) -> Environment:
    """The environment of one question of ``dataset`` under ``settings`` (a door's checked
    settings; ``key``: the question's id, the key of its fault draws), its prompt the bare
    question (the door's agent has its own instructions)."""
    episode = settings.episode(str(doc["question"]), {}, key, pools)
    return Environment(episode, doc, DATASET_SCORERS[dataset])
