"""Retries for networked tools: exponential backoff with jitter, then one ``ToolError``.

Shared by every backend that calls a server (SerpAPI, retrieval servers), so they retry
the same faults the same way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fireact_eval.tools import ToolError

T = TypeVar("T")


class Retryable(Exception):
    """A transient fault (connection, timeout, 429, 5xx, malformed reply): try again."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a networked tool retries.

    Attributes:
        timeout: seconds to wait for one reply.
        retries: further tries after the first one fails with a transient fault.
        backoff: seconds before the first retry; doubled each time, times 0.5-1.5 jitter.
    """

    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5

    def run(self, attempt: Callable[[], T], what: str, scrub: Callable[[str], str] = str) -> T:
        """``attempt()`` until it returns; a ``Retryable`` it raises is retried, and after
        the last try becomes a ``ToolError`` naming ``what`` and the reason (scrubbed)."""
        for tries in range(1, self.retries + 2):
            try:
                return attempt()
            except Retryable as err:
                if tries > self.retries:
                    raise ToolError(f"{what} failed after {tries} tries: {scrub(str(err))}") \
                        from None
                time.sleep(self.backoff * 2 ** (tries - 1) * (0.5 + random.random()))
        raise AssertionError("unreachable")
