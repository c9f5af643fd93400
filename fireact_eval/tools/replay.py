"""Replay recorded search results: free, deterministic evaluation from real Google results.

``fireact-eval index build`` collects (query, observation) pairs from existing trajectories:
FireAct's alpaca and chat fine-tuning files and our own ``--log_samples`` files.  A query
seen before (after normalisation) replays its recorded observation; any other query gets
the best BM25 match among all recorded observations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from fireact_eval.answer_match import normalize_answer
from fireact_eval.catalog import SEARCH
from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import logged_sample, samples_task
from fireact_eval.jsonio import iter_jsonl, read_json
from fireact_eval.tools import NULL_OBSERVATION, register_search
from fireact_eval.tools.local_search import LocalSearch
from fireact_eval.trajectory import Trajectory
from fireact_eval.transcript import parse_messages, parse_transcript


def _trajectories(path: Path) -> Iterator[Trajectory]:
    """Trajectories from a FireAct alpaca ``.json``, a chat ``.jsonl`` or an lm-eval samples
    ``.jsonl`` (detected per row)."""
    if path.suffix == ".json":
        rows = read_json(path, what="trajectory file")
        if not isinstance(rows, list):
            raise FireactError(f"{path}: expected a JSON list of alpaca rows")
        for row_no, row in enumerate(rows):
            if not isinstance(row, dict) or "output" not in row:
                raise FireactError(f"{path}, row {row_no}: expected an alpaca row with 'output'")
            yield parse_transcript(row["output"])
        return
    for line_no, row in iter_jsonl(path, what="trajectory file"):
        if "messages" in row:  # chat: assistant turns, observations as user messages
            yield parse_messages(row["messages"])[1]
        elif "resps" in row:  # lm-eval samples: the response is our trajectory JSON
            yield logged_sample(row, samples_task(path), f"{path}, line {line_no}").trajectory
        else:
            raise FireactError(
                f"{path}, line {line_no}: expected a chat row ('messages') or an lm-eval "
                "sample ('resps')"
            )


def query_key(query: str) -> str:
    """What makes two queries the same recorded call (case, punctuation, articles aside)."""
    return normalize_answer(query)


def recorded_calls(paths: Iterable[str | Path]) -> dict[str, dict[str, str]]:
    """First recorded observation per normalised query, over all files."""
    calls: dict[str, dict[str, str]] = {}
    for path in map(Path, paths):
        for traj in _trajectories(path):
            for step in traj.steps:
                if step.action == SEARCH and step.argument and step.observation is not None:
                    key = query_key(step.argument)
                    calls.setdefault(key, {"query": step.argument, "title": "",
                                           "text": step.observation})
    return calls


def build_replay_index(paths: Iterable[str | Path], out: str | Path) -> int:
    """Write the replay file (JSONL ``{query, title, text}``); returns the number of queries."""
    calls = recorded_calls(paths)
    if not calls:
        raise FireactError("no search calls found in the given trajectory files")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for record in calls.values():
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(calls)


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
