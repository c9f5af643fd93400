"""The replay index (``search=replay:PATH``) built from existing trajectories: FireAct's
alpaca and chat fine-tuning files and our own ``--log_samples`` files (read through
``harness.run_files``), one JSONL row ``{query, title, text}`` per recorded search."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from fireact_eval.catalog import SEARCH
from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import logged_sample, samples_task
from fireact_eval.jsonio import iter_jsonl, read_json
from fireact_eval.tools.replay import query_key
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
