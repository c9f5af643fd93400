"""LoRA or full fine-tuning on ReAct trajectories: a thin function over transformers'
``Trainer`` and peft, whose output folder ``lm_eval`` loads directly.

Multi-GPU: run the same command under ``accelerate launch`` (FSDP / DeepSpeed through an
accelerate config file); the Trainer handles the distribution.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shlex
import shutil
import warnings
from dataclasses import MISSING, asdict, dataclass, field
from functools import partial
from pathlib import Path

from fireact_eval import __version__
from fireact_eval.catalog import (
    CUTOFF,
    GRPO_LOOPS,
    HELD_OUT,
    SHORT_TOKENS_PER_TURN,
    TRAINING_DATASETS,
    task_name,
)
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import output_folder, refuse_foreign_folder, write_atomic
from fireact_eval.options import option
from fireact_eval.shell import lm_eval_metadata
from fireact_eval.tool_calls import HERMES_TEMPLATE
from fireact_eval.trainers.allocator import ALLOCATORS, active, return_freed_memory
from fireact_eval.trainers.encode import build_examples, pad_collate
from fireact_eval.training_card import CARD_FILE, TrainingCard

FINE_TUNING_METHODS = ("lora", "full", "grpo")  # train --method (prompting methods: catalog)
RUN_RECORD = "fireact_run.json"  # in OUT/checkpoints: what the checkpoints were trained on
# what a resumed run must share with the checkpoints it resumes (epochs and max_steps may
# grow: that is what resuming is for; memory and logging settings change no weight)
RESUME_FIXED = ("base", "method", "cutoff", "train_on_inputs", "limit", "lora_r", "lora_alpha",
                "lora_dropout", "target_modules", "learning_rate", "batch_size", "grad_accum",
                "warmup", "seed", "eval_split")
# and for GRPO, what makes its rollouts and rewards
GRPO_RESUME_FIXED = ("loop", "grpo_weights", "init_adapter", "group_size", "kl", "reward",
                     "format_weight", "max_turns", "max_gen_toks", "temperature", "metadata")


@dataclass
class TrainConfig:
    """One fine-tuning run.  Defaults are FireAct's LoRA recipe (r=8, alpha=16, dropout
    0.05, lr 3e-4, cutoff 512); ``fireact-eval train`` makes a flag of each field."""

    # data
    base: str = option(MISSING, "base model: local folder or Hub name", "data")
    data: str = option(MISSING, "chat .jsonl (messages) or alpaca .json/.jsonl; for grpo, "
                       "the dataset whose training questions it rolls out on ("
                       f"{', '.join(TRAINING_DATASETS + ('demo',))}; questions=PATH in "
                       "--metadata for yours)",
                       "data")
    out: str = option(MISSING, "output folder (adapter or model, tokenizer, card)", "data")
    cutoff: int = option(CUTOFF, "max tokens per example", "data")
    train_on_inputs: bool = option(False, "also train on question and observations "
                                   "(FireAct's behaviour)", "data")
    limit: int = option(0, "train on the first LIMIT rows only (0: all)", "data")
    format: str = option("auto", "the agent's layout: SFT reads it from --data's rows (auto, "
                         "or the layout they must be in); grpo rolls out in it (auto: "
                         "alpaca)", "data", choices=("auto", "plain", "alpaca", "chat", "tools"))
    tool_template: str = option("model", "tools rows (messages + tools): render them through "
                                "the model's own chat template, or hermes (the shipped "
                                "tool template, for a model without one)", "data",
                                choices=("model", "hermes"))
    origin: str = option("", "where the data came from, recorded in the card (a teacher, "
                         "a self-improvement round)", "data")
    # method
    method: str = option("lora", "lora or full fine-tuning on trajectories, or grpo: RL in "
                         "our environment through TRL (--grpo-weights lora|full)", "method",
                         choices=FINE_TUNING_METHODS)
    lora_r: int = option(8, "LoRA rank", "method")
    lora_alpha: int = option(16, "LoRA alpha", "method")
    lora_dropout: float = option(0.05, "LoRA dropout", "method")
    target_modules: list[str] | str = option("all-linear", "LoRA targets: comma list of "
                                             "module names or all-linear", "method",
                                             choices=("all-linear",),
                                             flags=("--lora-target-modules",))
    # GRPO (--method grpo): TRL's GRPOTrainer, rollouts by our engine on our tools
    loop: str = option("rollout_func", "who rolls out: rollout_func (our engine, the "
                       "evaluated loop, through TRL's rollout_func) or environment_factory "
                       "(TRL's own tool loop over our environment; --format tools)", "grpo",
                       choices=GRPO_LOOPS)
    grpo_weights: str = option("lora", "what GRPO updates: a LoRA adapter (the --lora-* "
                               "options) or every weight", "grpo", choices=("lora", "full"))
    init_adapter: str = option("", "start GRPO from this LoRA adapter (an SFT checkpoint "
                               "of --base) and go on training it", "grpo")
    group_size: int = option(4, "rollouts per question: GRPO's advantage is each one's "
                             "reward against its group's mean", "grpo")
    kl: float = option(0.0, "KL coefficient (TRL's beta) to the starting policy; 0: none, "
                       "as TRL's default", "grpo")
    reward: str = option("em", "em: the dataset's own score (exact match or accuracy); "
                         "em+format: plus --format-weight for finishing with no invalid "
                         "action", "grpo", choices=("em", "em+format"))
    format_weight: float = option(0.1, "weight of the format term of --reward em+format",
                                  "grpo")
    max_turns: int = option(5, "turns per rollout before the agent is stopped", "grpo")
    max_gen_toks: int = option(SHORT_TOKENS_PER_TURN, "tokens per turn", "grpo")
    temperature: float = option(1.0, "sampling temperature of the rollouts", "grpo")
    metadata: list[str] = option([], "rollout settings and questions, k=v,k=v as lm_eval "
                                 "--metadata (search=..., noise=none, data_dir=...)", "grpo")
    train_on_test: bool = option(False, "let --metadata split=test roll out on the "
                                 "evaluation questions (refused otherwise); the card and "
                                 "every table say so", "grpo")
    # optimisation
    learning_rate: float = option(3e-4, "peak learning rate", "optimisation", flags=("--lr",))
    epochs: float = option(3.0, "passes over the data; a fraction (0.5) stops part-way",
                           "optimisation")
    max_steps: int = option(0, "stop after this many optimiser steps, whatever --epochs "
                            "says (0: no cap)", "optimisation")
    batch_size: int = option(4, "examples per device per step", "optimisation")
    grad_accum: int = option(1, "steps accumulated per optimiser update", "optimisation")
    warmup: float = option(0.03, "warmup: steps, or a ratio of the steps when < 1",
                           "optimisation")
    seed: int = option(0, "seed of the adapter's init, shuffling, dropout and the eval "
                     "split", "optimisation")
    # memory and speed (benchmarks/bench_train.py chose the defaults)
    loss: str = option("masked", "masked: output layer and loss only at trained positions, "
                       "in chunks; full: the stock loss over every position", "memory",
                       choices=("masked", "full"))
    attention: str = option("sdpa", "attention kernel", "memory", choices=("sdpa", "eager"))
    gradient_checkpointing: bool = option(True, "recompute each layer's activations in the "
                                          "backward pass (LoRA on SmolLM2, CPU: 14.0 -> 6.8 GB, "
                                          "+13%% time); --gradient-checkpointing false",
                                          "memory")
    bf16: str = option("auto", "bf16 mixed precision: auto (a GPU that supports it), on, off",
                       "memory", choices=("auto", "on", "off"))
    allocator: str = option("auto", "host memory allocator: auto (tbbmalloc from the tbb "
                            "package when installed and no GPU is used, else glibc), tbb, "
                            "glibc; the train command re-executes itself under it (LoRA on "
                            "SmolLM2, CPU: glibc 7.2 GB, tbbmalloc 2.05 GB at about its speed)",
                            "memory", choices=ALLOCATORS)
    mmap_threshold_kb: int = option(1024, "under glibc's allocator: allocations from this "
                                    "size up are mapped and unmapped, not kept in a "
                                    "fragmenting heap (7.2 -> 1.9 GB, 50%% slower); 0: glibc's "
                                    "own policy", "memory")
    # run
    eval_split: float = option(0.0, "share of rows held out for an eval loss", "run")
    resume: bool = option(False, "resume from the last checkpoint in OUT", "run")
    merge: bool = option(False, "also write a merged model for serving (LoRA)", "run")
    report_to: str = option("none", "where to log", "run",
                            choices=("none", "tensorboard", "wandb"))
    save_steps: int = option(100, "checkpoint every this many steps", "run")
    force: bool = option(False, "train into an OUT that holds a trained model (replacing "
                         "it and its checkpoints) or files train did not make", "run",
                         flags=("--overwrite",), changes_results=False)
    extra: dict = field(default_factory=dict)  # more TrainingArguments, from Python only

    def validate(self) -> None:
        """One line for a setting that cannot train, before anything loads."""
        output_folder(self.out)
        positive = {"cutoff": self.cutoff, "lora_r": self.lora_r, "batch_size": self.batch_size,
                    "grad_accum": self.grad_accum, "save_steps": self.save_steps}
        for name, value in positive.items():
            if value < 1:
                raise FireactError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        for name, value in {"limit": self.limit, "max_steps": self.max_steps}.items():
            if value < 0:
                raise FireactError(f"--{name.replace('_', '-')} must be 0 (no limit) or more, "
                                   f"got {value}")
        finite = {"lr": self.learning_rate, "epochs": self.epochs, "warmup": self.warmup,
                  "lora-alpha": self.lora_alpha, "lora-dropout": self.lora_dropout,
                  "eval-split": self.eval_split}
        for name, value in finite.items():
            if not math.isfinite(value) or value < 0:
                raise FireactError(f"--{name} must be a finite number >= 0, got {value}")
        if self.learning_rate == 0:
            raise FireactError("--lr must be above 0")
        if self.epochs == 0 and self.max_steps == 0:
            raise FireactError("--epochs 0 trains nothing; give --epochs above 0 or --max-steps")
        if self.lora_dropout >= 1 or self.eval_split >= 1:
            raise FireactError("--lora-dropout and --eval-split must be below 1")
        if self.method == "grpo":
            self._validate_grpo()
        elif self.train_on_test or self.metadata or self.loop != GRPO_LOOPS[0]:
            raise FireactError("--metadata, --train-on-test and --loop are GRPO's (--method "
                               "grpo): SFT trains on the rows of --data")

    def check_paths(self) -> None:
        """The folders, before anything loads (``validate`` is the settings alone, which an
        experiment checks with placeholder folders): the output must not be a model this run
        reads, nor (without --force) a trained model or someone else's folder; a local
        --base must be a model folder."""
        out = Path(self.out)
        for flag, path in (("--base", self.base), ("--init-adapter", self.init_adapter)):
            if path and Path(path).exists() and Path(path).resolve() == out.resolve():
                raise FireactError(f"--out {self.out} is the {flag} folder: training would "
                                   "write over the model it starts from")
        if TrainingCard.exists(out) and not (self.force or self.resume):
            raise FireactError(f"{out} already holds a trained model ({CARD_FILE}); give "
                               "another --out, --force to train a new one in its place, or "
                               "--resume to go on from its checkpoints")
        refuse_foreign_folder(out, (CARD_FILE, "checkpoints"), self.force, "train")
        base = Path(self.base).expanduser()
        looks_local = self.base.startswith(("/", ".", "~")) or self.base.count("/") != 1
        if looks_local and not base.is_dir():
            raise FireactError(f"base model not found: {self.base} (a local folder or a Hub "
                               "org/name)")
        if base.is_dir() and not (base / "config.json").is_file():
            raise FireactError(f"--base {self.base} is not a model folder (no config.json); "
                               "give a folder save_pretrained wrote, or a Hub org/name")

    def _validate_grpo(self) -> None:
        if self.group_size < 2:
            raise FireactError(f"--group-size must be at least 2 (an advantage is a reward "
                               f"against its group's), got {self.group_size}")
        if self.batch_size % self.group_size:
            raise FireactError(f"--batch-size ({self.batch_size}) counts rollouts: make it a "
                               f"multiple of --group-size ({self.group_size})")
        for name, value in (("kl", self.kl), ("format-weight", self.format_weight),
                            ("temperature", self.temperature)):
            if not math.isfinite(value) or value < 0:
                raise FireactError(f"--{name} must be a finite number >= 0, got {value}")
        if self.temperature == 0:
            raise FireactError("--temperature 0 samples one rollout per group: use above 0")
        if self.max_turns < 1 or self.max_gen_toks < 1:
            raise FireactError("--max-turns and --max-gen-toks must be at least 1")
        if self.init_adapter and self.grpo_weights != "lora":
            raise FireactError("--init-adapter continues a LoRA adapter: --grpo-weights lora")
        if self.init_adapter and not (Path(self.init_adapter) / "adapter_config.json").is_file():
            raise FireactError(f"--init-adapter: {self.init_adapter} is not a LoRA adapter "
                               "folder (no adapter_config.json)")
        from fireact_eval.trainers.grpo import rollout_settings

        rollout_settings(self)  # the environment's settings, before anything heavy loads

    def adapter(self) -> bool:
        """Whether the output is a LoRA adapter of --base (else a whole model)."""
        return self.method == "lora" or self.method == "grpo" and self.grpo_weights == "lora"

    def run_record(self, data_sha256: str) -> dict:
        fixed = RESUME_FIXED + (GRPO_RESUME_FIXED if self.method == "grpo" else ())
        return {"data_sha256": data_sha256, **{k: getattr(self, k) for k in fixed}}


def served_lora_rank(r: int) -> int:
    """The ``max_lora_rank`` vLLM serves an adapter of rank ``r`` with (it accepts only these)."""
    return next((rank for rank in (8, 16, 32, 64, 128, 256, 320, 512) if rank >= r), 512)


def _datasets(data: str) -> list[str]:
    """The tasks a training file's rows are labelled with (ours are; FireAct's are not)."""
    from fireact_eval.data.examples import read_rows

    found = {str(row.get("task")) for row in read_rows(data) if isinstance(row, dict)
             and row.get("task")}
    return sorted(found)


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest ``checkpoint-N`` the Trainer finished writing (``trainer_state.json`` is
    the last file it writes); one killed while saving is passed over."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()
            and p.name.removeprefix("checkpoint-").isdigit()]
    return max(done, key=lambda p: int(p.name.removeprefix("checkpoint-")), default=None)


def _check_resume(cfg: TrainConfig, record: dict) -> Path | None:
    """The checkpoint to resume from, after refusing one trained on other data or settings."""
    checkpoints = Path(cfg.out) / "checkpoints"
    last = last_complete_checkpoint(checkpoints)
    made = checkpoints / RUN_RECORD
    if cfg.resume and last is not None and made.is_file():
        before = json.loads(made.read_text())
        changed = [k for k in record if before.get(k) != json.loads(json.dumps(record[k]))]
        if changed:
            what = ", ".join("data (sha256 differs)" if k == "data_sha256" else
                             f"{k}: {before.get(k)!r} -> {record[k]!r}" for k in changed)
            raise FireactError(f"--resume: the checkpoints in {checkpoints} were trained with "
                               f"other settings ({what}); use another --out, or leave out "
                               "--resume to start again")
    if cfg.resume and last is None:
        print(f"--resume: no finished checkpoint in {checkpoints}; training from the start")
    return last if cfg.resume else None


def smoothed(losses: list[float], first: bool) -> float | None:
    """The mean loss over the first (or last) tenth of the steps, at least one step."""
    if not losses:
        return None
    k = max(1, len(losses) // 10)
    part = losses[:k] if first else losses[-k:]
    return sum(part) / len(part)


def _precision(bf16: str) -> dict[str, bool]:
    import torch

    if bf16 == "on":  # on a CPU, transformers wants to be told it is one
        return {"bf16": True} if torch.cuda.is_available() else {"bf16": True, "use_cpu": True}
    if bf16 == "off":
        return {}
    if torch.cuda.is_available():
        return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}
    return {}


def _trainer_class(masked: bool):
    """transformers' Trainer, with the masked loss when asked (single process: under DDP or
    FSDP the wrapped model must run its own forward, so the stock loss is kept there)."""
    from transformers import Trainer

    from fireact_eval.trainers.loss import masked_lm_loss

    class FireactTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if masked and not return_outputs and self.args.world_size == 1:
                return masked_lm_loss(model, inputs, num_items_in_batch)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return FireactTrainer


def _checkpointing(on: bool) -> dict[str, object]:
    """Activation checkpointing under transformers' name for it: ``activation_checkpointing``
    from 5.x (the old name warns on every run), ``gradient_checkpointing`` before."""
    from transformers import TrainingArguments

    name = ("activation_checkpointing" if "activation_checkpointing"
            in TrainingArguments.__dataclass_fields__ else "gradient_checkpointing")
    return {name: on, f"{name}_kwargs": {"use_reentrant": False}}


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def peak_memory_mb() -> float:
    """Peak memory of this process so far: GPU memory allocated on a GPU, else resident
    set size (``ru_maxrss``, KiB on Linux)."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def eval_commands(cfg: TrainConfig, fmt: str, datasets: list[str],
                  environment: dict | None = None) -> list[str]:
    """The lm_eval commands that evaluate this checkpoint the way it was trained: zero-shot,
    in its data's format, on the tasks it was trained for (and Bamboogle, held out, after
    HotpotQA), batched, with per-sample files for ``results`` and ``gate``.  GRPO's
    ``environment``: the rollout settings it trained under that differ from its task's own,
    so the command evaluates (on the test split) in the environment it learnt in."""
    out = str(Path(cfg.out).resolve())
    tasks = [task_name(d) for d in datasets or ["hotpotqa"]]
    if task_name("hotpotqa") in tasks:  # its held-out task, as FireAct evaluates
        tasks += [task_name(d) for d in HELD_OUT]
    if environment is not None:
        metadata = dict(environment)
    else:
        metadata = {"shots": "zeroshot", **({} if fmt == "chat" else {"format": fmt}),
                    **({"tool_template": "hermes"} if fmt == "tools"
                       and cfg.tool_template == "hermes" else {})}
    style = ("--apply_chat_template " if environment is None and fmt == "chat" else "") + (
        f"--metadata {shlex.quote(lm_eval_metadata(metadata))}" if metadata else "")
    style = style.replace("{", "{{").replace("}", "}}")  # the line is a format string below
    common = (f"--tasks {','.join(tasks)} {{batch}} {style} "
              f"--output_path runs/{Path(out).name} --log_samples")
    if cfg.adapter():
        hf = f"pretrained={cfg.base},peft={out}"
        # lm-eval turns LoRA on from lora_local_path
        vllm = (f"--model vllm --model_args pretrained={cfg.base},"
                f"lora_local_path={out},max_lora_rank={served_lora_rank(cfg.lora_r)}")
    else:
        hf = f"pretrained={out}"
        vllm = f"--model vllm --model_args pretrained={out}"
    # hf: a number (lm-eval's "auto" probes batch sizes, for minutes on a CPU); vllm: auto
    return [f"lm_eval --model hf --model_args {shlex.quote(hf)} "
            + common.format(batch="--batch_size 64"),
            f"lm_eval {vllm} " + common.format(batch="--batch_size auto")]


def train(cfg: TrainConfig) -> dict:
    """Train, save the adapter (or model), tokenizer and card; return the card."""
    import datasets
    from transformers import AutoModelForCausalLM, TrainingArguments, set_seed

    if cfg.method not in FINE_TUNING_METHODS:
        raise FireactError(f"unknown method {cfg.method!r}; valid: "
                           f"{', '.join(FINE_TUNING_METHODS)}")
    cfg.validate()
    cfg.check_paths()
    if cfg.method == "grpo":
        from fireact_eval.trainers.grpo import train_grpo

        return train_grpo(cfg)
    if not Path(cfg.data).is_file():
        raise FireactError(f"training data not found: {cfg.data}")
    data_sha256 = hashlib.sha256(Path(cfg.data).read_bytes()).hexdigest()
    # the rows through the tokenizer (a layout it cannot render is one line) before
    # --force replaces anything in OUT, and before the model loads
    tokenizer = load_tokenizer(cfg)
    examples, fmt = build_examples(cfg.data, tokenizer, cfg.cutoff, cfg.train_on_inputs,
                                   limit=cfg.limit, tool_template=(
                                       HERMES_TEMPLATE if cfg.tool_template == "hermes"
                                       else None))
    if cfg.format not in ("auto", fmt):
        raise FireactError(f"--format {cfg.format}, but {cfg.data} holds {fmt} rows; convert "
                           f"them (fireact-eval convert --format {cfg.format}) or drop --format")
    run = start_run(cfg, data_sha256, tokenizer)
    record, resume_from, host_allocator = run.record, run.resume_from, run.host_allocator
    model = AutoModelForCausalLM.from_pretrained(cfg.base, attn_implementation=cfg.attention)
    if cfg.method == "lora":
        from peft import get_peft_model

        set_seed(cfg.seed)  # the adapter's random init: the Trainer seeds only after it
        check_lora_targets(cfg, model)
        with old_names_quiet():
            model = get_peft_model(model, lora_config(cfg))

    dataset = datasets.Dataset.from_list(examples)
    splits = (dataset.train_test_split(test_size=cfg.eval_split, seed=cfg.seed)
              if cfg.eval_split > 0 else {"train": dataset})
    args = TrainingArguments(
        **run_arguments(cfg),
        per_device_eval_batch_size=cfg.batch_size,
        train_sampling_strategy="group_by_length",  # rows of like length share a batch
        eval_strategy="epoch" if "test" in splits else "no",
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,  # every trainable (LoRA) weight is used each step
        include_num_input_tokens_seen="non_padding",
        **_precision(cfg.bf16),
        **cfg.extra,
    )
    trainer = _trainer_class(cfg.loss == "masked")(
        model=model, args=args, train_dataset=splits["train"], eval_dataset=splits.get("test"),
        data_collator=partial(pad_collate, pad_id=tokenizer.pad_token_id),
    )
    if trainer.is_world_process_zero():
        write_atomic(Path(args.output_dir) / RUN_RECORD, json.dumps(record, indent=2))
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

    trainer.save_model(cfg.out)  # collective under FSDP / ZeRO-3: every process calls it
    card = card_of(cfg, trainer, result, data_sha256, fmt, len(examples), host_allocator,
                   _datasets(cfg.data))
    card.eval_loss_last = next((e["eval_loss"] for e in reversed(trainer.state.log_history)
                                if "eval_loss" in e), None)
    return save_card(cfg, trainer, tokenizer, card)


@dataclass
class RunStart:
    """What every training run (SFT or GRPO) settles before its model loads."""

    record: dict  # what checkpoints of this run must share to be resumed
    resume_from: Path | None
    host_allocator: str
    tokenizer: object


def load_tokenizer(cfg: TrainConfig):
    """--base's tokenizer with a pad token, or one line saying why it cannot load."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.base)
    except (OSError, ValueError) as err:
        raise FireactError(f"--base {cfg.base}: its tokenizer cannot be loaded "
                           f"({str(err).strip().splitlines()[0]})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def start_run(cfg: TrainConfig, data_sha256: str, tokenizer=None) -> RunStart:
    """The run record, the checkpoint to resume (refusing one of other settings), the host
    allocator's policy, and the tokenizer with a pad token (``tokenizer``: loaded already,
    to check what needs it before anything in OUT is replaced)."""
    if cfg.force and not cfg.resume and os.environ.get("RANK", "0") == "0":
        # the model it replaces goes whole: a stale checkpoint must not be resumed later
        shutil.rmtree(Path(cfg.out) / "checkpoints", ignore_errors=True)
        (Path(cfg.out) / CARD_FILE).unlink(missing_ok=True)
    record = cfg.run_record(data_sha256)
    resume_from = _check_resume(cfg, record)
    mapped = return_freed_memory(cfg.mmap_threshold_kb)
    host_allocator = active() + (f" (mmap from {cfg.mmap_threshold_kb} KB)" if mapped else "")
    return RunStart(record, resume_from, host_allocator, tokenizer or load_tokenizer(cfg))


def run_arguments(cfg: TrainConfig) -> dict:
    """The TrainingArguments SFT and GRPO (TRL's GRPOConfig is a TrainingArguments) share."""
    return {"output_dir": str(Path(cfg.out) / "checkpoints"), "num_train_epochs": cfg.epochs,
            "max_steps": cfg.max_steps or -1, "per_device_train_batch_size": cfg.batch_size,
            "gradient_accumulation_steps": cfg.grad_accum, "learning_rate": cfg.learning_rate,
            "warmup_steps": cfg.warmup, "logging_steps": 1, "save_strategy": "steps",
            "save_steps": cfg.save_steps, "report_to": cfg.report_to, "seed": cfg.seed,
            "dataloader_pin_memory": _on_gpu(),  # pinned host memory only helps a GPU copy
            **_checkpointing(cfg.gradient_checkpointing)}


@contextlib.contextmanager
def old_names_quiet():
    """peft and TRL ask transformers 5 for ``is_gradient_checkpointing``, a deprecated alias
    of ``is_activation_checkpointing``, on every run: a FutureWarning a user can do nothing
    about (ours never use the old name), silenced while they load and train."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated",
                                FutureWarning)
        yield


def check_lora_targets(cfg: TrainConfig, model) -> None:
    """Each --target-modules name must name modules of the loaded model, as peft matches
    them (the whole name or its last dotted parts): peft's own error comes as a traceback
    that lists none of the names there are."""
    if cfg.target_modules == "all-linear":
        return
    import torch

    names = [name for name, _ in model.named_modules()]
    missing = [t for t in cfg.target_modules
               if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                         if isinstance(m, torch.nn.Linear)})
        raise FireactError(f"--target-modules: {', '.join(missing)} names no module of "
                           f"{cfg.base}; its linear layers: {', '.join(linear)} (or "
                           "all-linear)")


def lora_config(cfg: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")


def card_of(cfg: TrainConfig, trainer, result, data_sha256: str, fmt: str, examples: int,
            host_allocator: str, datasets: list[str]) -> TrainingCard:
    """What a checkpoint was trained from and how: the card ``lm_eval`` users read (and
    ``results`` reads a run's training from), the same for SFT and GRPO."""
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return TrainingCard(
        base_model=cfg.base,
        method=cfg.method,
        adapter=cfg.adapter(),
        data=str(Path(cfg.data).resolve()) if Path(cfg.data).is_file() else cfg.data,
        data_sha256=data_sha256,
        data_format=fmt,
        data_origin=cfg.origin,
        eval_format=fmt,  # a data layout (alpaca, chat, tools) is its prompt format
        examples=examples,
        hyperparameters={k: v for k, v in asdict(cfg).items()
                         if k not in ("base", "data", "out", "extra", "origin")},
        train_losses=[round(x, 6) for x in losses],
        train_loss_first=losses[0] if losses else None,
        train_loss_last=losses[-1] if losses else None,
        # what a noisy per-step loss means: the mean of the first and of the last tenth
        train_loss_start=smoothed(losses, first=True),
        train_loss_end=smoothed(losses, first=False),
        global_step=result.global_step,
        train_seconds=round(result.metrics["train_runtime"], 1),
        tokens_per_second=round(trainer.state.num_input_tokens_seen
                                / max(result.metrics["train_runtime"], 1e-9), 1),
        peak_memory_mb=round(peak_memory_mb()),
        peak_memory_kind="GPU allocated" if _on_gpu() else "RSS",
        host_allocator=host_allocator,
        world_size=trainer.args.world_size,
        distributed_type=trainer.accelerator.distributed_type.value,
        fireact_eval_version=__version__,
        eval_commands=eval_commands(cfg, fmt, datasets),
    )


def save_card(cfg: TrainConfig, trainer, tokenizer, card: TrainingCard) -> TrainingCard:
    """The tokenizer, the merged model when asked, and the card, by the main process."""
    if not trainer.is_world_process_zero():
        return card
    tokenizer.save_pretrained(cfg.out)
    if cfg.merge and cfg.adapter():
        card.merged = str(_merge(cfg.base, cfg.out, tokenizer))
    card.write(cfg.out)
    return card


def _merge(base: str, adapter: str, tokenizer) -> Path:
    """Merge from the saved adapter, not the live model: under FSDP that one is sharded."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = Path(adapter) / "merged"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)
    model.merge_and_unload().save_pretrained(merged)
    tokenizer.save_pretrained(merged)
    return merged
