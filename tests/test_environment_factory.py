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


def test_trls_grpo_trainer_trains_a_step_in_our_environment(untrained_model, tmp_path,
                                                             monkeypatch):
    """``GRPOTrainer(environment_factory=...)`` as a TRL user writes it: a step of GRPO with
    our environment (its tools offered through the chat template TRL recognises: the
    Qwen 2.5 one TRL ships), each rollout reset on its row and rewarded by our scorer."""
    from pathlib import Path

    import trl
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from fireact_eval.trainers.train import old_names_quiet

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    tokenizer = AutoTokenizer.from_pretrained(untrained_model)
    tokenizer.chat_template = (Path(trl.__file__).parent / "chat_templates"
                               / "qwen2_5.jinja").read_text()
    made = []
    factory = environment_factory("fireact_world", {"noise": "none"})

    def tracked():
        made.append(factory())
        return made[-1]

    trainer = GRPOTrainer(
        AutoModelForCausalLM.from_pretrained(untrained_model), processing_class=tokenizer,
        args=GRPOConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                        num_generations=2, max_completion_length=16, report_to=[],
                        use_cpu=True, save_strategy="no", max_tool_calling_iterations=2),
        train_dataset=training_rows("fireact_world", {"n": "2"}), environment_factory=tracked)
    with old_names_quiet():  # TRL's own use of a name transformers 5 deprecated
        trainer.train()
    [logged] = [h for h in trainer.state.log_history if "reward" in h]
    assert "rewards/FireactEnvironment/mean" in logged and logged["reward"] == 0.0
    assert sum(env.env is not None for env in made) == 2  # each rollout reset on its row


def test_the_tools_trl_renders_are_the_evaluations_own():
    """TRL reads a tool's schema from its signature and docstring: ours come out as the
    schemas an evaluation's tools layout shows (``tool_schemas``), word for word."""
    from transformers.utils import get_json_schema

    from fireact_eval.tool_calls import tool_schemas

    search, finish = tool_schemas(["search"])
    assert get_json_schema(FireactEnvironment.search) == search
    assert get_json_schema(FireactEnvironment.finish) == finish


def test_trl_reads_a_hermes_call_as_our_parser_does(untrained_model):
    pytest.importorskip("trl")
    """``--loop environment_factory`` on a model without a tool template: the shipped Hermes
    template, and a response template TRL parses its calls with, reading a reply as the
    evaluation's parser reads it."""
    from transformers import AutoTokenizer
    from trl.chat_template_utils import parse_response

    from fireact_eval.rollout_settings import RolloutSettings
    from fireact_eval.tool_calls import PARSERS, tool_schemas
    from fireact_eval.trainers.grpo import trl_tool_tokenizer

    settings = RolloutSettings.from_metadata({"format": "tools", "tool_template": "hermes"})
    tokenizer = trl_tool_tokenizer(settings, AutoTokenizer.from_pretrained(untrained_model),
                                   "tiny")
    reply = ('I should look it up.\n<tool_call>\n{"name": "search", "arguments": '
             '{"query": "Rome"}}\n</tool_call><|im_end|>')
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Where?"}],
                                           tools=tool_schemas(["search"]), tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(reply, add_special_tokens=False).input_ids
    parsed = parse_response(tokenizer, ids, prefix=tokenizer(prompt, add_special_tokens=False
                                                              ).input_ids,
                            tools=[FireactEnvironment.search, FireactEnvironment.finish])
    thought, [call] = PARSERS["hermes"](reply.removesuffix("<|im_end|>"))
    assert parsed["content"].strip() == thought.strip() == "I should look it up."
    [trl_call] = parsed["tool_calls"]
    assert trl_call["function"] == {"name": call.name, "arguments": call.arguments}


def test_a_template_trl_cannot_read_is_one_line(untrained_model):
    pytest.importorskip("trl")
    from transformers import AutoTokenizer

    from fireact_eval.rollout_settings import RolloutSettings
    from fireact_eval.trainers.grpo import trl_tool_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(untrained_model)
    tokenizer.chat_template = ("{% for m in messages %}[{{ m.role }}] {{ m.content }}"
                               "{% endfor %}{# tools: <tool_call> #}")
    settings = RolloutSettings.from_metadata({"format": "tools"})
    with pytest.raises(FireactError, match="TRL cannot read tiny's tool calls"):
        trl_tool_tokenizer(settings, tokenizer, "tiny")
