"""The experiment YAML: what to train, what to evaluate, which axes to sweep.

Every section is checked against these dataclasses by type, with pydantic in strict mode (a
string is no boolean, a list no mapping, ``"5"`` no integer); a wrong type, an unknown key,
axis, preset, training option (``TrainConfig``'s own schema) or task, a base or data file
that is not there, or a grid of zero cells is one line naming the YAML file, the key and
what was expected, before anything runs.  ``${VAR}`` in a string is the
environment variable (an unset one is an error, never an empty path).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from fireact_eval.catalog import CUTOFF, GRPO_LOOPS, NOISE_CONDITIONS
from fireact_eval.data.oracle import ORACLES
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import read_text
from fireact_eval.perturb import parse_noise

AXES = ("base", "data", "size")  # what a grid may sweep; the cross product is its cells
OFFLINE_BASE = "smollm2"  # the offline SmolLM2-135M-Instruct (fireact_eval.offline_model)
# each section's schema: its fields' types, nothing coerced, no key that is not a field
_STRICT = ConfigDict(extra="forbid", strict=True)


@pydantic_dataclass(frozen=True, config=_STRICT)
class DataSpec:
    """One training set, by name: a file as ``train`` reads it, FireAct's released file
    imported (``data import-fireact``: decontaminated, labelled by task and method), or a
    ``data mix`` (a preset or ``task:method=N,...``) of ``files`` or of the imported file
    (``import_fireact`` + ``mix``: FireAct's multi-method file as ReAct only, CoT only, ...)."""

    file: str = ""
    oracle: str = ""  # an oracle teacher on its set's training questions: demo, world
    # the oracle searches through this noise (p 0.5, seeded per question) and searches
    # again after a result that is not the passage it asked for (data/oracle.py)
    oracle_noise: str = "off"  # a noise spec (perturb.parse_noise)
    import_fireact: str = ""
    mix: str = ""
    files: list[str] = field(default_factory=list)
    data_dir: str = ""  # FireAct's data folder, for import_fireact's decontamination


@pydantic_dataclass(frozen=True, config=_STRICT)
class ReplaySpec:
    """The replay search index built once for the whole experiment (``index build``):
    from trajectory files, and from FireAct's released evaluation dumps (imported with
    ``results import-fireact``); ``search: replay`` in the evaluation metadata uses it."""

    files: list[str] = field(default_factory=list)
    fireact_runs: list[str] = field(default_factory=list)
    data_dir: str = ""


@pydantic_dataclass(frozen=True, config=_STRICT)
class EvalSpec:
    """One ``lm_eval`` run per cell: the tasks, each under every noise condition."""

    tasks: list[str] = field(default_factory=list)
    noise: list[str] = field(default_factory=lambda: ["off"])
    limit: int = 0  # first N questions (0: all)
    model: str = "hf"  # lm_eval --model: hf or vllm
    model_args: dict[str, Any] = field(default_factory=dict)  # besides pretrained / peft
    batch_size: int | str = "auto"  # lm_eval --batch_size: N or auto
    device: str = "cpu"
    metadata: dict[str, Any] = field(default_factory=dict)  # --metadata for every task
    gen_kwargs: dict[str, Any] = field(default_factory=dict)


@pydantic_dataclass(frozen=True, config=_STRICT)
class ImproveSpec:
    """Self-improvement rounds after every fine-tuned cell (ReST, rejection sampling): the
    round's checkpoint is its own teacher (``fireact-eval generate``, zero-shot in the format
    it was trained in) on the training questions (``split=train``) of ``tasks``, ``repeats``
    sampled tries per question; ``convert`` keeps the successful ones and drops evaluation
    questions; they are added to the previous round's data (``keep_previous``) or replace
    it; the base is fine-tuned again on that (the same ``train`` options) and evaluated."""

    rounds: int = 1
    tasks: list[str] = field(default_factory=lambda: ["hotpotqa"])  # generate --tasks
    methods: list[str] = field(default_factory=lambda: ["react"])
    n: int = 500  # training questions per task, a seeded draw (0: all)
    repeats: int = 4  # tries per question (the uncertainty issue's repeats)
    gen_kwargs: str = "do_sample=True,temperature=0.7"
    metadata: dict[str, Any] = field(default_factory=dict)  # besides the evaluation's
    keep_previous: bool = True
    keep_contaminated: bool = False  # on only where the questions are no reported test set
    against: list[str] = field(default_factory=list)  # evaluation sets (default: all)
    strict_format: bool = True  # generate --strict-format: its own junk is not learnt
    train_on_test: bool = False  # metadata split=test: the teacher on evaluation questions
    # the named training sets (axes.data) whose SFT cells get rounds (empty: every one);
    # it chooses which cells exist, not what one is made of, so it is not in their hashes
    after: list[str] = field(default_factory=list)


@pydantic_dataclass(frozen=True, config=_STRICT)
class GrpoSpec:
    """A GRPO cell after every fine-tuned (SFT, round 0) cell: ``train --method grpo`` from
    its LoRA adapter (``--init-adapter``) on the training questions of ``dataset``, rolled
    out in the layout the cell is evaluated in, under the rollout settings of ``metadata``
    (``noise: none`` trains under the noise it is evaluated with), rewarded by the
    dataset's own score; then evaluated like every cell."""

    dataset: str = "demo"  # --data: whose training questions (split=train) it rolls out on
    group_size: int = 4
    batch_size: int = 8  # rollouts per step, a multiple of group_size
    max_steps: int = 50
    learning_rate: float = 1e-5
    kl: float = 0.0
    temperature: float = 1.0
    max_turns: int = 5
    cutoff: int = CUTOFF  # tokens of a rollout (the tools layout's schemas need 1024)
    reward: Literal["em", "em+format"] = "em"
    limit: int = 0  # the first N training questions (0: all)
    metadata: dict[str, Any] = field(default_factory=dict)  # rollout settings: noise=none
    train_on_test: bool = False  # metadata split=test: roll out on evaluation questions
    # the named training sets (axes.data) whose SFT cells it continues (empty: every one);
    # like improve.after, not in the cells' hashes
    after: list[str] = field(default_factory=list)
    # who rolls out (train --loop): a GRPO cell per loop after each SFT cell it continues;
    # a cell's loop is in its hash unless it is rollout_func (the cells before loops were)
    loops: list[Literal[GRPO_LOOPS]] = field(default_factory=lambda: [GRPO_LOOPS[0]])


def continued(spec: ImproveSpec | GrpoSpec, data: str) -> bool:
    """Whether the SFT cell trained on ``data`` is continued by ``spec``'s cells."""
    return not spec.after or data in spec.after


def recipe_of(spec: ImproveSpec | GrpoSpec) -> dict[str, Any]:
    """What a continuing cell is made of: the section's settings but ``after``."""
    from dataclasses import asdict

    # a field added since (cutoff) is in it only when set: earlier cells keep their hashes
    return {k: v for k, v in asdict(spec).items()
            if k not in ("after", "loops") and not (k == "cutoff" and v == CUTOFF)}


@dataclass(frozen=True)
class Experiment:
    """A whole grid: ``axes`` (base x data x size; ``size`` is the number of training
    rows, 0 for all), the named ``data``, ``train`` (``fireact-eval train`` options),
    ``evaluate``, the metadata of the prompted and fine-tuned evaluations (``prompted``
    absent: no prompted cells), and the ``launcher`` options (submitit's, for SLURM)."""

    path: Path
    axes: dict[str, list]
    data: dict[str, DataSpec]
    train: dict[str, Any]
    evaluate: EvalSpec
    prompted: dict | None
    finetuned: dict
    replay: ReplaySpec | None = None
    launcher: dict = field(default_factory=dict)
    improve: ImproveSpec | None = None
    grpo: GrpoSpec | None = None

    def error(self, key: str, message: str) -> FireactError:
        return FireactError(f"{self.path}: {key}: {message}")


_VAR = re.compile(r"\$\{(\w+)\}")


def _expand(value: Any, where: str, path: Path) -> Any:
    if isinstance(value, str):
        def var(match: re.Match) -> str:
            if match[1] not in os.environ:
                raise FireactError(f"{path}: {where}: ${{{match[1]}}} is not set")
            return os.environ[match[1]]
        return _VAR.sub(var, value)
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", path) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", path) for k, v in value.items()}
    return value


def _globbed(files: list[str], where: str, path: Path) -> list[str]:
    """Each entry as the files it matches (sorted); a pattern that matches none is an error."""
    import glob

    found = []
    for i, pattern in enumerate(files):
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise FireactError(f"{path}: {where}[{i}]: no file matches {pattern}")
        found += matches
    return found


def _key(where: str, loc: tuple) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _expected(error: dict) -> str:
    """What pydantic says the value should be, as the rest of our errors say it."""
    if error["type"] == "literal_error":  # "'off', 'none' or 'random'"
        return "one of " + error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
    text = error["msg"].removeprefix("Input should be ").replace("a valid ", "a ")
    return re.sub(r"\ba (?=[aeiou])", "an ", text.replace("a dictionary", "a mapping"))


def type_error(err: ValidationError, cls: type, where: str, path: Path) -> FireactError:
    """The first wrong key of a section as one line: file, key, what was expected, what
    was given (the branches of a union, ``int | str``, said together)."""
    errors = err.errors()
    first = errors[0]
    field_name = first["loc"][0]
    if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return FireactError(f"{path}: {where}.{field_name}: unknown key (valid: "
                            f"{', '.join(sorted(f.name for f in fields(cls)))})")
    loc = tuple(p for p in first["loc"] if isinstance(p, int) or p == field_name)
    same = [e for e in errors if tuple(p for p in e["loc"] if isinstance(p, int)
                                       or p == field_name) == loc]
    expected = " or ".join(dict.fromkeys(_expected(e) for e in same))
    said = expected if expected.startswith("one of ") else f"expected {expected}"
    return FireactError(f"{path}: {_key(where, loc)}: {said}, got "
                        f"{type(first['input']).__name__} {first['input']!r}")


def _build(cls: type, values: Any, where: str, path: Path) -> Any:
    if not isinstance(values, dict):
        raise FireactError(f"{path}: {where}: expected a mapping, got {type(values).__name__}")
    try:
        spec = cls(**values)
    except ValidationError as err:
        raise type_error(err, cls, where, path) from None
    globbed = {name: _globbed(getattr(spec, name), f"{where}.{name}", path)
               for name in ("files", "fireact_runs") if getattr(spec, name, None)}
    return replace(spec, **globbed) if globbed else spec


def _mapping(raw: dict, key: str, path: Path) -> dict:
    """A section that is a free mapping (train options, metadata, launcher options)."""
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise FireactError(f"{path}: {key}: expected a mapping, got {type(value).__name__}")
    return dict(value)


TOP = ("axes", "data", "train", "evaluate", "prompted", "finetuned", "replay", "launcher",
       "improve", "grpo")


def _unique_keys_loader():
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the
    last silently: ``epochs: 3`` then ``epochs: 30`` trains 30)."""
    import yaml

    class UniqueKeys(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice (line {line})",
                        key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeys


def load(path: str | Path) -> Experiment:
    """The experiment in ``path``, checked (files, options, tasks), or a FireactError."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.load(read_text(path, "experiment"), Loader=_unique_keys_loader())
    except yaml.YAMLError as err:
        raise FireactError(f"{path}: not YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise FireactError(f"{path}: expected a mapping of {', '.join(TOP)}")
    if unknown := sorted(set(raw) - set(TOP)):
        raise FireactError(f"{path}: {unknown[0]}: unknown key (valid: {', '.join(TOP)})")
    raw = _expand(raw, "", path)
    axes = raw.get("axes") or {}
    if not isinstance(axes, dict):
        raise FireactError(f"{path}: axes: expected a mapping of {', '.join(AXES)}")
    if unknown := sorted(set(axes) - set(AXES)):
        raise FireactError(f"{path}: axes.{unknown[0]}: unknown axis (valid: {', '.join(AXES)})")
    axes = {name: axes.get(name, default) for name, default in
            (("base", [OFFLINE_BASE]), ("data", []), ("size", [0]))}
    for name, values in axes.items():
        if not isinstance(values, list) or not values and name != "data":
            raise FireactError(f"{path}: axes.{name}: expected a non-empty list")
    if not isinstance(raw.get("data") or {}, dict):
        raise FireactError(f"{path}: data: expected a mapping of named training sets")
    data = {name: _build(DataSpec, spec, f"data.{name}", path)
            for name, spec in (raw.get("data") or {}).items()}
    experiment = Experiment(
        path=path, axes=axes, data=data, train=_mapping(raw, "train", path),
        evaluate=_build(EvalSpec, raw.get("evaluate") or {}, "evaluate", path),
        prompted=None if raw.get("prompted") is None else _mapping(raw, "prompted", path),
        finetuned=_mapping(raw, "finetuned", path),
        replay=_build(ReplaySpec, raw["replay"], "replay", path) if raw.get("replay") else None,
        launcher=_mapping(raw, "launcher", path),
        improve=_build(ImproveSpec, raw["improve"], "improve", path) if raw.get("improve")
        else None,
        grpo=_build(GrpoSpec, raw["grpo"], "grpo", path) if raw.get("grpo") else None)
    check(experiment)
    return experiment


def check(ex: Experiment) -> None:
    """Everything that can be checked without running anything."""
    from fireact_eval.data.mix import parse_mix

    for i, name in enumerate(ex.axes["data"]):
        if name not in ex.data:
            raise ex.error(f"axes.data[{i}]", f"no data named {name!r} (named: "
                           f"{', '.join(ex.data) or 'none'})")
    for i, size in enumerate(ex.axes["size"]):
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ex.error(f"axes.size[{i}]", f"a number of training rows (0: all), got {size!r}")
    for i, base in enumerate(ex.axes["base"]):
        if not isinstance(base, str) or not base:
            raise ex.error(f"axes.base[{i}]", "a model folder, a Hub name or 'smollm2'")
        # a local folder must hold a model; a Hub name (org/name) is loaded where it runs
        if base.startswith((".", "/", "~")) and not (Path(base).expanduser() / "config.json"
                                                    ).is_file():
            raise ex.error(f"axes.base[{i}]", f"no model folder {base} (no config.json)")
    for name, spec in ex.data.items():
        if spec.mix and not (spec.files or spec.import_fireact):
            raise ex.error(f"data.{name}.files", "a mix needs the files it draws from (or "
                           "import_fireact: a mix of FireAct's imported file)")
        sources = [bool(spec.file), bool(spec.oracle), bool(spec.import_fireact),
                   bool(spec.files)]
        if sum(sources) != 1 or spec.mix and (spec.file or spec.oracle):
            raise ex.error(f"data.{name}", "give exactly one of file, oracle, import_fireact, "
                           "files (a mix of files), and mix only with import_fireact or files")
        if spec.oracle and spec.oracle not in ORACLES:
            raise ex.error(f"data.{name}.oracle", f"one of {', '.join(ORACLES)} (an oracle "
                           "teacher on that set's training questions)")
        try:
            parse_noise(spec.oracle_noise)
        except FireactError as err:
            raise ex.error(f"data.{name}.oracle_noise", str(err)) from None
        if spec.oracle_noise != "off" and not spec.oracle:
            raise ex.error(f"data.{name}.oracle_noise", "the noise an oracle searches "
                           "through: give oracle")
        for key, file in (("file", spec.file), ("import_fireact", spec.import_fireact),
                          *((f"files[{i}]", f) for i, f in enumerate(spec.files))):
            if file and not Path(file).is_file():
                raise ex.error(f"data.{name}.{key}", f"no such file {file}")
        if spec.mix:
            try:
                parse_mix(spec.mix)
            except FireactError as err:
                raise ex.error(f"data.{name}.mix", str(err)) from None
        elif spec.files:
            raise ex.error(f"data.{name}.files", "files go with mix")
    if ex.axes["data"] and not ex.train:
        raise ex.error("train", "fine-tuning cells need train options (method, epochs, ...)")
    _check_train(ex)
    _check_evaluate(ex)
    _check_improve(ex)
    _check_grpo(ex)
    if not ex.axes["data"] and ex.prompted is None:
        raise ex.error("axes", "a grid of zero cells: no data to train on and no prompted cells")


def training_options(ex: Experiment):
    """The grid's ``train:`` options as ``fireact-eval train`` reads them, every default
    from ``TrainConfig`` (the folders are the grid's, placeholders here)."""
    from fireact_eval.options import from_mapping
    from fireact_eval.trainers.train import TrainConfig

    return from_mapping(TrainConfig, {**ex.train, "base": "b", "data": "d",
                                      "out": str(ex.path.parent / ".check")}, strict=True)


def _check_train(ex: Experiment) -> None:
    fixed = ("base", "data", "out", "limit", "resume", "origin", "format", "tool_template",
             "metadata", "train_on_test", "force")
    for key in ex.train:
        if key in fixed:
            raise ex.error(f"train.{key}", "set by the grid (axes, folders), not here")
    try:
        training_options(ex).validate()
    except FireactError as err:
        raise ex.error("train", str(err)) from None


def _check_evaluate(ex: Experiment) -> None:
    from fireact_eval.tasks import task_names

    spec = ex.evaluate
    if not spec.tasks:
        raise ex.error("evaluate.tasks", "name at least one task (fireact_hotpotqa, ...)")
    known = task_names()
    for i, noise in enumerate(spec.noise):
        if noise != "off" and noise not in NOISE_CONDITIONS:
            raise ex.error(f"evaluate.noise[{i}]", f"one of off, {', '.join(NOISE_CONDITIONS)}")
    for task in spec.tasks:
        for noise in spec.noise:
            name = condition_task(task, noise)
            if name not in known:
                raise ex.error("evaluate.tasks", f"no task {name} (tasks: fireact_<dataset>"
                               "[_<method>], each with _noise_none / _noise_random)")
    if spec.model not in ("hf", "vllm"):
        raise ex.error("evaluate.model", "hf or vllm")
    if not isinstance(spec.limit, int) or spec.limit < 0:
        raise ex.error("evaluate.limit", "a number of questions (0: all)")
    search = str(spec.metadata.get("search", ""))
    if search == "replay" and ex.replay is None:
        raise ex.error("evaluate.metadata.search", "'replay' needs a replay: section")
    for key, meta in (("prompted", ex.prompted or {}), ("finetuned", ex.finetuned)):
        if not isinstance(meta, dict):
            raise ex.error(key, "a mapping of --metadata for that evaluation")
    check_lm_eval_options(ex, spec.batch_size, spec.device, spec.gen_kwargs, "evaluate")
    sections = [("finetuned", ex.finetuned)] if ex.axes["data"] else []
    if ex.prompted is not None:
        sections.insert(0, ("prompted", ex.prompted))
    for section, meta in sections:
        for task in spec.tasks:
            for noise in spec.noise:
                check_cell_metadata(ex, condition_task(task, noise),
                                    {**spec.metadata, **meta}, f"evaluate.metadata + {section}")
    if ex.axes["data"]:
        _check_tuned_layout(ex)


def check_cell_metadata(ex: Experiment, task: str, metadata: dict, where: str,
                        **checks: Any) -> Any:
    """A cell's metadata over its task's own, as the run's preflight will check it: every
    key known, every value of its type (strictly: YAML gives numbers as numbers), in range,
    the search agreeing with the questions."""
    from fireact_eval.rollout_settings import check_metadata
    from fireact_eval.tasks import task_metadata

    return check_metadata({**task_metadata(task), **metadata}, where=f"{ex.path}: {where}",
                          strict=True, **checks)


# lm_eval --device: a torch device (hf); vllm takes its own and ignores it
_DEVICE = re.compile(r"(cpu|cuda(:\d+)?|mps|xpu(:\d+)?|npu(:\d+)?|hpu|auto)")
# what a generation's kwargs may say, by type: the rest is the backend's to refuse
_GEN_KWARGS = {"temperature": float, "top_p": float, "top_k": int, "max_gen_toks": int,
               "do_sample": bool, "repetition_penalty": float, "seed": int}


def check_lm_eval_options(ex: Experiment, batch_size: Any, device: Any, gen_kwargs: Any,
                          section: str) -> None:
    """The options an ``lm_eval`` (or ``generate``) run of the grid gets, as it would refuse
    them an hour in: batch size, device, the generation's kwargs."""
    if isinstance(batch_size, str):
        if not re.fullmatch(r"auto(:\d+)?", batch_size):
            raise ex.error(f"{section}.batch_size", f"a number from 1, or auto (auto:N), got "
                           f"{batch_size!r}")
    elif batch_size < 1:
        raise ex.error(f"{section}.batch_size", f"a number from 1, or auto, got {batch_size}")
    if not _DEVICE.fullmatch(str(device)):
        raise ex.error(f"{section}.device", f"a torch device (cpu, cuda, cuda:N, mps), got "
                       f"{device!r}")
    check_gen_kwargs(ex, gen_kwargs, f"{section}.gen_kwargs")


def check_gen_kwargs(ex: Experiment, gen_kwargs: Any, where: str) -> None:
    """Each known generation setting of its type and range: a mapping from YAML (strict
    types), or ``k=v,k=v`` as ``--gen_kwargs`` takes it."""
    from fireact_eval.options import parse_pairs, parse_value

    strict = isinstance(gen_kwargs, dict)
    try:
        values = gen_kwargs if strict else parse_pairs(str(gen_kwargs), where)
        for key, value in values.items():
            kind = _GEN_KWARGS.get(key.strip())
            if kind is None:
                continue
            parsed = parse_value(key, kind, value, strict=strict)
            if kind is not bool and not (math.isfinite(parsed) and parsed >= 0):
                raise FireactError(f"{key} must be a finite number >= 0, got {value!r}")
            if key in ("max_gen_toks", "top_p") and parsed <= 0:
                raise FireactError(f"{key} must be above 0, got {value!r}")
            if key == "top_p" and parsed > 1:
                raise FireactError(f"top_p must be at most 1, got {value!r}")
    except FireactError as err:
        raise ex.error(where, str(err)) from None


def _check_tuned_layout(ex: Experiment) -> None:
    """A fine-tuned cell is evaluated in the layout its rows are in: ``finetuned.format``
    names it (alpaca, chat or tools); SFT trains with ``--format`` that, so rows of another
    layout are refused (an oracle writes rows in it)."""
    from fireact_eval.catalog import DATA_FORMATS
    from fireact_eval.data.segments import read_layout

    fmt = ex.finetuned.get("format")
    if fmt is None:
        return
    if fmt not in DATA_FORMATS:
        raise ex.error("finetuned.format", f"the layout of the training rows the cells are "
                       f"evaluated in: one of {', '.join(DATA_FORMATS)}, got {fmt!r}")
    for name in ex.axes["data"]:
        spec = ex.data[name]
        files = [spec.file] if spec.file else list(spec.files)
        if spec.import_fireact and fmt != "alpaca":
            raise ex.error(f"data.{name}.import_fireact", f"FireAct's files are alpaca rows; "
                           f"finetuned.format is {fmt}")
        for file in files:
            found = read_layout(file)[1]
            if found != fmt:
                raise ex.error(f"data.{name}", f"{file} holds {found} rows, but "
                               f"finetuned.format is {fmt}: convert them (fireact-eval "
                               f"convert --format {fmt}) or evaluate in {found}")


def _check_improve(ex: Experiment) -> None:
    from fireact_eval.generate import TASKS

    spec = ex.improve
    if spec is None:
        return
    if not ex.axes["data"]:
        raise ex.error("improve", "rounds start from a fine-tuned cell: name data to train on")
    _check_after(ex, "improve", spec.after)
    for key, value in (("rounds", spec.rounds), ("repeats", spec.repeats)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ex.error(f"improve.{key}", f"a number from 1, got {value!r}")
    if not isinstance(spec.n, int) or spec.n < 0:
        raise ex.error("improve.n", "training questions per task (0: all)")
    for i, task in enumerate(spec.tasks):
        if task not in TASKS:
            raise ex.error(f"improve.tasks[{i}]", f"one of {', '.join(TASKS)}")
    if spec.repeats > 1 and "do_sample=true" not in spec.gen_kwargs.replace(" ", "").lower():
        raise ex.error("improve.gen_kwargs", "repeats of greedy decoding are one trajectory "
                       "k times: sample (do_sample=True,temperature=...)")
    check_gen_kwargs(ex, spec.gen_kwargs, "improve.gen_kwargs")
    if tuned_layout(ex) != "alpaca":
        raise ex.error("improve", f"rounds write alpaca rows; finetuned.format is "
                       f"{tuned_layout(ex)}")
    for key in ("method", "n", "sample_seed", "repeats"):
        if key in spec.metadata:
            own = "methods" if key == "method" else key
            raise ex.error(f"improve.metadata.{key}", f"set by improve.{own}")
    evaluation = {k: v for k, v in {**ex.evaluate.metadata, **ex.finetuned}.items()
                  if k not in ("n", "sample_seed", "split", "questions")}
    for task in spec.tasks:
        for method in spec.methods:
            check_cell_metadata(ex, f"fireact_{task}", {**evaluation, **spec.metadata,
                                                        "method": method},
                                "improve.metadata", training=True,
                                train_on_test=spec.train_on_test)


def _check_grpo(ex: Experiment) -> None:
    """The GRPO settings as ``train --method grpo`` checks them, before anything runs."""
    from fireact_eval.catalog import DATASETS
    from fireact_eval.options import from_mapping
    from fireact_eval.trainers.train import TrainConfig

    spec = ex.grpo
    if spec is None:
        return
    if not ex.axes["data"]:
        raise ex.error("grpo", "GRPO starts from a fine-tuned cell's adapter: name data")
    _check_after(ex, "grpo", spec.after)
    if ex.train.get("method", "lora") != "lora":
        raise ex.error("grpo", "GRPO continues a LoRA adapter: train.method lora")
    if spec.dataset not in DATASETS:
        raise ex.error("grpo.dataset", f"one of {', '.join(DATASETS)}")
    if not isinstance(spec.metadata, dict) or "format" in spec.metadata:
        raise ex.error("grpo.metadata", "rollout settings besides format (the cells' "
                       "evaluation format is the rollouts')")
    if "max_turns" in spec.metadata:
        raise ex.error("grpo.metadata.max_turns", "set by grpo.max_turns")
    if not spec.loops or len(set(spec.loops)) != len(spec.loops):
        raise ex.error("grpo.loops", "one or more loops, each once")
    for loop in spec.loops:
        try:
            from_mapping(TrainConfig, {**grpo_train_options(spec), "method": "grpo", "base": "b",
                                       "data": spec.dataset, "loop": loop,
                                       "out": str(ex.path.parent / ".check"),
                                       "format": ex.finetuned.get("format", "alpaca")
                                       }).validate()
        except FireactError as err:
            raise ex.error("grpo.loops" if len(spec.loops) > 1 else "grpo", str(err)) from None
    check_cell_metadata(ex, f"fireact_{spec.dataset}", {**spec.metadata,
                                                        "max_turns": spec.max_turns},
                        "grpo.metadata", training=True, train_on_test=spec.train_on_test)


def _check_after(ex: Experiment, section: str, after: list[str]) -> None:
    for i, name in enumerate(after):
        if name not in ex.axes["data"]:
            raise ex.error(f"{section}.after[{i}]", f"no data {name!r} in axes.data (there: "
                           f"{', '.join(ex.axes['data'])})")


def grpo_train_options(spec: GrpoSpec) -> dict[str, Any]:
    """The GRPO spec as ``fireact-eval train`` options (the grid sets base, data, out and
    the adapter it continues)."""
    return {"group_size": spec.group_size, "batch_size": spec.batch_size,
            "max_steps": spec.max_steps, "learning_rate": spec.learning_rate, "kl": spec.kl,
            "temperature": spec.temperature, "max_turns": spec.max_turns,
            "cutoff": spec.cutoff, "reward": spec.reward, "limit": spec.limit,
            **({"train_on_test": True} if spec.train_on_test else {})}


def tuned_layout(ex: Experiment) -> str:
    """The layout of the fine-tuned cells' training rows (and evaluation): alpaca unless
    ``finetuned.format`` names another."""
    return str(ex.finetuned.get("format", "alpaca"))


def condition_task(task: str, noise: str) -> str:
    """The task variant of ``task`` under a noise condition (``catalog.NOISE_CONDITIONS``)."""
    return task if noise == "off" else f"{task}_noise_{noise}"
