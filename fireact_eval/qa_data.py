"""Question sets, from the Hugging Face Hub by default or from local files in FireAct's layout.

Every loader is an lm-eval ``custom_dataset`` hook: it receives the run's metadata as
keyword arguments (``data_dir`` among them) and returns a ``DatasetDict`` whose ``test``
split holds docs ``{"id", "question", "answer"}`` (MMLU adds ``choices``).
"""

from __future__ import annotations

import csv
import functools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import iter_jsonl, read_json
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
    if not row["answer"].strip():
        raise FireactError(f"{source}, row {row_no}: the gold 'answer' is empty")
    return {"id": str(row.get("id", doc_id)), "question": row["question"], "answer": row["answer"]}


def _as_dataset(docs: list[dict[str, str]]):
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def _user_doc(row: Any, source: str, row_no: int) -> dict:
    """A row of a ``questions=`` file, in the shape of the task it replaces: ``choices``
    makes an MMLU doc (``answer`` a letter), a boolean ``answer`` a StrategyQA one."""
    doc_id = f"{Path(source).stem}-{row_no}"
    if isinstance(row, dict) and isinstance(row.get("choices"), list):
        if len(row["choices"]) != len(LETTERS) or row.get("answer") not in tuple(LETTERS):
            raise FireactError(f"{source}, row {row_no}: 'choices' needs 4 options and "
                               "'answer' a letter A-D")
        return _mmlu_doc(str(row.get("question")), row["choices"], row["answer"],
                         str(row.get("id", doc_id)))
    if isinstance(row, dict) and isinstance(row.get("answer"), bool):
        row = {**row, "answer": "yes" if row["answer"] else "no"}
    return _qa_doc(row, source, row_no, doc_id)


def hub_dataset(local: str, *args: Any, **kwargs: Any):
    """``datasets.load_dataset(*args, **kwargs)``; when the Hub cannot be reached, one error
    that names the way out: FireAct's local files (``data_dir``) or your own questions."""
    import datasets

    try:
        return datasets.load_dataset(*args, **kwargs)
    except Exception as err:  # network, offline mode, a moved dataset: all one message
        reason = " ".join(str(err).split())[:200]
        raise FireactError(
            f"could not load {args[0]} from the Hugging Face Hub ({type(err).__name__}: "
            f"{reason}); without the Hub, pass --metadata data_dir=DIR with FireAct's files "
            f"(DIR/{local}) or questions=PATH") from None


_LOADED: dict[tuple, Any] = {}  # the preflight and lm-eval load each question set once


def accepts_question_file(loader: Callable[..., Any]) -> Callable[..., Any]:
    """``--metadata questions=PATH`` runs a task on your own questions (a JSON list or JSONL of
    ``{"question", "answer"}``): e.g. a teacher on training questions, never the test set.
    Loaded once per process and source: the preflight's load is the one lm-eval gets."""

    @functools.wraps(loader)
    def load(questions: str | None = None, **metadata: Any):
        key = (loader.__name__, questions, metadata.get("data_dir"))
        if key not in _LOADED:
            _LOADED[key] = _load(questions, **metadata)
        return _LOADED[key]

    def _load(questions: str | None = None, **metadata: Any):
        if not questions:
            return loader(**metadata)
        if str(questions).endswith(".jsonl"):
            rows = [row for _, row in iter_jsonl(questions, "questions file")]
        else:
            rows = read_json(questions, "questions file")
        if not isinstance(rows, list) or not rows:
            raise FireactError(f"{questions}: expected a non-empty list of questions")
        return _as_dataset([_user_doc(row, str(questions), i) for i, row in enumerate(rows)])

    return load


def fireact_subset(rows: list[Any], seed: int = HOTPOTQA_EVAL_SEED, size: int = HOTPOTQA_EVAL_SIZE):
    """FireAct's evaluation subset: the first ``size`` of a seeded shuffle of all indices."""
    indices = list(range(len(rows)))
    random.Random(seed).shuffle(indices)
    return indices[:size]


@accepts_question_file
def hotpotqa(data_dir: str | None = None, **_: Any):
    """HotpotQA dev (distractor), FireAct's 500-question evaluation subset.

    With ``data_dir``: ``DATA_DIR/hotpotqa/dev.json`` (FireAct's file, 7,405 rows).
    Without: ``hotpotqa/hotpot_qa`` (distractor, validation) from the Hub.  CC BY-SA 4.0.
    """
    if data_dir:
        source: Path | str = Path(data_dir) / "hotpotqa" / "dev.json"
        rows = read_json(source)
        if not isinstance(rows, list):
            raise FireactError(f"{source}: expected a JSON list of questions")
    else:
        path, name, split = HOTPOTQA_HF
        source = f"{path} ({name}, {split})"
        rows = hub_dataset("hotpotqa/dev.json", path, name, split=split).select_columns(
            ["id", "question", "answer"]
        ).to_list()
    docs = [_qa_doc(rows[i], source, i, f"hotpotqa-{i}") for i in fireact_subset(rows)]
    return _as_dataset(docs)


@accepts_question_file
def bamboogle(data_dir: str | None = None, **_: Any):
    """Bamboogle (Press et al., 2022), 125 two-hop questions Google cannot answer directly;
    FireAct's held-out task.  Local: ``DATA_DIR/bamboogle/test.csv`` (Question,Answer);
    Hub: ``chiayewken/bamboogle`` (test).  MIT licence."""
    if data_dir:
        source: Path | str = Path(data_dir) / "bamboogle" / "test.csv"
        if not Path(source).is_file():
            raise FireactError(f"data file not found: {source}")
        with open(source, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        source = "chiayewken/bamboogle (test)"
        rows = hub_dataset("bamboogle/test.csv", "chiayewken/bamboogle", split="test").to_list()
    rows = [{"question": r.get("Question"), "answer": r.get("Answer")} for r in rows]
    return _as_dataset([_qa_doc(r, source, i, f"bamboogle-{i}") for i, r in enumerate(rows)])


@accepts_question_file
def strategyqa(data_dir: str | None = None, **_: Any):
    """StrategyQA (Geva et al., 2021) yes/no questions needing implicit multi-step reasoning.
    Local: FireAct's ``DATA_DIR/strategyqa/strategyqa_dev.json`` (229); Hub:
    ``ChilleD/StrategyQA`` (test).  MIT licence.  Answers become "yes"/"no"."""
    if data_dir:
        source: Path | str = Path(data_dir) / "strategyqa" / "strategyqa_dev.json"
        rows = read_json(source)
    else:
        source = "ChilleD/StrategyQA (test)"
        rows = hub_dataset("strategyqa/strategyqa_dev.json", "ChilleD/StrategyQA",
                           split="test").to_list()
    docs = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("answer"), bool):
            raise FireactError(f"{source}, row {i}: expected 'question' and a boolean 'answer'")
        row = {"id": row.get("qid", f"strategyqa-{i}"), "question": row.get("question"),
               "answer": "yes" if row["answer"] else "no"}
        docs.append(_qa_doc(row, source, i, f"strategyqa-{i}"))
    return _as_dataset(docs)


LETTERS = "ABCD"


def _mmlu_doc(question: str, choices: list[str], letter: str, doc_id: str) -> dict:
    options = "\n".join(f"{k}. {text}" for k, text in zip(LETTERS, choices, strict=True))
    return {"id": doc_id, "question": f"{question.strip()}\n{options}", "answer": letter,
            "choices": list(choices)}


@accepts_question_file
def mmlu(data_dir: str | None = None, **_: Any):
    """MMLU test (Hendrycks et al., 2021), 57 subjects, 14,042 questions; the prompt shows
    the options A-D.  Local: headerless ``DATA_DIR/mmlu/test/*.csv`` rows
    ``question,A,B,C,D,answer``; Hub: ``cais/mmlu`` (all, test).  MIT licence."""
    docs = []
    if data_dir:
        files = sorted((Path(data_dir) / "mmlu" / "test").glob("*.csv"))
        if not files:
            raise FireactError(f"data file not found: {Path(data_dir) / 'mmlu' / 'test'}/*.csv")
        for path in files:
            with path.open(encoding="utf-8", newline="") as fh:
                for i, row in enumerate(csv.reader(fh)):
                    if len(row) != 6 or row[5].strip() not in LETTERS:
                        raise FireactError(
                            f"{path}, row {i}: expected question,A,B,C,D,answer (A-D)"
                        )
                    docs.append(_mmlu_doc(row[0], row[1:5], row[5].strip(), f"{path.stem}-{i}"))
    else:
        rows = hub_dataset("mmlu/test/*.csv", "cais/mmlu", "all", split="test")
        for i, row in enumerate(rows):
            docs.append(_mmlu_doc(row["question"], row["choices"], LETTERS[row["answer"]],
                                  f"{row['subject']}-{i}"))
    return _as_dataset(docs)


@accepts_question_file
def demo(**_: Any):
    """The embedded demo: multi-hop questions over the project's own small corpus."""
    rows = [row for _, row in iter_jsonl(DEMO_QUESTIONS)]
    return _as_dataset([_qa_doc(r, DEMO_QUESTIONS, i, f"demo-{i}") for i, r in enumerate(rows)])
