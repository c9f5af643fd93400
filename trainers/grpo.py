"""``fireact-eval train --method grpo``: GRPO through TRL's ``GRPOTrainer``, in the
environment the agent is evaluated in.

TRL does the RL: groups of rollouts per question, each rollout's advantage its reward
against its group's, the clipped policy objective, the optional KL to the starting policy,
LoRA through peft, checkpoints.  This module only wires it to ours: a ``rollout_func`` that
runs our rollout engine (``rollout.run_episodes``: the task's search tool, its noise, its
turn limit) with the policy being trained, rewards from our scorers (the dataset's exact
match or accuracy, optionally a format term), and each rollout turned into token ids by the
same segments the SFT loss is masked by (``data.segments``): the agent's own turns carry
the loss (``env_mask`` 1), the prompt and every observation none.

``--loop environment_factory`` hands the rollouts to TRL's own tool loop instead, over the
same environment (``trainers.environment_factory``): TRL generates, parses the calls with
its response template and calls our tools; docs/training.md says how that loop differs
from the evaluated one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.trainers.encode import IGNORE, encode
from fireact_eval.transcript import STOP_SEQUENCES

Reward = Callable[..., list[float]]


def rollout_settings(cfg) -> tuple[Any, dict]:
    """The rollout settings of the dataset's task (its YAML's metadata, then ``--metadata``
    as ``lm_eval`` reads it; zero-shot in FireAct's alpaca template unless told) and the
    question options among them, checked as every door checks them (``check_metadata``:
    no unknown key, the training split unless ``--train-on-test``); a setting given both
    as a flag and in ``--metadata`` is one value or an error."""
    from fireact_eval.catalog import DATASETS
    from fireact_eval.options import parse_pairs
    from fireact_eval.rollout_settings import DATA_KEYS, check_metadata

    if cfg.data not in DATASETS:
        raise FireactError(f"--data for grpo names a dataset ({', '.join(DATASETS)}), got "
                           f"{cfg.data!r}; your own questions: --metadata questions=PATH")
    from fireact_eval.tasks import base_metadata

    metadata: dict[str, Any] = {**base_metadata(cfg.data), "shots": "zeroshot",
                                "format": "alpaca", "split": "train"}
    given = parse_pairs(cfg.metadata, "--metadata")
    for key, flag, value in (("format", "--format", cfg.format),
                             ("max_turns", "--max-turns", cfg.max_turns),
                             ("tool_template", "--tool-template", cfg.tool_template)):
        if key in given and str(given[key]) != str(value) and not (
                key == "format" and value == "auto"):
            raise FireactError(f"--metadata {key}={given[key]} and {flag} {value}"
                               f"{' (its default)' if key == 'max_turns' else ''}: give "
                               f"{key} once, as {flag}")
    if cfg.format != "auto":
        given["format"] = cfg.format
    metadata.update(given)
    metadata["max_turns"] = cfg.max_turns
    if metadata["format"] == "tools":
        metadata.setdefault("tool_template", cfg.tool_template)
    checked = check_metadata(metadata, where="--metadata", training=True,
                             train_on_test=cfg.train_on_test)
    settings = checked.settings
    if settings.format == "chat" or settings.method != "react":
        raise FireactError("grpo rolls out ReAct agents in a text prompt (format plain or "
                           "alpaca) or as native tool calls (format tools)")
    if cfg.loop == "environment_factory" and settings.format != "tools":
        raise FireactError("--loop environment_factory is TRL's tool loop, where the policy "
                           "calls tools natively: give --format tools (and --tool-template "
                           "hermes for a model without a tool template)")
    source = {k: v for k, v in metadata.items() if k in DATA_KEYS}
    return settings, source


def trained_environment(dataset: str, settings: Any) -> dict[str, Any]:
    """The rollout settings GRPO trained under that its task does not set by itself (speed
    options left out): what an evaluation needs in ``--metadata`` to run in the same
    environment (``shots``, ``format``, ``search``, ``noise``, ``max_turns`` ...)."""
    from fireact_eval.rollout_settings import RolloutSettings
    from fireact_eval.tasks import base_metadata

    task = RolloutSettings.from_metadata(base_metadata(dataset)).as_metadata()
    changes = {f.name for f in dataclasses.fields(settings)
               if f.metadata.get("changes_results", True)}
    return {k: ",".join(map(str, v)) if isinstance(v, list) else v
            for k, v in settings.as_metadata().items() if k in changes and task.get(k) != v}


def training_docs(dataset: str, source: dict) -> list[dict]:
    """The training questions of ``dataset`` (its ``split=train``), or ``questions=PATH``,
    through the task system's own loader."""
    from fireact_eval import questions

    load = getattr(questions, dataset)  # already a hook: accepts_question_file
    docs = list(load(**{"split": "train", **source})["test"])  # split: checked by the door
    if not docs:
        raise FireactError(f"{dataset}: no training questions")
    return docs


def policy_generate(model: Any, tokenizer: Any, temperature: float) -> Callable:
    """The engine's ``generate`` (one batched call over (context, gen_kwargs) pairs) by the
    policy being trained: sampled, stopped at the task's stop strings, as lm-eval's hf
    backend would return it."""
    import torch

    def generate(requests: list[tuple[str, dict]]) -> list[str]:
        kwargs = requests[0][1]
        until = list(kwargs.get("until", STOP_SEQUENCES))
        tokenizer.padding_side = "left"
        batch = tokenizer([context for context, _ in requests], return_tensors="pt",
                          padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**batch, do_sample=True, temperature=temperature,
                                 max_new_tokens=int(kwargs["max_gen_toks"]),
                                 stop_strings=until, tokenizer=tokenizer,
                                 pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                       skip_special_tokens=True)
        return [_cut(text, until) for text in texts]

    return generate


def _cut(text: str, until: Sequence[str]) -> str:
    for stop in until:
        text = text.split(stop, 1)[0]
    return text


def rollout_ids(segments: Sequence[tuple[str, bool]], tokenizer: Any, cutoff: int
                ) -> tuple[list[int], list[int], list[int]]:
    """A rollout's (text, trained) segments as TRL takes them: prompt ids, completion ids
    and the completion's mask (1: the agent wrote it and it carries the loss; 0: an
    observation), tokenized piece by piece exactly as ``trainers.encode`` tokenizes a
    training row of it for SFT."""
    encoded = encode(list(segments), tokenizer, cutoff, train_on_inputs=False)
    ids, labels = encoded["input_ids"], encoded["labels"]
    # the prompt is what comes before the agent's first own token
    context = next((i for i, label in enumerate(labels) if label != IGNORE), len(ids))
    return ids[:context], ids[context:], [int(label != IGNORE) for label in labels[context:]]


def make_rollout_func(settings: Any, docs: dict[str, dict], dataset: str, cutoff: int,
                      temperature: float, max_gen_toks: int) -> Callable:
    """TRL's ``rollout_func``: each prompt it is given (its sampler repeats every question
    ``group_size`` times) rolled out once by our engine, with what the rewards read."""
    from fireact_eval.data.segments import rollout_segments
    from fireact_eval.rollout import run_episodes
    from fireact_eval.scoring import tries_correct
    from fireact_eval.trainers.environment_factory import answered_cleanly

    pools: dict = {}
    gen_kwargs = {"until": list(STOP_SEQUENCES), "max_gen_toks": max_gen_toks}
    layouts: list = []  # format=tools: the policy tokenizer's, resolved at the first batch

    def rollout(prompts: list[str], trainer: Any) -> dict[str, list]:
        model = trainer.accelerator.unwrap_model(trainer.model)
        tokenizer = trainer.processing_class
        step = trainer.state.global_step
        # each rollout's noise its own: by question, training step and place in the batch
        episodes = [settings.episode(p, gen_kwargs, f"{docs[p].get('id', p)}:{step}:{i}", pools)
                    for i, p in enumerate(prompts)]
        if settings.format == "tools":
            layouts[:] = layouts or [tool_layout(settings, tokenizer)]
            for episode in episodes:
                layouts[0].apply(episode, tokenizer)
        trajectories = run_episodes(episodes, policy_generate(model, tokenizer, temperature),
                                    progress=False)
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "env_mask": [],
                                "correct": [], "well_formed": []}
        for prompt, episode, trajectory in zip(prompts, episodes, trajectories, strict=True):
            segments = (layouts[0].segments(tokenizer, prompt, trajectory.steps,
                                            tools=list(episode.tools)) if layouts
                        else rollout_segments(prompt, trajectory.steps))
            prompt_ids, completion_ids, mask = rollout_ids(segments, tokenizer, cutoff)
            out["prompt_ids"].append(prompt_ids)
            out["completion_ids"].append(completion_ids)
            out["env_mask"].append(mask)
            [right] = tries_correct(dataset, docs[prompt], [trajectory])
            out["correct"].append(float(right))
            out["well_formed"].append(answered_cleanly(trajectory))
        out["logprobs"] = None  # TRL scores the ids itself (no importance correction)
        return out

    return rollout


def trl_tool_tokenizer(settings: Any, tokenizer: Any, model: str) -> Any:
    """The policy tokenizer as TRL's tool loop reads it: the layout's chat template (the
    shipped Hermes one for ``--tool-template hermes``) and a response template TRL parses
    calls with: TRL's own for a template it knows, else, for Hermes-style calls on ChatML,
    the Qwen one TRL ships for the same convention; one line for any other."""
    import transformers
    from packaging.version import Version

    if Version(transformers.__version__) < Version("5.13"):
        raise FireactError("--loop environment_factory needs transformers 5.13 or later (TRL's "
                           f"response templates); installed {transformers.__version__}")
    from trl.chat_template_utils import add_response_schema, qwen3_template

    layout = tool_layout(settings, tokenizer)
    if layout.template is not None:
        tokenizer.chat_template = layout.template
    if getattr(tokenizer, "response_template", None) is not None:
        return tokenizer
    try:
        return add_response_schema(tokenizer)
    except ValueError:
        pass
    if layout.parser_name == "hermes" and "<|im_start|>assistant" in tokenizer.chat_template:
        tokenizer.response_template = qwen3_template
        return tokenizer
    raise FireactError(f"--loop environment_factory: TRL cannot read {model}'s tool calls "
                       "(its chat template is not one TRL knows); give --tool-template hermes, "
                       "or --loop rollout_func")


def check_prompts_fit(settings: Any, tokenizer: Any, prompts: list[str], cutoff: int) -> None:
    """Every question's first context (in the tools layout: the template with its schemas,
    which also checks that the tokenizer has one) fits in ``--cutoff`` tokens with room for
    the agent's turns; TRL's own failure comes as an IndexError after the model loads."""
    from fireact_eval.catalog import SEARCH

    layout = tool_layout(settings, tokenizer) if settings.format == "tools" else None
    longest = 0
    for prompt in prompts:
        text = (layout.render(tokenizer, prompt, [], tools=[SEARCH]) if layout
                else prompt)
        longest = max(longest, len(tokenizer(text, add_special_tokens=False).input_ids))
    if longest >= cutoff // 2:
        raise FireactError(f"--cutoff {cutoff}: the longest question's prompt is {longest} "
                           f"tokens{' (the tools layout renders the schemas)' if layout else ''}"
                           f", leaving no room for the agent's turns; give --cutoff "
                           f"{max(1024, 2 ** (2 * longest).bit_length())} or more")


def tool_layout(settings: Any, tokenizer: Any) -> Any:
    """The policy tokenizer's tools layout (its template or the shipped one, its parser),
    or one line saying why it has none."""
    from fireact_eval.tool_calls import resolve_layout

    return resolve_layout(tokenizer, settings.tool_template, settings.tool_parser,
                          model=str(getattr(tokenizer, "name_or_path", "") or "--base"))


def correctness(completions: list, correct: list[float], **_: Any) -> list[float]:
    """The dataset's own score of each rollout: exact match (HotpotQA, Bamboogle, the
    demo) or accuracy (StrategyQA, MMLU)."""
    return list(correct)


def well_formed(completions: list, well_formed: list[float], **_: Any) -> list[float]:
    """1 for a rollout that finished with no invalid action."""
    return list(well_formed)


def continuing(cfg):
    """``cfg`` with the LoRA shape of its ``--init-adapter`` (rank, alpha, dropout), which
    the continued adapter keeps whatever ``--lora-r`` says: the card and the vLLM command
    (its ``max_lora_rank``) must name the adapter that is saved."""
    if not cfg.init_adapter:
        return cfg
    from fireact_eval.jsonio import read_json

    adapter = read_json(Path(cfg.init_adapter) / "adapter_config.json", "--init-adapter")
    return dataclasses.replace(cfg, lora_r=int(adapter["r"]),
                               lora_alpha=int(adapter["lora_alpha"]),
                               lora_dropout=float(adapter.get("lora_dropout", 0.0)))


def train_grpo(cfg, rewards: list[Reward] | None = None) -> dict:
    """GRPO from ``cfg.base`` (or its ``init_adapter``), the card written as SFT writes it.
    ``rewards`` replaces the reward functions (Python only: the tests' constant reward)."""
    from fireact_eval.trainers.train import card_of, eval_commands, save_card

    cfg = continuing(cfg)
    trainer, run = build_trainer(cfg, rewards)
    result = trainer.train(resume_from_checkpoint=str(run["resume_from"])
                           if run["resume_from"] else None)
    trainer.save_model(cfg.out)
    card = card_of(cfg, trainer, result, run["data_sha256"], run["settings"].format,
                   run["questions"],
                   run["host_allocator"], [cfg.data])
    history = trainer.state.log_history
    card.rewards = [round(e["reward"], 4) for e in history if "reward" in e]  # per step
    # everything the rollouts were made in: the settings and the questions (split, n, ...)
    card.rollout_settings = {**run["settings"].as_metadata(), **run["source"]}
    card.train_on_test = cfg.train_on_test
    card.eval_commands = eval_commands(cfg, run["settings"].format, [cfg.data],
                                       environment=trained_environment(cfg.data,
                                                                       run["settings"]))
    return save_card(cfg, trainer, trainer.processing_class, card)


def build_trainer(cfg, rewards: list[Reward] | None = None) -> tuple[Any, dict]:
    """TRL's trainer, wired to our environment, and what the card records of the run."""
    import datasets
    from transformers import AutoModelForCausalLM, set_seed

    from fireact_eval.jsonio import write_atomic
    from fireact_eval.prompts import build_prompt
    from fireact_eval.trainers.train import (
        RUN_RECORD,
        _precision,
        check_lora_targets,
        load_tokenizer,
        lora_config,
        old_names_quiet,
        run_arguments,
        start_run,
    )

    try:
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        raise FireactError("--method grpo needs TRL: pip install 'fireact-eval[rl]'") from None

    class QuietGRPOTrainer(GRPOTrainer):
        """TRL's, without the FutureWarning its generation step raises on every batch."""

        def train(self, *args, **kwargs):
            with old_names_quiet():
                return super().train(*args, **kwargs)

    settings, source = rollout_settings(cfg)
    docs = training_docs(cfg.data, source)
    docs = docs[:cfg.limit] if cfg.limit else docs
    settings.build_tools()  # a missing corpus or index fails before the model loads
    by_prompt = {build_prompt(d["question"], settings.method, settings.shots, settings.format,
                              settings.family): d for d in docs}
    data_sha256 = hashlib.sha256(json.dumps(docs, sort_keys=True, default=str).encode()
                                 ).hexdigest()
    tokenizer = load_tokenizer(cfg)
    trl_loop = cfg.loop == "environment_factory"
    if trl_loop:
        tokenizer = trl_tool_tokenizer(settings, tokenizer, cfg.base)
    # the layout and the prompts' length, before --force replaces anything in OUT
    check_prompts_fit(settings, tokenizer, list(by_prompt), cfg.cutoff)
    run = start_run(cfg, data_sha256, tokenizer)
    set_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(cfg.base, attn_implementation=cfg.attention)
    peft_config = None
    if cfg.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
    elif cfg.grpo_weights == "lora":
        check_lora_targets(cfg, model)
        peft_config = lora_config(cfg)
    if trl_loop:  # TRL's loop: our environment's tools, its get_reward (weight 1) added
        from fireact_eval.trainers.environment_factory import factory_of, rows_of
        from fireact_eval.trainers.environment_factory import well_formed as answered_cleanly

        reward_funcs = rewards or ([answered_cleanly] if cfg.reward == "em+format" else None)
        weights = None if rewards or not reward_funcs else [cfg.format_weight]
        loop: dict[str, Any] = {
            "train_dataset": rows_of(list(by_prompt.values()), list(by_prompt)),
            "environment_factory": factory_of(settings, cfg.data)}
        # every turn's call is run; each of TRL's generations (a turn) gets --max-gen-toks
        budget = {"max_tool_calling_iterations": cfg.max_turns,
                  "generation_kwargs": {"max_new_tokens": cfg.max_gen_toks}}
    else:
        reward_funcs = rewards or [correctness, *([well_formed] if cfg.reward == "em+format"
                                                  else [])]
        weights = None if rewards else [1.0, cfg.format_weight][:len(reward_funcs)]
        loop = {"train_dataset": datasets.Dataset.from_list([{"prompt": p} for p in by_prompt]),
                "rollout_func": make_rollout_func(settings, by_prompt, cfg.data, cfg.cutoff,
                                                  cfg.temperature, cfg.max_gen_toks)}
        budget = {}
    args = GRPOConfig(
        **run_arguments(cfg),
        num_generations=cfg.group_size,
        beta=cfg.kl,
        temperature=cfg.temperature,
        max_completion_length=cfg.cutoff,
        reward_weights=weights,
        **budget,
        **{"bf16": False, **_precision(cfg.bf16)},  # TRL's own default is bf16 on
        **cfg.extra,
    )
    with old_names_quiet():
        trainer = QuietGRPOTrainer(
            model=model, reward_funcs=reward_funcs, args=args, processing_class=tokenizer,
            peft_config=peft_config, **loop)
    if trainer.is_world_process_zero():
        write_atomic(Path(args.output_dir) / RUN_RECORD, json.dumps(run.record, indent=2))
    return trainer, {"resume_from": run.resume_from, "data_sha256": data_sha256,
                     "questions": len(docs), "host_allocator": run.host_allocator,
                     "settings": settings, "source": source}
