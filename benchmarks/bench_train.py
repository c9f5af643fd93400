"""Memory and speed of ``fireact-eval train`` with each lever on and off.

Each configuration is a fresh ``fireact-eval train`` process (so its peak RSS is its own):
SmolLM2-135M on FireAct's HotpotQA trajectories (``../shared`` when present, else the demo's
gold trajectories), cutoff 512, batch 8, a few steps.  Reads the card each run writes: peak
memory (RSS on CPU, allocated on a GPU), seconds per step, tokens per second.

    python benchmarks/bench_train.py --steps 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from fireact_eval.offline_model import smollm2_path

ROOT = Path(__file__).resolve().parents[1]
FIREACT = ROOT.parent / "shared/data/fireact/finetune/alpaca_format/hotpotqa.json"
NO_CKPT = ["--gradient-checkpointing", "false"]
HEAP = ["--allocator", "glibc", "--mmap-threshold-kb", "0"]  # glibc's malloc, its own policy
MAPPED = ["--allocator", "glibc"]  # glibc's malloc, blocks from 1 MB mapped and unmapped
BEFORE = ["--attention", "eager", "--loss", "full", "--bf16", "off", *NO_CKPT, *HEAP]
CONFIGS = {
    "lora: eager, full loss (before)": ["--method", "lora", *BEFORE],
    "lora: sdpa": ["--method", "lora", "--loss", "full", "--bf16", "off", *NO_CKPT, *HEAP],
    "lora: sdpa + masked loss": ["--method", "lora", "--bf16", "off", *NO_CKPT, *HEAP],
    "lora: sdpa + masked + bf16": ["--method", "lora", "--bf16", "on", *NO_CKPT, *HEAP],
    "lora: sdpa + masked + grad ckpt": ["--method", "lora", "--bf16", "off", *HEAP],
    "lora: sdpa + masked + grad ckpt + glibc mmap": ["--method", "lora", *MAPPED],
    "lora: sdpa + masked + grad ckpt + tbbmalloc (default)": ["--method", "lora"],
    "lora: default, dropout 0": ["--method", "lora", "--lora-dropout", "0"],
    "full: eager, full loss (before)": ["--method", "full", *BEFORE],
    "full: sdpa + masked loss": ["--method", "full", "--bf16", "off", *NO_CKPT, *HEAP],
    "full: sdpa + masked + grad ckpt": ["--method", "full", "--bf16", "off", *HEAP],
    "full: sdpa + masked + grad ckpt + glibc mmap": ["--method", "full", *MAPPED],
    "full: sdpa + masked + grad ckpt + tbbmalloc (default)": ["--method", "full"],
}


def data_file(tmp: Path) -> Path:
    if FIREACT.is_file():
        return FIREACT
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_agent import demo_questions, gold_trajectory

    path = tmp / "train.json"
    rows = [{"instruction": q["question"], "input": "", "output": gold_trajectory(q)}
            for q in demo_questions()] * 8
    path.write_text(json.dumps(rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--only", default=None, help="run the configs whose name has this")
    args = parser.parse_args()
    base = str(smollm2_path())
    with tempfile.TemporaryDirectory() as tmp:
        data = data_file(Path(tmp))
        print(f"data: {data}; batch {args.batch_size}, cutoff 512, {args.steps} steps, "
              f"LoRA r=16")
        print("| configuration | peak memory (GB) | s / step | tokens / s | first loss | "
              "allocator |")
        print("|---|---:|---:|---:|---:|---|")
        for name, flags in CONFIGS.items():
            if args.only and args.only not in name:
                continue
            out = Path(tmp) / name.replace(" ", "_").replace(":", "").replace("+", "")
            subprocess.run([sys.executable, "-m", "fireact_eval.cli", "train", "--base", base,
                            "--data", str(data), "--out", str(out), "--max-steps",
                            str(args.steps), "--batch-size", str(args.batch_size),
                            "--lora-r", "16", "--lora-alpha", "32", "--lr", "1e-3",
                            "--cutoff", "512", "--save-steps", "100000", *flags],
                           check=True, capture_output=True)
            card = json.loads((out / "fireact_eval.json").read_text())
            print(f"| {name} | {card['peak_memory_mb'] / 1024:.2f} "
                  f"({card['peak_memory_kind']}) | "
                  f"{card['train_seconds'] / card['global_step']:.1f} | "
                  f"{card['tokens_per_second']:.0f} | {card['train_loss_first']:.4f} | "
                  f"{card['host_allocator']} |",
                  flush=True)


if __name__ == "__main__":
    main()
