"""FireAct's released fine-tuning files, read into our training format.

FireAct released its training data by hand-assembled files (``data/finetune/`` of
anchen1011/FireAct): alpaca ``.json`` and chat ``.jsonl``, single task (HotpotQA, 500 rows),
multi-method (734), multi-task (1,344: + StrategyQA and MMLU) and both (2,063).  Importing
parses every row with our transcript grammar and writes it back in the same layout, with
three repairs: the alpaca MMLU rows carry the answer options at the top of ``output``, which
move back into the question (as our MMLU task shows them); a leading ``Question:`` label is
dropped (our zero-shot prompt is the bare question); and the closing ``Observation: Episode
finished`` line, which no agent sees, is not kept.  Each row is labelled with its method (from
its shape) and task: the rows of the ``hotpotqa*`` files, and rows of the multi-task files
whose question is in one of those, are HotpotQA; a question with options A-D is MMLU; the
rest of the multi-task files is StrategyQA (an answer is not enough: HotpotQA has yes/no
comparison questions, and some StrategyQA answers run on past the yes/no).  So a multi-task
file is read with the release's ``hotpotqa*`` files (given, beside it, or in the other
layout's folder); without one it is refused rather than half of it labelled StrategyQA.
"""

from __future__ import annotations

import os
import re
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fireact_eval.catalog import FINISH, data_format_of
from fireact_eval.data.decontaminate import DecontaminationReport, EvalIndex, decontaminate
from fireact_eval.data.examples import (
    Example,
    from_row,
    method_of,
    read_rows,
    to_row,
    write_examples,
)
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import files_read, refuse_overwrite, write_atomic
from fireact_eval.paths import cache_root

FIREACT_REPO = "anchen1011/FireAct"
FIREACT_COMMIT = "eb64124077dfbb33ede065099401add7c0284d8b"  # the commit that added the files
RELEASED = {  # file under data/finetune/ -> rows as released
    "alpaca_format/hotpotqa.json": 500,
    "alpaca_format/hotpotqa_multimethod.json": 734,
    "alpaca_format/multitask.json": 1344,
    "alpaca_format/multitask_multimethod.json": 2063,
    "gpt_format/hotpotqa.jsonl": 500,
    "gpt_format/hotpotqa_multimethod.jsonl": 734,
    "gpt_format/multitask.jsonl": 1344,
    "gpt_format/multitask_multimethod.jsonl": 2063,
}
_OPTIONS = re.compile(r"\A\s*((?:[A-D][.)] [^\n]*\n){4})")
_LETTER_OPTIONS = re.compile(r"^\s*A[.)] .+\n\s*B[.)] ", re.M)


def raw_url(name: str) -> str:
    base = os.environ.get("FIREACT_GITHUB_RAW", "https://raw.githubusercontent.com")
    return f"{base.rstrip('/')}/{FIREACT_REPO}/{FIREACT_COMMIT}/data/finetune/{name}"


def fetch_release(out: Path | None = None) -> Path:
    """Download the released files at the pinned commit (once; into the cache)."""
    out = out or cache_root() / "fireact" / FIREACT_COMMIT
    for name in RELEASED:
        target = out / name
        if target.is_file():
            continue
        try:
            with urllib.request.urlopen(raw_url(name), timeout=60) as response:
                data = response.read()
        except OSError as err:
            raise FireactError(f"could not fetch {raw_url(name)} ({err}); clone "
                               f"https://github.com/{FIREACT_REPO} and pass its folder") from None
        write_atomic(target, data)
    return out


def release_files(src: str | Path) -> list[Path]:
    """The released files under ``src``: a clone of FireAct, its ``data`` or ``data/finetune``
    folder, a
    holding ``alpaca_format``/``gpt_format``, or single files; ``github`` fetches."""
    if str(src) == "github":
        src = fetch_release()
    src = Path(src)
    if src.is_file():
        return [src]
    for root in (src / "data" / "finetune", src / "finetune", src):
        found = [root / name for name in RELEASED if (root / name).is_file()]
        if found:
            return found
    raise FireactError(f"no FireAct fine-tuning files under {src} (expected "
                       "data/finetune/alpaca_format/*.json or gpt_format/*.jsonl)")


def has_options(text: str) -> bool:
    """Whether ``text`` holds MMLU's lettered options (``A. ...`` then ``B. ...``)."""
    return bool(_LETTER_OPTIONS.search(text))


def task_of(example: Example, path: Path, hotpotqa_questions: set[str]) -> str:
    if path.name.startswith("hotpotqa") or example.question in hotpotqa_questions:
        return "hotpotqa"
    return "mmlu" if has_options(example.question) else "strategyqa"


def import_row(row: object, where: str) -> tuple[Example, bool]:
    """One released row as an example; whether its MMLU options were moved back."""
    moved = False
    if isinstance(row, dict) and isinstance(row.get("output"), str):
        options = _OPTIONS.match(row["output"])
        if options and not has_options(str(row.get("instruction", ""))):
            row = {**row, "instruction": f"{str(row.get('instruction', '')).rstrip()}\n"
                                         f"{options.group(1).rstrip()}",
                   "output": row["output"][options.end():]}
            moved = True
    example = from_row(row, where)
    question = example.question.strip()
    if question.lower().startswith("question:"):
        question = question[len("question:"):].strip()
    example.question = question
    example.method = method_of(example.steps)
    return example, moved


@dataclass
class FileReport:
    path: Path
    rows: int = 0
    imported: int = 0
    options_moved: int = 0
    skipped: list[str] = field(default_factory=list)
    by_task_method: Counter = field(default_factory=Counter)
    decontamination: DecontaminationReport = field(default_factory=DecontaminationReport)
    out: Path | None = None

    def lines(self) -> list[str]:
        mix = ", ".join(f"{t}:{m}={n}" for (t, m), n in sorted(self.by_task_method.items()))
        lines = [f"{self.path.name}: {self.rows} rows, {self.imported} imported -> {self.out} "
                 f"({mix}); MMLU options moved into the question: {self.options_moved}"]
        lines += [f"  skipped: {reason}" for reason in self.skipped]
        lines += [f"  {line}" for line in self.decontamination.lines()]
        lines += [f"  dropped ({m.kind}, {m.eval_set}): {m.source}: {m.train_question[:80]!r}"
                  for m in self.decontamination.matches]
        return lines


def import_target(path: Path, out_dir: Path) -> Path:
    """Where a released file is imported to: its layout folder and name under ``out_dir``."""
    return out_dir / path.parent.name / path.name


def import_file(path: Path, out_dir: Path, index: EvalIndex | None,
                hotpotqa_questions: set[str] = frozenset()) -> FileReport:
    report = FileReport(path)
    examples = []
    for i, row in enumerate(read_rows(path)):
        report.rows += 1
        where = f"{path.name}, row {i}"
        try:
            example, moved = import_row(row, where)
        except FireactError as err:
            report.skipped.append(str(err))
            continue
        if example.steps[-1].action != FINISH:
            report.skipped.append(f"{where}: does not end in finish[...]")
            continue
        rendered = to_row(example, data_format_of(path))
        again = from_row(rendered, where)
        if again.steps != example.steps or again.question.strip() != example.question:
            report.skipped.append(f"{where}: does not render back to the same steps")
            continue
        example.task = task_of(example, path, hotpotqa_questions)
        report.options_moved += moved
        examples.append(example)
    if index is not None:
        examples, report.decontamination = decontaminate(examples, index)
    report.imported = len(examples)
    report.by_task_method = Counter((e.task, e.method) for e in examples)
    report.out = import_target(path, out_dir)
    write_examples(examples, report.out)
    return report


def hotpotqa_files(files: list[Path]) -> list[Path]:
    """The release's HotpotQA files that label a multi-task file's rows: those given, those
    beside a given file, and those in the other layout's folder beside it."""
    found = {p for p in files if p.name.startswith("hotpotqa")}
    for path in files:
        for folder in (path.parent, *path.parent.parent.glob("*_format")):
            found.update(p for p in folder.glob("hotpotqa*") if p.suffix in (".json", ".jsonl"))
    return sorted(found)


def import_release(src: str | Path, out_dir: str | Path, index: EvalIndex | None,
                   force: bool = False) -> list[FileReport]:
    """Import every released file under ``src`` into ``out_dir`` (same names and layouts),
    refusing, before any is read, to write over a released file or (without ``force``) over
    any file that exists."""
    files = release_files(src)
    for path in files:
        refuse_overwrite(import_target(path, Path(out_dir)), files_read(files), force)
    sources = hotpotqa_files(files)
    multitask = [p.name for p in files if not p.name.startswith("hotpotqa")]
    if multitask and not sources:
        raise FireactError(f"{', '.join(multitask)}: its HotpotQA rows are told from "
                           "StrategyQA's by FireAct's hotpotqa*.json / .jsonl files, and none "
                           "is given or beside it; pass the release folder (data/finetune)")
    hotpotqa_questions = {import_row(row, "")[0].question for path in sources
                          for row in read_rows(path) if _parses(row)}
    return [import_file(path, Path(out_dir), index, hotpotqa_questions) for path in files]


def _parses(row: object) -> bool:
    try:
        import_row(row, "")
    except FireactError:
        return False
    return True
