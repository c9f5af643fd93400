"""An experiment folder's layout, spelled in one place: the runner writes it, the plan names
its cells' folders, ``results.frame`` reads it back.

    ROOT/experiment.json                 the plan: the config and every cell's record
    ROOT/train/<train_hash>/model/       a cell's checkpoint, with its training card
    ROOT/train/<train_hash>/data.json    a self-improvement round's training file
    ROOT/eval/<eval_hash>/cell.json      the cell's record (status, times, error, log),
                                         written after lm-eval's files: "done" means done
    ROOT/eval/<eval_hash>/results/       lm_eval's --output_path
"""

from __future__ import annotations

from pathlib import Path

PLAN = "experiment.json"
CELL_RECORD = "cell.json"
ROUND_DATA = "data.json"


def plan_file(root: Path) -> Path:
    return root / PLAN


def is_experiment(folder: str | Path) -> bool:
    return plan_file(Path(folder)).is_file()


def train_dir(root: Path, train_hash: str) -> Path:
    return root / "train" / train_hash


def model_dir(root: Path, train_hash: str) -> Path:
    return train_dir(root, train_hash) / "model"


def eval_dir(root: Path, eval_hash: str) -> Path:
    return root / "eval" / eval_hash


def cell_record(root: Path, eval_hash: str) -> Path:
    return eval_dir(root, eval_hash) / CELL_RECORD


def results_dir(root: Path, eval_hash: str) -> Path:
    return eval_dir(root, eval_hash) / "results"


def cell_records(root: Path) -> list[Path]:
    """Every cell record written under ``root`` (done, failed or running)."""
    return sorted(root.glob(f"eval/*/{CELL_RECORD}"))
