"""Question sets, from the Hugging Face Hub by default or from local files in FireAct's layout.

Every loader is an lm-eval ``custom_dataset`` hook: it receives the run's metadata as
keyword arguments (``data_dir`` among them) and returns a ``DatasetDict`` whose ``test``
split holds docs ``{"id", "question", "answer"}``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.tasks import TASKS_DIR

DEMO_QUESTIONS = Path(TASKS_DIR) / "data" / "demo_questions.jsonl"
HOTPOTQA_HF = ("hotpotqa/hotpot_qa", "distractor", "validation")
HOTPOTQA_EVAL_SEED, HOTPOTQA_EVAL_SIZE = 233, 500  # FireAct's evaluation subset


def _qa_doc(row: Any, source: Path | str, row_no: int, doc_id: str) -> dict[str, str]:
    if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not isinstance(
        row.get("answer"), str
    ):
        raise FireactError(
            f"{source}, row {row_no}: expected an object with string 'question' and 'answer', "
            f"got {str(row)[:120]!r}"
        )
    return {"id": str(row.get("id", doc_id)), "question": row["question"], "answer": row["answer"]}


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FireactError(f"data file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise FireactError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


def _read_jsonl(path: Path) -> list[Any]:
    if not path.is_file():
        raise FireactError(f"data file not found: {path}")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise FireactError(
                        f"{path}, line {line_no}: not valid JSON ({err.msg})"
                    ) from None
    return rows


def _as_dataset(docs: list[dict[str, str]]):
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def fireact_subset(rows: list[Any], seed: int = HOTPOTQA_EVAL_SEED, size: int = HOTPOTQA_EVAL_SIZE):
    """FireAct's evaluation subset: the first ``size`` of a seeded shuffle of all indices."""
    indices = list(range(len(rows)))
    random.Random(seed).shuffle(indices)
    return indices[:size]


def hotpotqa(data_dir: str | None = None, **_: Any):
    """HotpotQA dev (distractor), FireAct's 500-question evaluation subset.

    With ``data_dir``: ``DATA_DIR/hotpotqa/dev.json`` (FireAct's file, 7,405 rows).
    Without: ``hotpotqa/hotpot_qa`` (distractor, validation) from the Hub.  CC BY-SA 4.0.
    """
    if data_dir:
        source: Path | str = Path(data_dir) / "hotpotqa" / "dev.json"
        rows = _read_json(source)
        if not isinstance(rows, list):
            raise FireactError(f"{source}: expected a JSON list of questions")
    else:
        import datasets

        path, name, split = HOTPOTQA_HF
        source = f"{path} ({name}, {split})"
        rows = datasets.load_dataset(path, name, split=split).select_columns(
            ["id", "question", "answer"]
        ).to_list()
    docs = [_qa_doc(rows[i], source, i, f"hotpotqa-{i}") for i in fireact_subset(rows)]
    return _as_dataset(docs)


def demo(**_: Any):
    """The embedded demo: multi-hop questions over the project's own small corpus."""
    rows = _read_jsonl(DEMO_QUESTIONS)
    return _as_dataset([_qa_doc(r, DEMO_QUESTIONS, i, f"demo-{i}") for i, r in enumerate(rows)])
