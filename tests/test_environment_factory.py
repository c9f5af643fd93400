"""``FireactEnvironment``: our environment as TRL's ``environment_factory`` takes it (tools
from its public methods' type hints and docstrings, ``reset`` per row, ``get_reward``)."""

import json

import pytest

from fireact_eval.errors import FireactError
from fireact_eval.trainers.environment_factory import (
    ENDED,
    FireactEnvironment,
    environment_factory,
    training_rows,
)


def _supporting(doc_id: str) -> list[str]:
    from fireact_eval.tools.world import world_folder

    for line in (world_folder() / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] == doc_id:
            return row["supporting"]
    raise KeyError(doc_id)


def test_an_episode_as_trls_tool_loop_runs_it():
    factory = environment_factory("fireact_world", {"max_turns": "4"})
    rows = training_rows("fireact_world", {"n": "3"})
    assert rows[0]["prompt"][0]["role"] == "user" and rows[0]["doc"]["id"].startswith(
        "world-train-")
    env = factory()
    assert isinstance(env, FireactEnvironment)
    row = rows[0]
    assert env.reset(**row) is None
    first, second = _supporting(row["doc"]["id"])
    assert env.search(first).startswith(f"{first}:")
    assert env.search(second).startswith(f"{second}:")
    assert env.finish(row["doc"]["answer"]) == "Answer recorded."
    assert env.get_reward() == 1.0 and env.search(first) == ENDED
    env.reset(**rows[1])  # a new episode, unanswered: no reward
    assert env.get_reward() == 0.0


def test_each_rollout_draws_its_own_faults_and_the_turn_limit_holds():
    factory = environment_factory("fireact_world", {"noise": "none", "noise_p": "0.5",
                                                    "max_turns": "3"})
    row = training_rows("fireact_world", {"n": "1"})[0]
    title = _supporting(row["doc"]["id"])[0]
    seen = []
    for _ in range(12):
        env = factory()
        env.reset(**row)
        seen.append(env.search(title))
    assert "None" in seen and any(s.startswith(f"{title}:") for s in seen)
    env.search(title)
    env.search(title)
    assert env.env.done and env.search(title) == ENDED


def test_trl_reads_the_tools_schemas_from_the_methods():
    from transformers.utils import get_json_schema

    env = environment_factory("fireact_world")()
    search, finish = get_json_schema(env.search), get_json_schema(env.finish)
    assert search["function"]["parameters"]["required"] == ["query"]
    assert "best-matching passage" in search["function"]["description"]
    assert finish["function"]["parameters"]["properties"]["answer"]["type"] == "string"


def test_training_reads_the_training_split_and_refuses_a_bad_setting():
    with pytest.raises(FireactError, match="split=test trains on the evaluation questions"):
        environment_factory("fireact_world", {"split": "test"})
    with pytest.raises(FireactError, match="unknown noise='loud'"):
        environment_factory("fireact_world", {"noise": "loud"})
    with pytest.raises(FireactError, match="rows with a 'doc'"):
        environment_factory("fireact_world")().reset(prompt="hi")
