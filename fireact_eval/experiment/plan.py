"""An experiment as cells: each fine-tuned cell trains on one (base, data, size) and
evaluates the result; each prompted cell evaluates a base few-shot.

A cell's folders are named by hashes of everything that changes what they hold: the
training folder by the base, the data (its source files' sha256, the mix), the size and
every training option; the evaluation folder by that and every evaluation setting.  So a
rerun finds finished cells by name, and a changed evaluation setting re-evaluates without
retraining.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from fireact_eval.catalog import GRPO_LOOPS
from fireact_eval.experiment import layout
from fireact_eval.experiment.config import (
    Experiment,
    condition_task,
    continued,
    recipe_of,
    training_options,
    tuned_layout,
)
from fireact_eval.rollout import DEFAULT_MAX_TURNS

PROMPTED, FINETUNED = "prompted", "finetuned"
# Rates shipped for the one setting they were measured in: the 2-core CPU of
# docs/performance.md with the offline SmolLM2-135M, evaluated by ``hf`` on ``cpu`` (LoRA
# seconds per row: reproduce, 1,000 row-epochs in 47 min; rollout seconds per question and
# turn budget: the demo, 36 questions x 5 turns in 85 s).  A cell of another base, backend or
# device gets minutes only from this experiment's finished cells of its own kind: a rate
# measured elsewhere would be a guess (a 7B on vLLM is not a 135M on a CPU).
SHIPPED_RATES_MACHINE = "a 2-core CPU"
# train_rate_key -> training seconds per row (GRPO: per rollout; the demo's SFT + GRPO run of
# docs/training.md, 600 rollouts of 5 turns in 55 min)
SHIPPED_TRAIN_RATES = {"smollm2@cpu": 2.8, "smollm2 grpo@cpu": 5.5}
SHIPPED_EVAL_RATES = {"smollm2 on hf@cpu": 0.47}  # eval_rate_key -> seconds per turn


def train_rate_key(record: dict) -> str:
    """What a training rate depends on that the plan knows, from a cell's record: the base,
    the method (GRPO's rows are rollouts), and the machine, told by the evaluation's device
    (a cell trains where it evaluates)."""
    grpo = " grpo" if record["axes"].get("grpo") else ""
    return f"{record['axes']['base']}{grpo}@{record['evaluation']['device']}"


def eval_rate_key(record: dict) -> str:
    """What a rollout rate depends on: base, lm-eval backend, device."""
    spec = record["evaluation"]
    return f"{record['axes']['base']} on {spec['model']}@{spec['device']}"


@cache
def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Cell:
    """One point of the grid.  ``axes``: its base, data and size (data and size None for a
    prompted cell); ``recipe``: what its training is made of (None: prompted);
    ``evaluation``: the lm_eval run's settings."""

    kind: str
    axes: dict
    recipe: dict | None
    evaluation: dict

    @property
    def train_hash(self) -> str | None:
        return _digest(self.recipe) if self.recipe is not None else None

    @property
    def eval_hash(self) -> str:
        return _digest({"train": self.train_hash, "base": self.axes["base"],
                        "evaluation": self.evaluation})

    @property
    def round(self) -> int:
        """0: fine-tuned on the named data; r: the r-th self-improvement round after it."""
        return int(self.axes.get("round", 0))

    @property
    def wave(self) -> int:
        """When it can run: after the cell it continues (a round after the round before,
        GRPO after its SFT cell)."""
        return self.round + (1 if self.axes.get("grpo") else 0)

    @property
    def continues(self) -> str | None:
        """The train hash of the cell whose model this one starts from (None: the base)."""
        return None if self.recipe is None else self.recipe.get("previous")

    @property
    def name(self) -> str:
        if self.kind == PROMPTED:
            return f"prompted base={self.axes['base']}"
        return (f"finetuned base={self.axes['base']} data={self.axes['data']} "
                f"size={self.axes['size'] or 'all'}"
                + (f" round={self.round}" if self.round else "")
                + (" grpo" if self.axes.get("grpo") else "")
                + (f" loop={self.axes['loop']}" if self.axes.get("loop") else ""))

    def train_dir(self, root: Path) -> Path:
        return layout.train_dir(root, str(self.train_hash))

    def model_dir(self, root: Path) -> Path:
        return layout.model_dir(root, str(self.train_hash))

    def eval_dir(self, root: Path) -> Path:
        return layout.eval_dir(root, self.eval_hash)

    def record_path(self, root: Path) -> Path:
        return layout.cell_record(root, self.eval_hash)

    def results_dir(self, root: Path) -> Path:
        return layout.results_dir(root, self.eval_hash)

    def tasks(self) -> list[str]:
        spec = self.evaluation
        return [condition_task(t, n) for t in spec["tasks"] for n in spec["noise"]]

    def record(self) -> dict:
        return {**asdict(self), "name": self.name, "train_hash": self.train_hash,
                "eval_hash": self.eval_hash}


def data_identity(ex: Experiment, name: str) -> dict:
    """What a named training set is made of, by content."""
    spec = ex.data[name]
    if spec.file:
        return {"file": file_sha256(spec.file)}
    if spec.oracle:  # what the oracle writes: the questions, the corpus it searches, noise
        from fireact_eval.data.oracle import ORACLE_POOL_VERSION, oracle_corpus, oracle_questions
        from fireact_eval.perturb import parse_noise

        layout = tuned_layout(ex)
        return {"oracle": spec.oracle,
                "questions": file_sha256(str(oracle_questions(spec.oracle))),
                "corpus": file_sha256(str(oracle_corpus(spec.oracle))),
                **({"noise": spec.oracle_noise} if spec.oracle_noise != "off" else {}),
                **({"layout": layout} if layout != "alpaca" else {}),
                **({"pool": ORACLE_POOL_VERSION} if parse_noise(spec.oracle_noise).has("random")
                   else {})}
    if spec.import_fireact:
        return {"import_fireact": file_sha256(spec.import_fireact),
                "decontaminated_against": spec.data_dir, **({"mix": spec.mix} if spec.mix
                                                            else {})}
    return {"mix": spec.mix, "files": [file_sha256(f) for f in spec.files]}


def cells(ex: Experiment) -> list[Cell]:
    """Every cell: a prompted one per base (when ``prompted`` is given), then a fine-tuned
    one per base x data x size."""
    base_eval = {k: v for k, v in asdict(ex.evaluate).items()}
    found = []
    if ex.prompted is not None:
        for base in ex.axes["base"]:
            found.append(Cell(PROMPTED, {"base": base, "data": None, "size": None}, None,
                              {**base_eval, "metadata": {**ex.evaluate.metadata,
                                                         **ex.prompted}}))
    tuned_eval = {**base_eval, "metadata": {**ex.evaluate.metadata, **ex.finetuned}}
    for base, data, size in itertools.product(ex.axes["base"], ex.axes["data"],
                                              ex.axes["size"]):
        recipe = {"base": base, "data": data_identity(ex, data), "size": size,
                  "train": ex.train}
        cell = Cell(FINETUNED, {"base": base, "data": data, "size": size}, recipe, tuned_eval)
        found.append(cell)
        # GRPO from the SFT cell's adapter; its questions, by content
        for loop in ex.grpo.loops if ex.grpo is not None and continued(ex.grpo, data) else []:
            own = {} if loop == GRPO_LOOPS[0] else {"loop": loop}  # the first loop's hashes
            found.append(Cell(FINETUNED, {"base": base, "data": data, "size": size,
                                          "grpo": True, **own},
                              {"base": base, "previous": cell.train_hash,
                               "grpo": {**recipe_of(ex.grpo), **own},
                               "questions": grpo_questions_identity(ex.grpo.dataset),
                               "format": tuned_eval["metadata"].get("format", "alpaca"),
                               "tool_template": tuned_eval["metadata"].get("tool_template")},
                              tuned_eval))
        rounds = ex.improve.rounds if ex.improve and continued(ex.improve, data) else 0
        for number in range(1, rounds + 1):
            # a round is made of the one before it (its whole recipe, by hash) and the
            # rounds' settings, so a changed SFT cell remakes every round after it
            recipe = {"base": base, "round": number, "previous": cell.train_hash,
                      "improve": recipe_of(ex.improve), "train": ex.train,
                      "evaluation": tuned_eval}  # the teacher decodes as it is evaluated
            cell = Cell(FINETUNED, {"base": base, "data": data, "size": size,
                                    "round": number}, recipe, tuned_eval)
            found.append(cell)
    return found


def grpo_questions_identity(dataset: str) -> str:
    """A GRPO cell's training questions by content where the set ships with the package
    (the demo's, the world's), else by name (a Hub or data_dir set)."""
    from fireact_eval.data.oracle import ORACLES, oracle_questions

    return file_sha256(str(oracle_questions(dataset))) if dataset in ORACLES else dataset


def _oracle_questions(name: str) -> str:
    from fireact_eval.data.oracle import oracle_questions

    return str(oracle_questions(name))  # at most one oracle trajectory per question


def rows_of(path: str) -> int:
    from fireact_eval.data.examples import read_rows

    return len(read_rows(path))


def chars_per_row(path: str, limit: int = 0) -> float:
    """The mean length (characters of the row as JSON) of the first ``limit`` rows (0:
    all): what training costs in proportion to, where rows differ in length (a retry
    oracle's rows are longer than a clean one's; charging rows alike missed by half)."""
    import json

    from fireact_eval.data.examples import read_rows

    rows = read_rows(path)
    rows = rows[:limit] if limit else rows
    return sum(len(json.dumps(r, ensure_ascii=False)) for r in rows) / max(len(rows), 1)


@dataclass(frozen=True)
class Estimate:
    """What a cell will cost: training steps and rows, rollouts, seconds (and where the
    rates came from)."""

    train_rows: int
    train_steps: int
    rollouts: int
    turns: int  # the turn budget of each rollout
    at_most: bool = False  # a mix or import not made yet: counted from its sources' rows
    unknown: bool = False  # a round not generated yet: its training is not counted

    def seconds(self, train_rate: float | None, eval_rate: float | None,
                trained: bool = False) -> float | None:
        """Seconds still to spend at these rates (None where a rate it needs is unknown);
        ``trained``: the training is done, only the evaluation is left."""
        if eval_rate is None or (train_rate is None and self.train_rows and not trained):
            return None
        train = 0.0 if trained else self.train_rows * (train_rate or 0.0)
        return train + self.rollouts * self.turns * eval_rate


def estimate(ex: Experiment, cell: Cell, prepared: int | None = None) -> Estimate:
    """``prepared``: the rows of the cell's training file where it is made already (a mix
    or a decontaminated import can only be counted once made; a round's data once its
    generation ran: until then its training is ``unknown``)."""
    rows = steps = 0
    at_most = unknown = False
    if cell.round and prepared is None:
        unknown = True
    elif cell.axes.get("grpo") and ex.grpo is not None:  # its rows are rollouts
        steps, rows = ex.grpo.max_steps, ex.grpo.max_steps * ex.grpo.batch_size
    elif cell.recipe is not None:
        spec = ex.data[cell.axes["data"]]
        available = prepared
        if available is None:
            available = sum(rows_of(f) for f in ([spec.file] if spec.file else
                                                 [spec.import_fireact] if spec.import_fireact
                                                 else [_oracle_questions(spec.oracle)]
                                                 if spec.oracle
                                                 else spec.files))
            # an import drops rows (decontamination), a mix keeps some: the made file
            # has at most the sources' rows, and a mix may have fewer than ``size``
            # a noisy oracle leaves out a question whose search failed 4 times (p 0.5: at
            # most 1 in 8), so a size of up to half its questions is met exactly
            at_most = not (spec.file or spec.oracle) and (
                not cell.axes["size"] or bool(spec.mix) or cell.axes["size"] > available
            ) or spec.oracle_noise != "off" and not 0 < cell.axes["size"] <= available // 2
        size = 0 if cell.round else cell.axes["size"]  # a round trains on all it made
        rows = min(size or available, available)
        train = training_options(ex)
        per_step = train.batch_size * train.grad_accum
        steps = train.max_steps or math.ceil(math.ceil(rows / per_step) * train.epochs)
        rows = steps * per_step if train.max_steps else int(rows * train.epochs)
    # the questions a task runs: --limit's first N of its draw (--metadata n), else 500
    drawn = [int(x) for x in (cell.evaluation["limit"],
                              cell.evaluation["metadata"].get("n", 0)) if x]
    rollouts = (min(drawn) if drawn else 500) * len(cell.tasks())
    if cell.round and ex.improve is not None:  # the round's own generation (n: 0 is all,
        rollouts += ex.improve.n * len(ex.improve.tasks) * ex.improve.repeats  # uncounted)
        unknown = unknown or not ex.improve.n
    turns = int(cell.evaluation["metadata"].get("max_turns", DEFAULT_MAX_TURNS))
    return Estimate(rows, steps, rollouts, turns, at_most, unknown)
