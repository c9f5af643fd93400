"""GRPO through TRL in our environment (``trainers/grpo.py``), with the tiny agent: a step
changes the weights, observations get no gradient, a reward of 0 everywhere changes
nothing, and the CLI writes the card SFT writes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("trl")

from fast_python import python as fast_python

from fireact_eval.trainers.encode import IGNORE, encode  # noqa: E402
from fireact_eval.trainers.train import TrainConfig  # noqa: E402

from conftest import cli_in_process


@pytest.fixture
def known_questions(tmp_path) -> Path:
    """The questions the tiny agent was trained to answer, as a questions file."""
    from tiny_agent import demo_questions

    path = tmp_path / "questions.json"
    path.write_text(json.dumps([{"question": q["question"], "answer": q["answer"]}
                                for q in demo_questions()]))
    return path


def config(tmp_path, model: Path, questions: Path, **changes) -> TrainConfig:
    values = {"base": str(model), "data": "demo", "out": str(tmp_path / "grpo"),
              "method": "grpo", "grpo_weights": "full", "group_size": 2, "batch_size": 2,
              "max_steps": 1, "learning_rate": 1e-3, "warmup": 0, "max_turns": 3,
              "max_gen_toks": 24, "gradient_checkpointing": False, "limit": 2,
              "metadata": ["format=plain", f"questions={questions}"], "save_steps": 1000}
    return TrainConfig(**{**values, **changes})


def length(completions, **_):  # varies within a group: every advantage is not 0
    return [float(len(c)) / 100 for c in completions]


def zero(completions, **_):
    return [0.0] * len(completions)


def weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_the_stop_strings_are_the_tasks():
    import yaml

    from fireact_eval.tasks import TASKS_DIR
    from fireact_eval.transcript import STOP_SEQUENCES

    text = (Path(TASKS_DIR) / "_default_template_yaml").read_text()
    until = yaml.safe_load("\n".join(line for line in text.splitlines() if "!function"
                                     not in line))["generation_kwargs"]["until"]
    assert tuple(until) == STOP_SEQUENCES


def test_grpo_trains_on_a_datasets_own_training_split():
    """``--data demo`` with no questions file: the demo's 32 training questions, none of
    them a test question, read by the task system's loader."""
    from fireact_eval import questions
    from fireact_eval.trainers.grpo import training_docs

    docs = training_docs("demo", {})
    test = {doc["question"] for doc in questions.demo()["test"]}
    assert len(docs) == 32 and not test & {doc["question"] for doc in docs}
    assert len(training_docs("demo", {"n": "5"})) == 5


def test_a_continued_adapter_keeps_its_rank_in_the_card_and_the_vllm_command(tmp_path):
    from fireact_eval.trainers.grpo import continuing
    from fireact_eval.trainers.train import eval_commands

    sft = tmp_path / "sft"
    sft.mkdir()
    (sft / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": 32,
                                                         "lora_dropout": 0.05}))
    cfg = continuing(TrainConfig(base="b", data="demo", out=str(tmp_path / "o"),
                                 method="grpo", init_adapter=str(sft), lora_r=8))
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) == (16, 32, 0.05)
    assert "max_lora_rank=16" in eval_commands(cfg, "alpaca", ["demo"])[1]


def test_a_rollouts_loss_mask_is_the_sft_loss_mask(tiny_model):
    """The ids and mask GRPO trains a rollout with are, token for token, the ids and labels
    SFT trains the same trajectory with; every observation token is masked."""
    from transformers import AutoTokenizer

    from fireact_eval.data.segments import alpaca_segments, rollout_segments
    from fireact_eval.demo import oracle_example
    from fireact_eval.prompts import build_prompt
    from fireact_eval.tools import make_search
    from fireact_eval.trainers.grpo import rollout_ids
    from fireact_eval.transcript import to_text

    from tiny_agent import demo_questions

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    question = demo_questions()[0]
    steps = oracle_example(question, make_search("local")).steps
    prompt = build_prompt(question["question"], shots="zeroshot", fmt="alpaca")
    prompt_ids, completion_ids, mask = rollout_ids(rollout_segments(prompt, steps), tokenizer,
                                                   2048)
    sft = encode(alpaca_segments({"instruction": question["question"], "input": "",
                                  "output": to_text(steps)}), tokenizer, 2048, False)
    assert prompt_ids + completion_ids == sft["input_ids"]
    assert mask == [int(label != IGNORE) for label in sft["labels"][len(prompt_ids):]]
    assert all(label == IGNORE for label in sft["labels"][:len(prompt_ids)])
    masked = tokenizer.decode([t for t, m in zip(completion_ids, mask, strict=True) if not m])
    for step in steps[:-1]:
        assert step.observation.strip()[:40] in masked
    trained = tokenizer.decode([t for t, m in zip(completion_ids, mask, strict=True) if m])
    assert "search[" in trained and "finish[" in trained
    # of an observation, only the label the agent ends its turn with carries the loss
    assert trained.count("Observation:") == len(steps) - 1
    assert not any(step.observation.strip()[:20] in trained for step in steps[:-1])


def test_a_tools_rollouts_loss_mask_is_the_sft_loss_mask_of_its_tools_row(tiny_model):
    """format=tools: a rollout rendered through the (shipped) tool template is tokenized as
    ``train`` tokenizes the tools row of the same trajectory; the mask trains the calls and
    thoughts, never the schemas or a tool's result."""
    from transformers import AutoTokenizer

    from fireact_eval.data.examples import Example, to_row
    from fireact_eval.demo import oracle_example
    from fireact_eval.prompts import build_prompt
    from fireact_eval.tool_calls import HERMES_TEMPLATE, resolve_layout, tool_segments
    from fireact_eval.tools import make_search
    from fireact_eval.trainers.grpo import rollout_ids

    from tiny_agent import demo_questions

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    question = demo_questions()[0]
    steps = oracle_example(question, make_search("local")).steps
    prompt = build_prompt(question["question"], shots="zeroshot", fmt="tools")
    layout = resolve_layout(tokenizer, "hermes")
    prompt_ids, completion_ids, mask = rollout_ids(
        layout.segments(tokenizer, prompt, steps, tools=["search"]), tokenizer, 4096)
    row = to_row(Example(question["question"], steps, "demo", "react"), "tools")
    sft = encode(tool_segments(row, tokenizer, HERMES_TEMPLATE), tokenizer, 4096, False)
    assert prompt_ids + completion_ids == sft["input_ids"]
    assert mask == [int(label != IGNORE) for label in sft["labels"][len(prompt_ids):]]
    assert "<tools>" in tokenizer.decode(prompt_ids)
    trained = tokenizer.decode([t for t, m in zip(completion_ids, mask, strict=True) if m])
    masked = tokenizer.decode([t for t, m in zip(completion_ids, mask, strict=True) if not m])
    assert trained.count("<tool_call>") == len(steps) and "<tool_response>" not in trained
    assert steps[0].observation.strip()[:40] in masked


def test_a_grpo_step_changes_the_weights_and_never_trains_an_observation(
        tmp_path, untrained_model, known_questions):
    """One real GRPO step of TRL: the weights move; the gradient on the logits is 0 at
    every completion position the rollout's mask says is an observation, and not 0 on the
    agent's own tokens.  (The untrained twin: its sampled rollouts differ, so their rewards
    do; the trained agent is too sure of itself to sample two different ones.)"""
    import torch

    from fireact_eval.trainers.grpo import build_trainer

    trainer, _ = build_trainer(config(tmp_path, untrained_model, known_questions), [length])
    masks: list = []
    rollout = trainer.rollout_func

    def recorded(prompts, t):
        out = rollout(prompts, t)
        masks.extend(out["env_mask"])
        return out

    trainer.rollout_func = recorded
    grads: list = []

    def keep(module, inputs, output):  # the last hidden states: position t feeds only the
        if output.requires_grad:       # head's prediction of token t + 1 (TRL's fused head)
            output.register_hook(lambda g: grads.append(g.detach().clone()))

    model = trainer.model
    before = weights(model)
    model.model.norm.register_forward_hook(keep)
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert masks and any(0 in m for m in masks)
    [grad] = grads
    norms = grad.norm(dim=-1)  # (rollouts, prompt + completion positions)
    start = norms.shape[1] - max(len(m) for m in masks)  # prompts left-padded to one width
    seen_agent = False
    for row, mask in enumerate(masks):
        for j, trainable in enumerate(mask):
            at = norms[row, start + j - 1]  # where completion token j is predicted
            if not trainable:
                assert at == 0, (row, j)
            seen_agent |= bool(trainable and at > 0)
    assert seen_agent


def test_a_reward_of_zero_everywhere_leaves_the_policy_as_it_was(
        tmp_path, tiny_model, known_questions):
    """Every advantage 0 (no KL): the step's gradient is 0 and the weights do not move."""
    import torch

    from fireact_eval.trainers.grpo import build_trainer

    trainer, _ = build_trainer(config(tmp_path, tiny_model, known_questions), [zero])
    before = weights(trainer.model)
    trainer.train()
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_grpo_command_trains_a_lora_and_writes_the_card(tmp_path, tiny_model,
                                                            known_questions):
    out = tmp_path / "adapter"
    command = [fast_python(), "-m", "fireact_eval.cli", "train", "--method", "grpo", "--base",
               str(tiny_model), "--data", "demo", "--out", str(out), "--group-size", "2",
               "--batch-size", "2", "--max-steps", "2", "--max-turns", "3", "--max-gen-toks",
               "24", "--limit", "2", "--reward", "em+format", "--metadata",
               f"format=plain,questions={known_questions}", "--gradient-checkpointing",
               "false", "--save-steps", "1"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["method"] == "grpo" and card["adapter"] and card["global_step"] == 2
    assert len(card["rewards"]) == 2 and card["rollout_settings"]["max_turns"] == 3
    assert (out / "adapter_config.json").is_file()
    assert f"peft={out.resolve()}" in card["eval_commands"][0]
    assert "lm_eval --model hf" in proc.stdout
    # its checkpoints are not resumed with rollouts sampled otherwise
    again = subprocess.run([*command, "--resume", "--temperature", "0.5"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "temperature: 1.0 -> 0.5" in again.stderr, again.stderr


def test_grpo_rolls_out_and_trains_in_the_tools_layout(tmp_path, tiny_model, known_questions):
    """``train --method grpo --format tools``: the policy's rollouts are native tool calls
    through the shipped template (their context holds the schemas), and the card's command
    evaluates the adapter in that layout."""
    from fireact_eval.trainers.grpo import build_trainer

    cfg = config(tmp_path, tiny_model, known_questions, format="tools", tool_template="hermes",
                 metadata=[f"questions={known_questions}"], grpo_weights="lora",
                 cutoff=2048)
    trainer, run = build_trainer(cfg, [length])
    rollout, seen = trainer.rollout_func, []

    def recorded(prompts, t):
        out = rollout(prompts, t)
        seen.extend(out["prompt_ids"])
        return out

    trainer.rollout_func = recorded
    trainer.train()
    assert run["settings"].format == "tools" and seen
    assert all("<tools>" in trainer.processing_class.decode(ids) for ids in seen)
    from fireact_eval.trainers.train import eval_commands

    hermes = '"format": "tools", "tool_template": "hermes"'
    assert hermes in eval_commands(cfg, "tools", ["demo"])[0]


def test_grpo_through_trls_own_tool_loop(tmp_path, tiny_model, known_questions):
    """``--loop environment_factory``: TRL generates and calls our environment's tools (the
    schemas in the shipped template, each rollout reset on its question), rewarded by our
    scorer plus the format term, for ``--max-turns`` rounds of calls of at most
    ``--max-gen-toks`` tokens each."""
    from fireact_eval.trainers.environment_factory import FireactEnvironment
    from fireact_eval.trainers.grpo import build_trainer

    cfg = config(tmp_path, tiny_model, known_questions, format="tools", tool_template="hermes",
                 metadata=[f"questions={known_questions}"], grpo_weights="lora",
                 cutoff=2048, loop="environment_factory", reward="em+format",
                 max_gen_toks=40)
    trainer, run = build_trainer(cfg)
    assert trainer.rollout_func is None and trainer.max_tool_calling_iterations == 3
    assert trainer.generation_config.max_new_tokens == 40  # a turn's budget, as ours
    assert trainer.reward_func_names == ["well_formed", "FireactEnvironment"]
    assert trainer.reward_weights.tolist() == pytest.approx([cfg.format_weight, 1.0])
    trainer.train()
    envs = trainer.environments
    assert envs and all(isinstance(e, FireactEnvironment) and e.env is not None for e in envs)
    asked = {e.env.doc["question"] for e in envs}
    assert asked <= {json.loads(known_questions.read_text())[i]["question"] for i in (0, 1)}
    [logged] = [h for h in trainer.state.log_history if "reward" in h]
    assert "rewards/FireactEnvironment/mean" in logged
    assert trainer.processing_class.response_template is not None


@pytest.mark.parametrize("flags, message", [
    (["--loop", "environment_factory"], "--loop environment_factory is TRL's tool loop"),
    (["--format", "tools", "--metadata", "format=plain"], "give format once"),
    (["--metadata", "max_turns=7"], "give max_turns once, as --max-turns"),
    (["--metadata", "serach=bing"], "unknown key(s) serach"),
    (["--metadata", "split=test"], "split=test trains on the evaluation questions"),
    (["--metadata", "search=world:abc"], "the world's seed is a whole number"),
    (["--group-size", "1"], "--group-size must be at least 2"),
    (["--group-size", "4", "--batch-size", "6"], "multiple of --group-size"),
    (["--temperature", "0"], "--temperature 0"),
    (["--data", "nosuch"], "--data for grpo names a dataset"),
    (["--init-adapter", "."], "is not a LoRA adapter folder"),
])
def test_bad_grpo_settings_are_one_line_before_a_model_loads(tmp_path, flags, message):
    """In process, through the real parser, ``validate()`` and the rollout settings (the
    exit path as a process: test_trainers' settings test)."""
    base = tmp_path / "base"  # a model folder to validate(); none loads before the error
    base.mkdir()
    (base / "config.json").write_text("{}")
    proc = cli_in_process("train", "--method", "grpo", "--base", str(base), "--data",
                          "demo", "--out", str(tmp_path / "o"), *flags)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
