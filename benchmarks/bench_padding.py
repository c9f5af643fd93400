"""Padding waste of length-grouped batches (what ``fireact-eval train`` uses) vs random ones.

Waste = padded tokens / all tokens in the padded batches, over one epoch.

    python benchmarks/bench_padding.py DATA_FILE [--batch-size 4] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import random

import torch
from transformers import AutoTokenizer
from transformers.trainer_pt_utils import LengthGroupedSampler

from fireact_eval.offline_model import smollm2_path
from fireact_eval.trainers.encode import build_examples


def waste(lengths: list[int], order: list[int], batch_size: int) -> float:
    padded = real = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        padded += max(batch) * len(batch)
        real += sum(batch)
    return 1 - real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tokenizer", default=None, help="default: SmolLM2-135M's")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or smollm2_path())
    examples, fmt = build_examples(args.data, tokenizer)
    lengths = [e["length"] for e in examples]
    grouped = list(LengthGroupedSampler(args.batch_size, lengths=lengths,
                                        generator=torch.Generator().manual_seed(0)))
    shuffled = random.Random(0).sample(range(len(lengths)), len(lengths))
    print(json.dumps({
        "data": args.data, "format": fmt, "examples": len(lengths),
        "batch_size": args.batch_size, "mean_length": round(sum(lengths) / len(lengths), 1),
        "padding_waste_grouped": round(waste(lengths, grouped, args.batch_size), 4),
        "padding_waste_random": round(waste(lengths, shuffled, args.batch_size), 4),
    }, indent=2))


if __name__ == "__main__":
    main()
