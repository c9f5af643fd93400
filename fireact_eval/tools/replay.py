"""Replay recorded search results: free, deterministic evaluation from real Google results.

``fireact-eval index build`` (``fireact_eval.data.replay_index``) collects (query,
observation) pairs from existing trajectories.  A query seen before (after normalisation)
replays its recorded observation; any other query gets the best BM25 match among all
recorded observations.
"""

from __future__ import annotations

from pathlib import Path

from fireact_eval.answer_match import normalize_answer
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import iter_jsonl
from fireact_eval.tools import NULL_OBSERVATION, register_search
from fireact_eval.tools.local_search import LocalSearch


def query_key(query: str) -> str:
    """What makes two queries the same recorded call (case, punctuation, articles aside)."""
    return normalize_answer(query)


class ReplaySearch:
    """Exact (normalised) query -> recorded observation; else BM25 over the observations."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise FireactError(
                f"replay index not found: {path}; build one with `fireact-eval index build`"
            )
        rows = [row for _, row in iter_jsonl(path, what="replay index")]
        self.recorded = {query_key(r["query"]): r["text"] for r in rows}
        self.fallback = LocalSearch(path, max_chars=10_000)  # observations are already short
        self.pool = sorted({r["text"] for r in rows if r["text"] != NULL_OBSERVATION})

    def __call__(self, query: str) -> str:
        recorded = self.recorded.get(query_key(query))
        return recorded if recorded is not None else self.fallback(query)


@register_search("replay")
def _make_replay(argument: str) -> ReplaySearch:
    """recorded observations, exact query else BM25: replay:PATH (fireact-eval index build)"""
    if not argument:
        raise FireactError("search=replay needs a path: replay:PATH")
    return ReplaySearch(argument)
