"""The demo in the ``tools`` layout next to the ReAct text layout (issue 36): SmolLM2-135M,
prompted (few-shot ReAct text; the tools instruction alone) and LoRA on the same 32 oracle
trajectories (the demo's recipe) written as alpaca rows and as tools rows, each agent on the
demo's 36 test questions, clean and under ``noise=none``, with the paired gate between the
two fine-tuned agents.

    python benchmarks/bench_tools_layout.py OUT [--limit N]

Every step is a ``fireact-eval`` / ``lm_eval`` command, printed as it runs; the tables are
``fireact-eval results table`` on the four runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fireact_eval.data.examples import read_examples, write_examples
from fireact_eval.demo import TASKS, run_command, write_training_data
from fireact_eval.harness.autoload import TASKS_ONLY
from fireact_eval.offline_model import smollm2_path

CLI = [sys.executable, "-m", "fireact_eval.cli"]
RECIPE = ["--epochs", "4", "--batch-size", "8", "--lr", "2e-3", "--lora-r", "16",
          "--lora-alpha", "32", "--lora-dropout", "0", "--warmup", "0", "--save-steps", "100000"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="test questions (0: all 36)")
    args = parser.parse_args()
    model, out = str(smollm2_path()), args.out
    out.mkdir(parents=True, exist_ok=True)
    alpaca, tools = out / "train.json", out / "train_tools.jsonl"
    write_training_data(alpaca)
    write_examples(read_examples(alpaca)[0], tools, "tools")
    layouts = {"react": (alpaca, [], ["format=alpaca"], ["format=plain"]),
               "tools": (tools, ["--tool-template", "hermes", "--cutoff", "1024"],
                         ["format=tools", "tool_template=hermes"],
                         ["format=tools", "tool_template=hermes"])}

    def evaluate(model_args: str, metadata: list[str], name: str) -> None:
        if not any((out / name).glob("*/results_*.json")):
            run_command([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                         f"{model_args},dtype=float32", "--tasks", TASKS, "--device", "cpu",
                         "--batch_size", "24", "--metadata",
                         ",".join(["max_turns=5", *metadata]), "--gen_kwargs",
                         "max_gen_toks=96",
                         *(["--limit", str(args.limit)] if args.limit else []),
                         "--output_path", str(out / name), "--log_samples"], env=TASKS_ONLY)

    for name, (data, flags, tuned, prompted) in layouts.items():
        evaluate(f"pretrained={model}", ["shots=fewshot", *prompted], f"prompted_{name}")
        adapter = out / f"lora_{name}"
        if not (adapter / "fireact_eval.json").is_file():
            run_command([*CLI, "train", "--base", model, "--data", str(data), "--out",
                         str(adapter), *RECIPE, *flags])
        evaluate(f"pretrained={model},peft={adapter.resolve()}", ["shots=zeroshot", *tuned],
                 f"finetuned_{name}")
    runs = [f"{kind}_{name}={out / f'{kind}_{name}'}" for kind in ("prompted", "finetuned")
            for name in layouts]
    for shape in ("leaderboard", "robustness", "cost", "outcomes"):
        run_command([*CLI, "results", "table", *runs, "--shape", shape])
    run_command([*CLI, "gate", "--baseline", str(out / "finetuned_react"), "--candidate",
                 str(out / "finetuned_tools")], check=False)


if __name__ == "__main__":
    main()
