"""The causal-LM loss on the trained positions only, a chunk of logits at a time.

The stock loss projects every position of every row onto the whole vocabulary (SmolLM2:
49,152) in fp32, then throws away the positions labelled -100 (the question, template and
observations: about two thirds of a ReAct trajectory).  Here the decoder's hidden states are
gathered at the trained positions first, and the output layer and cross-entropy run on
``chunk`` of them at a time under activation checkpointing, so at most ``chunk x vocab``
logits exist at once, forward or backward.  Same value as the stock loss (a test compares
the first 20 steps).
"""

from __future__ import annotations

from typing import Any

IGNORE = -100


def masked_lm_loss(model: Any, inputs: dict, num_items_in_batch: Any = None,
                   chunk: int = 1024):
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    labels = inputs["labels"]
    hidden = model.get_decoder()(input_ids=inputs["input_ids"],
                                 attention_mask=inputs.get("attention_mask")).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    states, targets = hidden[:, :-1][keep], targets[keep]
    head = model.get_output_embeddings()

    def part(h, t):
        return F.cross_entropy(head(h).float(), t, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, states.shape[0], chunk):
        total = total + checkpoint(part, states[start:start + chunk],
                                   targets[start:start + chunk], use_reentrant=False)
    count = num_items_in_batch if num_items_in_batch is not None else max(int(keep.sum()), 1)
    return total / count
