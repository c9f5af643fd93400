"""Question sets, from the Hugging Face Hub by default or from local files in FireAct's layout.

Every loader is an lm-eval ``custom_dataset`` hook: it receives the run's metadata as
keyword arguments (``QuestionSource``'s fields among them) and returns a ``DatasetDict``
whose ``test`` split holds the docs to run, ``{"id", "question", "answer"}`` (MMLU adds
``choices``).  ``split=test`` (the default) is the evaluation set; ``split=train`` the
dataset's training questions, for a teacher (HotpotQA train, StrategyQA train, MMLU dev+val;
Bamboogle, held out, has none).  ``n`` draws that many with a seeded shuffle
(``sample_seed``), so ``--limit k`` runs the first k of the same draw and a larger ``n``
extends a smaller one.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import iter_jsonl, read_json, read_text
from fireact_eval.options import from_known_keys, option
from fireact_eval.tasks import TASKS_DIR

log = logging.getLogger(__name__)
DEMO_QUESTIONS = Path(TASKS_DIR) / "data" / "demo_questions.jsonl"
# other questions over the same corpus, none a test question: the demo's training split
DEMO_TRAIN_QUESTIONS = Path(TASKS_DIR) / "data" / "demo_train_questions.jsonl"
HOTPOTQA_HF = ("hotpotqa/hotpot_qa", "distractor")
SPLITS = ("test", "train")


@dataclass(frozen=True)
class QuestionSource:
    """Which questions a task runs: the data options of ``--metadata``."""

    dataset: str = option("", "the dataset's name in tables (set by each task's YAML)", "data")
    data_dir: str = option("", "FireAct's data layout on disk instead of the Hub", "data")
    questions: str = option("", "your own questions: a JSON list or JSONL of "
                            "{question, answer}", "data")
    split: str = option("test", "test: the evaluation set; train: training questions, for a "
                        "teacher", "data", choices=SPLITS)
    n: int = option(0, "questions drawn by a seeded shuffle (0: all, in order)", "data")
    sample_seed: int = option(0, "seed of that draw", "data")

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], strict: bool = False) -> QuestionSource:
        source = from_known_keys(cls, {k: "" if v is None else v for k, v in metadata.items()},
                                 strict)
        if source.n < 0:
            raise FireactError(f"n must be 0 (all) or more, got {source.n}")
        return source


def draw(docs: list[dict], n: int, seed: int) -> list[dict]:
    """The first ``n`` of a seeded shuffle (all of them, in order, when ``n`` is 0)."""
    if not n:
        return docs
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    return [docs[i] for i in order[:n]]
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


def accepts_question_file(loader: Callable[..., list[dict]]) -> Callable[..., Any]:
    """Make ``loader(data_dir, split) -> docs`` an lm-eval ``custom_dataset`` hook that
    reads the data options (``QuestionSource``) from the metadata.  ``questions=PATH``
    runs a task on your own questions (a JSON list or JSONL of ``{"question", "answer"}``):
    e.g. a teacher on training questions, never the test set.  Loaded once per process and
    source: the preflight's load is the one lm-eval gets."""

    @functools.wraps(loader)
    def load(**metadata: Any):
        source = QuestionSource.from_metadata(metadata)
        key = (loader.__name__, *asdict(source).values())
        if key not in _LOADED:
            docs = _user_questions(source.questions) if source.questions else loader(
                data_dir=source.data_dir or None, split=source.split)
            if source.n > len(docs) and source.split == "test":  # tables say n=5000
                raise FireactError(f"n={source.n}, but {loader.__name__}'s test questions "
                                   f"number {len(docs):,}; give n up to that (0: all)")
            if source.n > len(docs):  # a teacher's "up to n" training questions
                log.warning("n=%d: %s has %d %s questions; all of them are drawn",
                            source.n, loader.__name__, len(docs), source.split)
            _LOADED[key] = _as_dataset(draw(docs, source.n, source.sample_seed))
        return _LOADED[key]

    return load


def _user_questions(questions: str) -> list[dict]:
    if str(questions).endswith(".jsonl"):
        rows = [row for _, row in iter_jsonl(questions, "questions file")]
    else:
        rows = read_json(questions, "questions file")
    if not isinstance(rows, list) or not rows:
        raise FireactError(f"{questions}: expected a non-empty list of questions")
    return [_user_doc(row, str(questions), i) for i, row in enumerate(rows)]


def fireact_subset(rows: list[Any], seed: int = HOTPOTQA_EVAL_SEED, size: int = HOTPOTQA_EVAL_SIZE):
    """FireAct's evaluation subset: the first ``size`` of a seeded shuffle of all indices."""
    indices = list(range(len(rows)))
    random.Random(seed).shuffle(indices)
    return indices[:size]


def _read_rows(source: Path) -> list:
    rows = read_json(source)
    if not isinstance(rows, list):
        raise FireactError(f"{source}: expected a JSON list of questions")
    return rows


@accepts_question_file
def hotpotqa(data_dir: str | None = None, split: str = "test") -> list[dict]:
    """HotpotQA (distractor).  test: FireAct's 500-question evaluation subset of dev;
    train: the 90,447 training questions.

    With ``data_dir``: ``DATA_DIR/hotpotqa/dev.json`` (FireAct's file, 7,405 rows) or
    ``train.json`` (HotpotQA's ``hotpot_train_v1.1.json``).  Without: ``hotpotqa/hotpot_qa``
    (distractor; validation or train) from the Hub.  CC BY-SA 4.0.
    """
    name = "dev.json" if split == "test" else "train.json"
    if data_dir:
        source: Path | str = Path(data_dir) / "hotpotqa" / name
        rows = _read_rows(Path(source))
    else:
        path, config = HOTPOTQA_HF
        hub_split = "validation" if split == "test" else "train"
        source = f"{path} ({config}, {hub_split})"
        rows = hub_dataset(f"hotpotqa/{name}", path, config, split=hub_split).select_columns(
            ["id", "question", "answer"]).to_list()
    chosen = fireact_subset(rows) if split == "test" else range(len(rows))
    return [_qa_doc(rows[i], source, i, f"hotpotqa-{split}-{i}" if split != "test"
                    else f"hotpotqa-{i}") for i in chosen]


@accepts_question_file
def bamboogle(data_dir: str | None = None, split: str = "test") -> list[dict]:
    """Bamboogle (Press et al., 2022), 125 two-hop questions Google cannot answer directly;
    FireAct's held-out task.  Local: ``DATA_DIR/bamboogle/test.csv`` (Question,Answer);
    Hub: ``chiayewken/bamboogle`` (test).  MIT licence."""
    if split != "test":
        raise FireactError("bamboogle is FireAct's held-out task: it has no training split")
    if data_dir:
        source: Path | str = Path(data_dir) / "bamboogle" / "test.csv"
        if not Path(source).is_file():
            raise FireactError(f"data file not found: {source}")
        rows = list(csv.DictReader(io.StringIO(read_text(source), newline="")))
    else:
        source = "chiayewken/bamboogle (test)"
        rows = hub_dataset("bamboogle/test.csv", "chiayewken/bamboogle", split="test").to_list()
    rows = [{"question": r.get("Question"), "answer": r.get("Answer")} for r in rows]
    return [_qa_doc(r, source, i, f"bamboogle-{i}") for i, r in enumerate(rows)]


@accepts_question_file
def strategyqa(data_dir: str | None = None, split: str = "test") -> list[dict]:
    """StrategyQA (Geva et al., 2021) yes/no questions needing implicit multi-step reasoning.
    test: FireAct's ``DATA_DIR/strategyqa/strategyqa_dev.json`` (229) or ``ChilleD/StrategyQA``
    (test); train: ``strategyqa_train_filtered.json`` (2,821) or ``ChilleD/StrategyQA``
    (train).  MIT licence.  Answers become "yes"/"no"."""
    name = "strategyqa_dev.json" if split == "test" else "strategyqa_train_filtered.json"
    if data_dir:
        source: Path | str = Path(data_dir) / "strategyqa" / name
        rows = _read_rows(Path(source))
    else:
        source = f"ChilleD/StrategyQA ({split})"
        rows = hub_dataset(f"strategyqa/{name}", "ChilleD/StrategyQA", split=split).to_list()
    docs = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("answer"), bool):
            raise FireactError(f"{source}, row {i}: expected 'question' and a boolean 'answer'")
        row = {"id": row.get("qid", f"strategyqa-{split}-{i}"), "question": row.get("question"),
               "answer": "yes" if row["answer"] else "no"}
        docs.append(_qa_doc(row, source, i, f"strategyqa-{i}"))
    return docs


LETTERS = "ABCD"
MMLU_SPLITS = {"test": ("test",), "train": ("dev", "val")}  # FireAct's training questions
MMLU_HUB_SPLITS = {"test": "test", "dev": "dev", "val": "validation"}


def _mmlu_doc(question: str, choices: list[str], letter: str, doc_id: str) -> dict:
    options = "\n".join(f"{k}. {text}" for k, text in zip(LETTERS, choices, strict=True))
    return {"id": doc_id, "question": f"{question.strip()}\n{options}", "answer": letter,
            "choices": list(choices)}


@accepts_question_file
def mmlu(data_dir: str | None = None, split: str = "test") -> list[dict]:
    """MMLU (Hendrycks et al., 2021), 57 subjects; the prompt shows the options A-D.  test:
    14,042 questions; train: the dev and val questions (1,816).  Local: headerless
    ``DATA_DIR/mmlu/{test,dev,val}/*.csv`` rows ``question,A,B,C,D,answer``; Hub:
    ``cais/mmlu`` (all).  MIT licence."""
    docs = []
    for part in MMLU_SPLITS[split]:
        if data_dir:
            files = sorted((Path(data_dir) / "mmlu" / part).glob("*.csv"))
            if not files:
                raise FireactError(f"data file not found: {Path(data_dir) / 'mmlu' / part}/*.csv")
            for path in files:
                for i, row in enumerate(csv.reader(io.StringIO(read_text(path), newline=""))):
                    if len(row) != 6 or row[5].strip() not in LETTERS:
                        raise FireactError(
                            f"{path}, row {i}: expected question,A,B,C,D,answer (A-D)")
                    docs.append(_mmlu_doc(row[0], row[1:5], row[5].strip(), f"{path.stem}-{i}"))
        else:
            rows = hub_dataset(f"mmlu/{part}/*.csv", "cais/mmlu", "all",
                               split=MMLU_HUB_SPLITS[part])
            for i, row in enumerate(rows):
                docs.append(_mmlu_doc(row["question"], row["choices"], LETTERS[row["answer"]],
                                      f"{row['subject']}-{part}-{i}" if part != "test"
                                      else f"{row['subject']}-{i}"))
    return docs


@accepts_question_file
def world(data_dir: str | None = None, split: str = "test") -> list[dict]:
    """The generated world (``tools.world``): two-hop questions over fictional provinces,
    ~1,200 test and ~4,400 training ones, no entity shared between the splits; ``n=300``
    draws 300."""
    from fireact_eval.tools.world import world_folder

    source = world_folder() / f"{split}.jsonl"
    return [_qa_doc(r, source, i, f"world-{split}-{i}") for i, (_, r) in
            enumerate(iter_jsonl(source))]


@accepts_question_file
def demo(data_dir: str | None = None, split: str = "test") -> list[dict]:
    """The embedded demo: multi-hop questions over the project's own small corpus; 36 test
    questions, and 32 training ones (for a teacher, or the agent's own self-improvement)."""
    source = DEMO_QUESTIONS if split == "test" else DEMO_TRAIN_QUESTIONS
    rows = [row for _, row in iter_jsonl(source)]
    prefix = "demo" if split == "test" else "demo-train"
    return [_qa_doc(r, source, i, f"{prefix}-{i}") for i, r in enumerate(rows)]
