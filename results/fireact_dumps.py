"""FireAct's released evaluation dumps -> lm-eval-style result folders, so ``results table``,
``plot`` and ``gate`` read a published run like one of ours.

A dump is a JSON object keyed by the question's index in HotpotQA dev; each value has
``traj`` (the whole transcript as text, or a list of chat messages, possibly as its Python
repr) next to FireAct's own ``em``/``f1``/``reward``.  Scores are recomputed from ``traj``
with our parser and metrics, never copied.  FireAct divides by the 500 questions it asked,
so a question absent from the dump is written as an unfinished trajectory (scored 0), and
the run's ``data`` says how many there were.  Token counts and times are not in the dumps
and are not reported.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

from fireact_eval.catalog import FINISH, SEARCH
from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import sample_record, write_run
from fireact_eval.jsonio import read_json
from fireact_eval.scoring import qa
from fireact_eval.trajectory import Trajectory
from fireact_eval.transcript import parse_messages, parse_transcript

log = logging.getLogger(__name__)
TASK = "fireact_hotpotqa"
NOT_RECORDED = ("prompt_tokens", "gen_tokens", "seconds")
_STAMP = re.compile(r"_(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})$")


def trajectory_of(value: Any, where: str) -> Trajectory:
    """A dump entry's ``traj`` as a trajectory: chat messages (a list or its repr) or text."""
    traj = value.get("traj") if isinstance(value, dict) else None
    if isinstance(traj, str) and traj.lstrip().startswith("["):
        try:
            traj = ast.literal_eval(traj)
        except (ValueError, SyntaxError):
            raise FireactError(f"{where}: 'traj' looks like a list but does not parse") from None
    if isinstance(traj, list):
        if not all(isinstance(m, dict) for m in traj):
            raise FireactError(f"{where}: 'traj' is a list but not of chat messages")
        trajectory = parse_messages(traj)[1]
    elif isinstance(traj, str):
        trajectory = parse_transcript(traj)
    else:
        raise FireactError(f"{where}: no 'traj' (text or chat messages)")
    acts = [s for s in trajectory.steps if s.kind == "act" and s.action != FINISH]
    trajectory.tool_calls = sum(s.action == SEARCH for s in acts)
    trajectory.invalid_actions = len(acts) - trajectory.tool_calls
    return trajectory


def run_label(path: Path) -> str:
    """``hotpotqa_dev_0_500_ft_gpt-3.5-turbo-0613_..._0.0_2023-09-21-16-19-51`` ->
    ``ft_gpt-3.5-turbo-0613_..._0.0``."""
    return _STAMP.sub("", path.stem).removeprefix("hotpotqa_dev_0_500_")


def import_dump(path: str | Path, out: str | Path, docs: list[dict]) -> Path:
    """Write ``OUT/<label>/results_<stamp>.json`` and its samples file; returns the folder."""
    path = Path(path)
    dump = read_json(path, "FireAct evaluation dump")
    if not isinstance(dump, dict):
        raise FireactError(f"{path}: expected a JSON object keyed by question index")
    by_id = {doc["id"]: doc for doc in docs}
    unknown = [k for k in dump if f"hotpotqa-{k}" not in by_id]
    if unknown:
        raise FireactError(f"{path}: {len(unknown)} keys are not among the 500 asked "
                           f"questions (e.g. {unknown[0]}); is it a HotpotQA dev dump?")
    label = run_label(path)
    stamp = "2023-01-01T00-00-00.000000"
    metadata = {"dataset": "hotpotqa", "method": "react", "shots": "zeroshot",
                "search": "FireAct's Google (SerpAPI) as recorded",
                "questions": f"FireAct's 500; {len(docs) - len(dump)} absent from the dump, "
                             "counted unfinished",
                "source": str(path.name)}
    trajectories = {}
    for key, value in dump.items():
        try:
            trajectories[key] = trajectory_of(value, f"{path}, question {key}")
        except FireactError as err:
            log.warning("%s: counted unfinished", err)
    if malformed := len(dump) - len(trajectories):
        metadata["questions"] += f"; {malformed} malformed entries, counted unfinished"
    samples = []
    for doc_id, doc in enumerate(docs):
        trajectory = trajectories.get(doc["id"].removeprefix("hotpotqa-"), Trajectory())
        response = trajectory.to_json()
        metrics = {k: v for k, v in qa(doc, [response]).items() if k not in NOT_RECORDED}
        samples.append(sample_record(doc_id, doc, doc["question"], metadata, response, metrics))
    folder = Path(out) / label
    write_run(folder, TASK, metadata, samples, label, stamp)
    return folder
