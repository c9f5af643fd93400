"""Training examples: what ``convert``, ``data import-fireact``, ``data mix`` and ``train``
pass around, and the two file layouts that hold them.

An example is a question and the agent's steps, labelled with the task and method that
produced it.  On disk it is a row of FireAct's layouts, alpaca (``.json``: ``instruction``,
``input``, ``output``), chat (``.jsonl``: ``messages``) or tools (``.jsonl``: ``messages``
with tool calls and ``tool`` results, and ``tools``: the schemas), with two more keys, ``task`` and
``method``, which FireAct's trainers ignore and our mixer and report read.  Rows are rendered
and parsed by the one transcript grammar, so a written file parses back to the same steps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fireact_eval.catalog import DATA_FORMATS, data_format_of
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import iter_jsonl, read_json, write_atomic
from fireact_eval.tool_calls import (
    parse_tool_messages,
    render_tool_messages,
    tool_schemas,
    tools_of,
)
from fireact_eval.trajectory import Step
from fireact_eval.transcript import (
    FINISH,
    parse_messages,
    parse_transcript,
    render_messages,
    to_text,
)

log = logging.getLogger(__name__)


@dataclass
class Example:
    """One training trajectory: the question as the zero-shot prompt shows it, the steps,
    and where it came from (``task``: the dataset; ``method``: react, cot or reflexion)."""

    question: str
    steps: list[Step]
    task: str = ""
    method: str = ""
    source: str = field(default="", compare=False)  # "file, row N", for reports

    @property
    def answer(self) -> str | None:
        last = self.steps[-1] if self.steps else None
        return last.argument if last is not None and last.action == FINISH else None

    @property
    def turns(self) -> int:
        return sum(s.kind == "act" for s in self.steps)

    def key(self) -> str:
        """Identity for de-duplication: the same question and the same transcript."""
        return json.dumps([self.question.strip(), to_text(self.steps)], ensure_ascii=False)


def method_of(steps: list[Step]) -> str:
    """What a transcript's shape says about the method that wrote it: one finishing turn
    is CoT, a reflection is Reflexion, anything else ReAct."""
    if any(s.kind == "reflection" for s in steps):
        return "reflexion"
    acts = [s for s in steps if s.kind == "act"]
    return "cot" if len(acts) == 1 and acts[0].action == FINISH else "react"


def to_row(example: Example, fmt: str) -> dict:
    labels = {k: v for k, v in (("task", example.task), ("method", example.method)) if v}
    if fmt == "alpaca":
        return {"instruction": example.question.strip(), "input": "",
                "output": to_text(example.steps), **labels}
    if fmt == "tools":
        tools = tools_of(example.steps)
        return {"messages": render_tool_messages(example.question.strip(), example.steps,
                                                 tools),
                "tools": tool_schemas(tools), **labels}
    return {"messages": render_messages(example.question.strip(), example.steps), **labels}


def row_format(row: object) -> str | None:
    """A row's layout: ``tools`` (messages and tool schemas), ``chat``, ``alpaca``, or None."""
    if isinstance(row, dict) and isinstance(row.get("messages"), list):
        return "tools" if isinstance(row.get("tools"), list) else "chat"
    if isinstance(row, dict) and isinstance(row.get("output"), str):
        return "alpaca"
    return None


def from_row(row: object, where: str) -> Example:
    """A row of either layout as an example; a FireactError naming ``where`` when it is
    neither or holds no Thought/Action turn."""
    fmt = row_format(row)
    if fmt in ("chat", "tools"):
        parse = parse_tool_messages if fmt == "tools" else parse_messages
        prompt, trajectory = parse(row["messages"])
        question = str(prompt[-1].get("content", "")) if prompt else ""
    elif fmt == "alpaca":
        question = str(row.get("instruction", "")) + (
            f"\n\n{row['input']}" if row.get("input") else "")
        trajectory = parse_transcript(row["output"])
    else:
        raise FireactError(f"{where}: neither chat ({{'messages': [...]}}) nor alpaca "
                           "({'instruction', 'input', 'output'})")
    if not trajectory.steps:
        raise FireactError(f"{where}: no Thought/Action turn in it")
    return Example(question, trajectory.steps, str(row.get("task", "")),
                   str(row.get("method", "")), where)


def read_rows(path: str | Path) -> list:
    path = Path(path)
    if path.suffix == ".json":
        rows = read_json(path, what="training data")
        if not isinstance(rows, list):
            raise FireactError(f"{path}: expected a JSON list of rows")
        return rows
    return [row for _, row in iter_jsonl(path, what="training data")]


def read_examples(path: str | Path) -> tuple[list[Example], list[str]]:
    """The examples of a file, and a line per row skipped (malformed: named, counted,
    nothing else lost)."""
    examples, skipped = [], []
    for i, row in enumerate(read_rows(path)):
        try:
            examples.append(from_row(row, f"{path}, row {i}"))
        except FireactError as err:
            log.warning("skipped %s", err)
            skipped.append(str(err))
    return examples, skipped




def check_suffix(out: str | Path, fmt: str) -> None:
    """A training file's name says its layout (``train`` reads ``.json`` as alpaca, anything
    else as JSONL): JSONL rows under a ``.json`` name, or JSON under another, would be read
    as the wrong layout later; refused before anything is written."""
    if fmt not in DATA_FORMATS:
        raise FireactError(f"unknown format {fmt!r}; valid: {', '.join(DATA_FORMATS)}")
    if (fmt == "alpaca") != (data_format_of(out) == "alpaca"):
        want = ".json" if fmt == "alpaca" else ".jsonl"
        raise FireactError(f"{out}: {fmt} rows are written as {want}; name the file *{want}")


def write_examples(examples: Iterable[Example], out: str | Path, fmt: str | None = None) -> int:
    """Write whole or not at all (a temporary file renamed into place); returns the count."""
    out = Path(out)
    fmt = fmt or data_format_of(out)
    check_suffix(out, fmt)
    rows = [to_row(e, fmt) for e in examples]
    write_atomic(out, json.dumps(rows, ensure_ascii=False, indent=1) if fmt == "alpaca"
                 else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)
