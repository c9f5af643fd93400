"""Fine-tuning rows -> token ids and labels, with the loss only on the agent's own turns.

Three formats are read as they are: chat JSONL (``{"messages": [...]}``, rendered with the
base model's chat template), tools JSONL (``{"messages": [...], "tools": [...]}``, rendered
with the tool schemas through the chat template, trained on what its ``{% generation %}``
marks) and alpaca JSON/JSONL (``{"instruction", "input", "output"}``, rendered with FireAct's
template).  Each row becomes segments of text marked trainable or
not (``fireact_eval.data.segments``: the transcript grammar decides); here they are
tokenized: what the agent generates when it runs is trained, the prompt, the template and
every observation are context (label -100).  ``train_on_inputs`` trains on everything, as
FireAct did.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fireact_eval.catalog import CUTOFF
from fireact_eval.data.fireact_release import has_options
from fireact_eval.data.segments import Segments, read_layout, row_segments
from fireact_eval.errors import FireactError

log = logging.getLogger(__name__)
IGNORE = -100


def mmlu_options_in_output(rows: list[dict]) -> int:
    """FireAct's released alpaca MMLU rows carry the options in ``output``, not the question."""
    return sum(1 for r in rows if has_options(r.get("output", ""))
               and not has_options(r.get("instruction", "")))


def encode(segments: Segments, tokenizer: Any, cutoff: int, train_on_inputs: bool) -> dict:
    ids: list[int] = []
    labels: list[int] = []
    for text, trainable in segments:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if (trainable or train_on_inputs) else [IGNORE] * len(piece)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    ids, labels = ids[:cutoff], labels[:cutoff]
    return {"input_ids": ids, "labels": labels, "length": len(ids)}


def build_examples(path: str | Path, tokenizer: Any, cutoff: int = CUTOFF,
                   train_on_inputs: bool = False, limit: int = 0,
                   tool_template: str | None = None) -> tuple[list[dict], str]:
    """Tokenised examples for the Trainer (of the first ``limit`` rows, if given), and the
    data format (the model's eval format).  ``tool_template``: the chat template tools rows
    render through (None: the tokenizer's own)."""
    rows, fmt = read_layout(path)
    rows = rows[:limit] if limit else rows
    if fmt == "alpaca" and (n := mmlu_options_in_output(rows)):
        log.warning("%s: %d alpaca rows carry MMLU options in 'output' rather than the "
                    "question (a known defect of FireAct's release); training on them as they are",
                    path, n)
    examples = []
    for i, row in enumerate(rows):
        segments = row_segments(row, fmt, tokenizer, tool_template)
        if not any(trainable for _, trainable in segments):
            log.warning("%s, row %d: skipped: no Thought/Action turn in it", path, i)
            continue
        examples.append(encode(segments, tokenizer, cutoff, train_on_inputs))
    kept = [e for e in examples if any(label != IGNORE for label in e["labels"])]
    if not kept:
        raise FireactError(f"{path}: no row has any agent turn to train on within {cutoff} tokens")
    if len(kept) < len(examples):
        log.warning("%s: skipped %d rows with no agent turn within the first %d tokens "
                    "(raise --cutoff to keep them)", path, len(examples) - len(kept), cutoff)
    return kept, fmt


def pad_collate(batch: list[dict], pad_id: int) -> dict:
    """Dynamic padding to the longest row of the batch (right side, labels -100)."""
    import torch

    width = max(len(b["input_ids"]) for b in batch)
    out = {"input_ids": [], "attention_mask": [], "labels": []}
    for b in batch:
        gap = width - len(b["input_ids"])
        out["input_ids"].append(b["input_ids"] + [pad_id] * gap)
        out["attention_mask"].append([1] * len(b["input_ids"]) + [0] * gap)
        out["labels"].append(b["labels"] + [IGNORE] * gap)
    return {k: torch.tensor(v) for k, v in out.items()}
