"""Our environment for TRL's ``GRPOTrainer(environment_factory=...)``.

TRL is moving tool-using RL to ``environment_factory``: a class whose public methods are the
tools the policy calls (their schemas read from type hints and docstrings), whose ``reset``
starts an episode on a dataset row, and whose ``get_reward`` scores it.  ``FireactEnvironment``
is that class over our ``environment.Environment``: ``search`` is the task's search under its
faults and turn limit, ``finish`` answers, ``get_reward`` is the task's headline score (EM or
accuracy).  TRL's own loop drives it (its chat template, its tool-call parsing, its budget),
which is not our evaluated rollout (docs/training.md says how they differ); our own GRPO loop
(``trainers.grpo``, TRL's ``rollout_func``) runs the evaluated one.

    from fireact_eval.trainers.environment_factory import environment_factory, training_rows
    factory = environment_factory("fireact_world", {"noise": "none"})
    trainer = GRPOTrainer(model, args=config, train_dataset=training_rows("fireact_world"),
                          environment_factory=factory)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from fireact_eval.catalog import FINISH, SEARCH
from fireact_eval.environment import Environment
from fireact_eval.errors import FireactError
from fireact_eval.rollout_settings import RolloutSettings
from fireact_eval.task_environment import load_task, new_environment
from fireact_eval.tool_calls import tool_docstring
from fireact_eval.trajectory import Trajectory

__all__ = ["FireactEnvironment", "environment_factory", "factory_of", "training_rows",
           "rows_of", "well_formed", "answered_cleanly"]

_EPISODES = itertools.count()  # each rollout its own fault draws, whatever instance runs it
ENDED = "The episode has ended; no more actions are taken."


class FireactEnvironment:
    """One rollout at a time of a task's environment, as TRL's tool loop calls it.  The
    tools have no return annotation and take their docstrings from ``tool_calls``, so the
    schemas TRL renders are the evaluation's own (``tool_schemas``)."""

    def __init__(self, settings: RolloutSettings, dataset: str, pools: dict | None = None
                 ) -> None:
        self.settings, self.dataset = settings, dataset
        self.pools = {} if pools is None else pools
        self.env: Environment | None = None

    def reset(self, **row: Any) -> str | None:
        """Start an episode on a training row (``training_rows``: its ``doc``)."""
        doc = row.get("doc")
        if not isinstance(doc, dict):
            raise FireactError("FireactEnvironment.reset takes rows with a 'doc' (the task's "
                               "question): build the dataset with training_rows()")
        key = f"{doc.get('id', doc['question'])}:env{next(_EPISODES)}"
        self.env = new_environment(self.settings, self.dataset, doc, key, self.pools)
        return None

    def _act(self, action: str, argument: str) -> str:
        env = self.env
        if env is None:
            raise FireactError("reset must start an episode before any tool is called")
        if env.done:
            return ENDED
        observation = env.call(action, argument)
        return ENDED if observation is None else observation

    def search(self, query: str):  # no return type: see the class
        return self._act(SEARCH, query)

    def finish(self, answer: str):
        self._act(FINISH, answer)
        return "Answer recorded."

    def get_reward(self) -> float:
        """The task's headline score of the episode (0 without an answer)."""
        if self.env is None:
            return 0.0
        scored = self.env.score()
        return float(next(iter(scored.values())))  # the scorer's headline comes first


FireactEnvironment.search.__doc__ = tool_docstring(SEARCH)
FireactEnvironment.finish.__doc__ = tool_docstring(FINISH)


def answered_cleanly(trajectory: Trajectory) -> float:
    """``--reward em+format``'s format term, in either loop: 1 for a rollout that answered
    with ``finish`` and made no invalid action."""
    return float(trajectory.finished and not trajectory.invalid_actions)


def well_formed(environments: list, **_: Any) -> list[float]:
    """The format term in TRL's loop, read from each rollout's environment."""
    return [answered_cleanly(e.env.trajectory) if e.env is not None else 0.0
            for e in environments]


def factory_of(settings: RolloutSettings, dataset: str) -> Callable[[], FireactEnvironment]:
    """A factory of ``dataset``'s environment under checked ``settings``, the tools built
    once (a missing corpus fails now) and shared by every instance."""
    settings.build_tools()
    pools: dict = {}
    return lambda: FireactEnvironment(settings, dataset, pools)


def environment_factory(task: str, overrides: dict[str, Any] | None = None
                        ) -> Callable[[], FireactEnvironment]:
    """A factory of ``task``'s environment with ``overrides`` of its settings, checked now
    (one line for a bad one; the training split, ``split=test`` refused)."""
    metadata, checked, _ = load_task(task, dict(overrides or {}), training=True)
    return factory_of(checked.settings, str(metadata["dataset"]))


def rows_of(docs: list[dict], prompts: list[str] | None = None) -> Any:
    """Questions as a ``datasets.Dataset`` TRL takes: ``prompt`` (the user's message: each
    doc's ``prompts`` entry, the task prompt the evaluation's tools layout shows, or the bare
    question, its zero-shot prompt) and ``doc`` (what ``reset`` reads)."""
    from datasets import Dataset

    texts = prompts if prompts is not None else [str(doc["question"]) for doc in docs]
    return Dataset.from_list([{"prompt": [{"role": "user", "content": text}], "doc": doc}
                              for doc, text in zip(docs, texts, strict=True)])


def training_rows(task: str, overrides: dict[str, Any] | None = None) -> Any:
    """The task's training questions as ``rows_of`` gives them."""
    _, _, docs = load_task(task, dict(overrides or {}), training=True)
    return rows_of(docs)
