"""The training card: what ``fireact-eval train`` writes beside an adapter or model
(``fireact_eval.json``), and the one reader of it.

Three layers meet at this file: the trainers write it (SFT and GRPO), the harness reads a
run's recipe and seed from the card beside the checkpoint that run loaded
(``harness/run_files``), and the experiment runner reads how long a cell trained, on what, and
how to load it.  So the record is typed here, once; a card written by an older version
(before ``adapter``) reads with its defaults, and keys this version does not know are kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import read_json, write_atomic

CARD_FILE = "fireact_eval.json"  # in the adapter's (or model's) folder

__all__ = ["CARD_FILE", "TrainingCard"]


@dataclass
class TrainingCard:
    """One checkpoint's recipe and what its training measured."""

    base_model: str
    method: str  # lora, full or grpo (``trainers.train.FINE_TUNING_METHODS``)
    adapter: bool  # a LoRA adapter of base_model, else a whole model
    data: str  # the training file (absolute), or a dataset's name (GRPO)
    data_sha256: str = ""
    data_format: str = "alpaca"
    data_origin: str = ""  # where the data came from (a teacher, an experiment's data)
    eval_format: str = "alpaca"  # the prompt format to evaluate it in
    examples: int = 0
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # the train flags
    train_losses: list[float] = field(default_factory=list)  # one per step
    train_loss_first: float | None = None
    train_loss_last: float | None = None
    train_loss_start: float | None = None  # mean of the first tenth of the steps
    train_loss_end: float | None = None  # mean of the last tenth
    eval_loss_last: float | None = None
    global_step: int = 0
    train_seconds: float = 0.0
    tokens_per_second: float = 0.0
    peak_memory_mb: int = 0
    peak_memory_kind: str = "RSS"
    host_allocator: str = ""
    world_size: int = 1
    distributed_type: str = "NO"
    fireact_eval_version: str = ""
    eval_commands: list[str] = field(default_factory=list)  # lm_eval commands, hf and vllm
    merged: str = ""  # the merged model's folder (``--merge``)
    rewards: list[float] | None = None  # GRPO: the mean reward per step
    rollout_settings: dict[str, Any] | None = None  # GRPO: the environment's settings
    # trained on evaluation (test) questions, asked for in so many words (--train-on-test);
    # tables say so beside every number of the checkpoint
    train_on_test: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer version, kept

    @property
    def limit(self) -> int:
        """``train --limit``: the first N rows of ``data`` trained on (0: all)."""
        return int(self.hyperparameters.get("limit") or 0)

    @property
    def rows_trained(self) -> int:
        """Rows seen, every epoch counted (steps x batch x gradient accumulation)."""
        hyper = self.hyperparameters
        return self.global_step * int(hyper.get("batch_size", 1)) * int(hyper.get(
            "grad_accum", 1))

    def recipe_digest(self) -> str:
        """What the checkpoint was trained from and how, its seed left out: two adapters of
        one recipe and two seeds share it, two of different learning rates never do."""
        recipe = {"base": self.base_model, "data": self.data_sha256, "method": self.method,
                  "hyperparameters": {k: v for k, v in self.hyperparameters.items()
                                      if k != "seed"}}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]

    @property
    def seed(self) -> Any:
        return self.hyperparameters.get("seed")

    def to_json(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "extra"}
        return {**self.extra, **{k: v for k, v in record.items()
                                 if v is not None or k.startswith(("train_loss", "eval_loss"))}}

    @classmethod
    def from_json(cls, record: Any, where: str = "training card") -> TrainingCard:
        if not isinstance(record, dict) or not {"base_model", "method"} <= set(record):
            raise FireactError(f"{where}: not a training card (no base_model and method)")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in record.items() if k in names}
        known.setdefault("adapter", record["method"] != "full")  # cards before "adapter"
        known.setdefault("data", "")
        return cls(**known, extra={k: v for k, v in record.items() if k not in names})

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / CARD_FILE
        write_atomic(path, json.dumps(self.to_json(), indent=2))
        return path

    @classmethod
    def read(cls, folder: str | Path) -> TrainingCard:
        """The card in ``folder`` (an adapter's or model's), or a FireactError."""
        path = Path(folder) / CARD_FILE
        return cls.from_json(read_json(path, "training card"), str(path))

    @classmethod
    def exists(cls, folder: str | Path) -> bool:
        return (Path(folder) / CARD_FILE).is_file()
