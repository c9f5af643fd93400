"""The sampling seeds of repeated tries: pure functions of the run's seed and where a request
sits (question, try, call), so a try can be rerun alone and two tries never share a stream.

Backends that take a seed per request (vLLM's ``SamplingParams.seed``, an OpenAI-style
server's ``seed``) get one per call; ``hf`` cannot (transformers' ``generate`` has no per-call
seed: its sampling draws from torch's one generator, seeded by ``lm_eval --seed``), so its
tries are reproducible only as a whole run.
"""

from __future__ import annotations

import hashlib

__all__ = ["try_seed", "call_seed"]


def _derive(*parts: object) -> int:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF  # what every backend takes (int32)


def try_seed(run_seed: int, doc_key: str, attempt: int) -> int:
    """The seed of one try of one question, recorded in its trajectory (``seed``)."""
    return _derive(run_seed, doc_key, attempt)


def call_seed(seed: int, call: int) -> int:
    """The seed of a try's ``call``-th model request (0, 1, ...: turns and reflections)."""
    return _derive(seed, call)
