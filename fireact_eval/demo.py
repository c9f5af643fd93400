"""``fireact-eval demo``: the point of the tool, offline, in minutes on a CPU.

Three steps, each command printed as a user would type it before it runs:

1. the demo's *training* questions (32, ``tasks/data/demo_train_questions.jsonl``: other
   questions over the same fictional corpus, none of them a test question) become
   trajectories twice.  The teacher is an oracle, not a model: it searches each supporting
   passage by its title and answers with the gold answer (a demo has no GPT-4 to ask); the
   second time its search answers ``None`` half the time (seeded) and it says so and
   searches again, so its trajectories show the failure and the recovery;
2. in two lanes side by side, one thread each: ``lm_eval`` with SmolLM2-135M-Instruct
   few-shot on the demo's test questions (the first 12 of 36 by default) with clean search,
   then ``fireact-eval train`` (a LoRA) on the clean trajectories and ``lm_eval`` of that
   agent zero-shot, clean and with search answering ``None`` half the time; and the same
   recipe on the retry trajectories;
3. ``fireact-eval results table`` (leaderboard, robustness, cost, outcomes), ``fireact-eval
   gate`` (the base against the clean-trained agent; that agent against the retry-trained
   one), and ``fireact-eval report``: one HTML page with every trajectory of the three
   agents, compared question by question.

What it shows is the project's finding (docs/experiments.md, on 300 world questions):
fine-tuning teaches the format, and robustness to a failing tool is learnt from
trajectories that show the failure and the retry, not from fine-tuning as such.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from fireact_eval.catalog import SHORT_TOKENS_PER_TURN
from fireact_eval.data.oracle import oracle_example, write_oracle_data
from fireact_eval.errors import FireactError
from fireact_eval.harness.autoload import TASKS_ONLY
from fireact_eval.questions import DEMO_TRAIN_QUESTIONS
from fireact_eval.shell import lm_eval_metadata, shell_line

__all__ = ["TASKS", "oracle_example", "write_training_data", "run_demo", "DemoConfig"]

TASKS = "fireact_demo,fireact_demo_noise_none"
CLEAN_TASK = TASKS.split(",")[0]


# the training sets: (name, label, what its oracle does, its noise under write_oracle_data)
TRAINING_SETS = (
    ("clean", "tuned-clean", "searches each supporting passage and answers", "off"),
    ("retry", "tuned-retry", "the same, with search answering None half the time: it says so "
     "and searches again", "none"),
)


def write_training_data(out: Path, noise: str = "off") -> int:
    """The demo's oracle trajectories for its 32 training questions (alpaca rows); with
    ``noise="none"``, the oracle that searches again after a ``None`` (p 0.5, seed 0)."""
    return write_oracle_data(out, "demo", noise=noise)


@dataclass
class DemoConfig:
    model: str
    out: Path
    # float32: the demo's numbers then do not depend on the batch size or the CPU's kernels
    # (measured: its 24 fine-tuned trajectories identical at batch 8 and 24, and under AVX2
    # kernels; bfloat16 changed 3 of 24 and one EM with the batch size), at ~1.3x the time
    dtype: str = "float32"
    device: str = "cpu"
    batch_size: int = 24
    limit: int | None = 12
    max_turns: int = 5
    prompted_only: bool = False
    extra: tuple[str, ...] = ()


def run_command(argv: list[str], check: bool = True, env: dict | None = None) -> int:
    """Print a command as a user would type it, then run it; a failure is one line."""
    command = shell_line(argv, env)
    print(f"\n$ {command}", flush=True)
    status = subprocess.run(argv, env={**os.environ, **(env or {})}).returncode
    if check and status:
        raise FireactError(f"step failed (exit {status}): {command}")
    return status


# the two fine-tuned agents train and evaluate side by side, one thread each: two processes
# of a 135M model on two cores finish sooner than one after the other on both (and one
# thread or two gives the same adapter and trajectories, docs/demo.md)
SIDE_BY_SIDE = {"OMP_NUM_THREADS": "1"}
# the LoRA recipe of both agents: 4 epochs of their rows (16 steps), without gradient
# checkpointing, which a 135M model's activations do not need (it changes no weight)
TRAIN_RECIPE = ("--epochs", "4", "--batch-size", "8", "--lr", "2e-3", "--lora-r", "16",
                "--lora-alpha", "32", "--lora-dropout", "0", "--warmup", "0",
                "--save-steps", "100000", "--gradient-checkpointing", "false")


Job = tuple[list[str], dict, Path]  # a command, its environment, its log


def run_side_by_side(lanes: list[list[Job]]) -> None:
    """Run the lanes at once, each one command after another, each command writing to its
    log (printed as a user would type it when it starts); then each log's last lines.  A
    failure stops its lane and is one line naming its log."""
    failed: list[Path] = []

    def run_lane(jobs: list[Job]) -> None:
        for argv, env, log in jobs:
            print(f"\n$ {shell_line(argv, env)} > {log} 2>&1", flush=True)
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w") as handle:
                status = subprocess.run(argv, env={**os.environ, **env}, stdout=handle,
                                        stderr=subprocess.STDOUT).returncode
            if status:
                failed.append(log)
                return

    threads = [threading.Thread(target=run_lane, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in (log for lane in lanes for _, _, log in lane if log.is_file()):
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        print(f"\n{log.name}:\n" + "\n".join(tail[-3:]), flush=True)
    if failed:
        raise FireactError("step failed: see " + ", ".join(map(str, failed)))


def _lm_eval_argv(cfg: DemoConfig, model_args: str, out: Path, metadata: dict,
                  tasks: str = TASKS) -> list[str]:
    argv = [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", model_args,
            "--tasks", tasks, "--device", cfg.device, "--batch_size", str(cfg.batch_size),
            "--metadata", lm_eval_metadata({"max_turns": cfg.max_turns, **metadata}),
            "--gen_kwargs", f"max_gen_toks={SHORT_TOKENS_PER_TURN}", "--output_path", str(out),
            "--log_samples"]
    if cfg.limit is not None:
        argv += ["--limit", str(cfg.limit)]
    return argv + list(cfg.extra)


def _lm_eval(cfg: DemoConfig, model_args: str, out: Path, metadata: dict,
             tasks: str = TASKS) -> None:
    # the demo's tasks are ours: lm-eval indexes our folder alone (~12 s less per run)
    run_command(_lm_eval_argv(cfg, model_args, out, metadata, tasks), env=TASKS_ONLY)


def run_demo(cfg: DemoConfig) -> None:
    """The steps; the gates' verdicts are shown, not enforced (a demo on a handful of
    questions is not a release decision)."""
    cli = [sys.executable, "-m", "fireact_eval.cli"]
    prompted = cfg.out / "prompted"
    # the base model with clean search only: it never answers there (0.00, docs/demo.md),
    # and its few-shot prompts are the slow part of the demo
    base_args = f"pretrained={cfg.model},dtype={cfg.dtype}"
    report = str(cfg.out / "report.html")
    if cfg.prompted_only:
        print(f"[1/1] the base model, few-shot ReAct, on the {CLEAN_TASK} test questions",
              flush=True)
        _lm_eval(cfg, base_args, prompted, {}, CLEAN_TASK)
        run_command([*cli, "results", "table", f"prompted={prompted}"])
        run_command([*cli, "report", f"prompted={prompted}", "--out", report])
        return
    print(f"[1/3] training trajectories for the demo's training questions "
          f"({DEMO_TRAIN_QUESTIONS.name}; none is a test question) from an oracle teacher "
          "that searches the supporting passages and answers with the gold answer:",
          flush=True)
    for name, _, what, noise in TRAINING_SETS:
        data = cfg.out / f"train_{name}.json"
        print(f"  {name}: {write_training_data(data, noise)} trajectories ({what}) -> {data}",
              flush=True)
    print(f"\n[2/3] the base model, few-shot ReAct, on the {CLEAN_TASK} test questions; a "
          "LoRA on each set of trajectories (the same recipe) and each fine-tuned agent "
          "zero-shot on the same questions, clean and with None. Two lanes side by side, "
          "one thread each: the base model and the clean-trained agent; the retry-trained "
          "agent", flush=True)
    logs = cfg.out / "logs"
    lanes = [[
        ([*cli, "train", "--base", cfg.model, "--data", str(cfg.out / f"train_{name}.json"),
          "--out", str(cfg.out / f"lora_{name}"), *TRAIN_RECIPE], SIDE_BY_SIDE,
         logs / f"train_{name}.log"),
        (_lm_eval_argv(cfg, f"pretrained={cfg.model},peft={(cfg.out / f'lora_{name}').resolve()}"
                            f",dtype={cfg.dtype}", cfg.out / f"tuned_{name}",
                       {"shots": "zeroshot", "format": "alpaca"}),
         {**TASKS_ONLY, **SIDE_BY_SIDE}, logs / f"eval_{name}.log")]
        for name, *_ in TRAINING_SETS]
    # the retry-trained lane is the longer (its rows are), so the base model goes first in
    # the other
    lanes[0].insert(0, (_lm_eval_argv(cfg, base_args, prompted, {}, CLEAN_TASK),
                        {**TASKS_ONLY, **SIDE_BY_SIDE}, logs / "eval_prompted.log"))
    run_side_by_side(lanes)
    print("\n[3/3] prompted vs fine-tuned on clean trajectories vs fine-tuned on retries",
          flush=True)
    tuned = {name: f"{label}={cfg.out / f'tuned_{name}'}" for name, label, *_ in TRAINING_SETS}
    runs = [f"prompted={prompted}", *tuned.values()]
    for shape in ("leaderboard", "robustness", "cost", "outcomes"):
        run_command([*cli, "results", "table", *runs, "--shape", shape])
    for baseline, candidate in ((f"prompted={prompted}", tuned["clean"]),
                                (tuned["clean"], tuned["retry"])):
        run_command([*cli, "gate", "--baseline", baseline, "--candidate", candidate],
                    check=False)
    run_command([*cli, "report", *runs, "--out", report])
