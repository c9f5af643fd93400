"""``fireact-eval generate``: FireAct's first stage as one command.

A teacher (any lm-eval backend: ``openai-chat-completions`` for GPT-4,
``local-chat-completions`` for a served model, ``hf``, ``vllm``) runs few-shot on the
training questions (``split=train``, ``n``, ``sample_seed``) of every task x method, through
lm-eval's Python API with our tasks, exactly as ``lm_eval`` would; then ``convert`` keeps the
successful trajectories, drops evaluation questions, and writes one training file.  It is a
thin driver: each pair is an ordinary run, written to ``OUT/runs/<task>_<method>/``.

Resumable: a pair is done when its marker (``OUT/runs/<task>_<method>/pair.json``, written
after its results and samples files are whole) exists; a pair folder without one is cleared
and run again.  Every turn a pair generated is kept in its turn cache (``OUT/turn_cache/``,
lm-eval's ``--use_cache``), so a run killed half way regenerates nothing it had generated
(greedy decoding; sampled turns are not cached, as in lm-eval).  The marker records what
made the pair (teacher, decoding, task settings): rerunning into ``OUT`` with other settings
is refused before the teacher loads: the finished pairs, which would be kept and converted,
were made by the old ones.  It also records each file's line count and SHA-256: a pair
whose files were cut, edited or removed after it finished is run again (from its turn cache),
never converted as it stands.  An ``OUT`` holding files but no ``generate.json`` is another
command's folder: refused without ``--force``.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path

from fireact_eval.catalog import (
    DATA_FORMATS,
    DATASETS,
    METHODS,
    TRAINING_DATASETS,
    TRAINING_METHODS,
    data_file_suffix,
    task_name,
)
from fireact_eval.convert import ConvertReport, convert
from fireact_eval.data.decontaminate import EvalIndex
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import (
    file_digest,
    output_folder,
    read_json,
    refuse_foreign_folder,
    write_atomic,
)
from fireact_eval.options import option, parse_pairs

log = logging.getLogger(__name__)
TASKS = (*TRAINING_DATASETS, "demo", "world")  # FireAct's, the demo's 32, the world's


@dataclass
class GenerateConfig:
    """One teacher run over tasks x methods; ``fireact-eval generate`` makes a flag of each
    field (lm-eval's spelling too: ``--model_args``, ``--batch_size``, ...)."""

    out: str = option(MISSING, "output folder: runs/, turn_cache/, train.json", "output")
    # teacher
    model: str = option("hf", "lm-eval backend: hf, vllm, openai-chat-completions, "
                        "local-chat-completions, local-completions", "teacher")
    model_args: str = option("", "lm-eval model args, e.g. model=gpt-4 or pretrained=PATH",
                             "teacher", flags=("--model_args",))
    batch_size: str = option("auto", "lm-eval batch size (hf, vllm)", "teacher",
                             flags=("--batch_size",))
    device: str = option("", "lm-eval device (hf)", "teacher")
    gen_kwargs: str = option("", "lm-eval --gen_kwargs (default: the tasks' greedy "
                             "decoding); recorded in every result file", "teacher",
                             flags=("--gen_kwargs",))
    apply_chat_template: bool = option(False, "render prompts with the model's chat "
                                       "template (chat backends)", "teacher",
                                       flags=("--apply_chat_template",))
    # questions
    tasks: list[str] = option(list(TRAINING_DATASETS), f"comma list of {', '.join(TASKS)}",
                              "questions")
    methods: list[str] = option(list(TRAINING_METHODS), "comma list of methods",
                                "questions")
    n: int = option(500, "training questions per task (0: all), a seeded draw", "questions")
    sample_seed: int = option(0, "seed of the draw", "questions", flags=("--sample_seed",))
    limit: int = option(0, "run only the first LIMIT of them (a smoke test)", "questions")
    data_dir: str = option("", "questions and evaluation sets in FireAct's layout (default: "
                           "the Hub)", "questions", flags=("--data_dir",))
    metadata: list[str] = option([], "more metadata for every task, k=v,k=v (e.g. "
                                 "search=serpapi)", "questions")
    # output
    format: str = option("alpaca", "training file layout", "output",
                         choices=DATA_FORMATS)
    keep_contaminated: bool = option(False, "keep training questions found in an evaluation "
                                     "set (default: drop them)", "output")
    against: list[str] = option([], "the evaluation sets to drop questions of (default: "
                                f"every one shipped: {', '.join(DATASETS)})", "output")
    force: bool = option(False, "write into an OUT that holds files generate did not make",
                         "output", flags=("--overwrite",), changes_results=False)
    strict_format: bool = option(False, "drop a successful try with an action line that is "
                                 "not one tool[argument] (a model's own sampled tries)",
                                 "output")
    train_on_test: bool = option(False, "let --metadata split=test run the teacher on the "
                                 "evaluation questions (refused otherwise; their rows are "
                                 "still decontaminated unless --keep-contaminated)",
                                 "questions")
    extra: dict = field(default_factory=dict)  # more simple_evaluate arguments, Python only

    def check_out(self) -> None:
        """The output folder, checked before the evaluation sets or the teacher load."""
        output_folder(self.out)
        refuse_foreign_folder(self.out, (SETTINGS_FILE,), self.force, "generate")

    def pairs(self) -> list[tuple[str, str]]:
        """Every task x method, each pair's metadata checked as ``lm_eval`` would check it
        (``check_metadata``), before the evaluation sets or the teacher load."""
        from fireact_eval.rollout_settings import check_metadata
        from fireact_eval.tasks import base_metadata

        for task in self.tasks:
            if task not in TASKS:
                raise FireactError(f"unknown task {task!r} for generation; valid: "
                                   f"{', '.join(TASKS)}")
        for method in self.methods:
            if method not in METHODS:
                raise FireactError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        given = parse_pairs(self.metadata, "--metadata")
        for key, value in (("method", None), ("n", self.n), ("sample_seed", self.sample_seed),
                           ("data_dir", self.data_dir)):
            if key in given and str(given[key]) != str(value):  # a setting given two ways
                flag = "--methods" if key == "method" else f"--{key.replace('_', '-')}"
                raise FireactError(f"--metadata {key}={given[key]}: give it as {flag} "
                                   "(the flag's value is the one run)")
        pairs = [(t, m) for t in self.tasks for m in self.methods]
        for task, method in pairs:
            check_metadata({**base_metadata(task), **self.task_metadata(method)},
                           where=f"--metadata ({task} x {method})", training=True,
                           train_on_test=self.train_on_test)
        return pairs

    def task_metadata(self, method: str) -> dict[str, object]:
        extra = parse_pairs(self.metadata, "--metadata")
        return {"shots": "fewshot", "split": "train", **extra, "method": method,
                "n": self.n, "sample_seed": self.sample_seed,
                **({"data_dir": self.data_dir} if self.data_dir else {})}


    def pair_settings(self, task: str, method: str) -> dict[str, object]:
        """Everything that changes what a pair generates (not batch size or device)."""
        return {"task": task, "model": self.model, "model_args": self.model_args,
                "gen_kwargs": self.gen_kwargs, "apply_chat_template": self.apply_chat_template,
                "limit": self.limit, "metadata": self.task_metadata(method),
                "extra": {k: repr(v) for k, v in sorted(self.extra.items())}}


MARKER = "pair.json"
SETTINGS_FILE = "generate.json"  # in OUT: what the last run into it was given


def pair_dir(out: Path, task: str, method: str) -> Path:
    return out / "runs" / f"{task}_{method}"


def pair_done(cfg: GenerateConfig, task: str, method: str) -> bool:
    """Whether the pair finished with these settings; a folder it left unfinished is cleared
    (a kill between its results and its samples file, or half way through one)."""
    folder = pair_dir(Path(cfg.out), task, method)
    marker = folder / MARKER
    if not marker.is_file():
        if folder.exists():
            log.warning("%s: unfinished (no %s); running it again", folder, MARKER)
            shutil.rmtree(folder)
        return False
    made_with = read_json(marker, "pair marker")
    vouched = made_with.pop("files", None)
    wanted = json.loads(json.dumps(cfg.pair_settings(task, method)))
    if made_with != wanted:
        changed = ", ".join(f"{k}: {made_with.get(k)!r} -> {wanted.get(k)!r}"
                            for k in wanted if made_with.get(k) != wanted.get(k))
        raise FireactError(f"{folder} was generated with other settings ({changed}); use "
                           f"another --out, or delete {cfg.out} to start again")
    if vouched != _pair_files(folder):  # a file cut, changed, lost or added since
        log.warning("%s: its files are not those %s vouches for; running it again",
                    folder, MARKER)
        print(f"fireact-eval generate: {folder}: its files changed after it finished "
              "(cut, edited or removed); running it again", flush=True)
        shutil.rmtree(folder)
        return False
    return True


def _pair_files(folder: Path) -> dict[str, dict[str, object]]:
    """Each lm-eval file of a finished pair: its line count and hash (the marker's record)."""
    return {str(p.relative_to(folder)): file_digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MARKER}


def _run_pair(lm, cfg: GenerateConfig, task: str, method: str, folder: Path) -> None:
    from fireact_eval.harness.evaluate import run_and_save

    run_and_save(lm, task_name(task), cfg.task_metadata(method), folder,
                 Path(cfg.out) / "turn_cache" / f"{task}_{method}", model_args=cfg.model_args,
                 limit=cfg.limit or None, gen_kwargs=cfg.gen_kwargs or None,
                 apply_chat_template=cfg.apply_chat_template, **cfg.extra)
    marker = {**cfg.pair_settings(task, method), "files": _pair_files(folder)}
    write_atomic(folder / MARKER, json.dumps(marker, indent=2))


def generate(cfg: GenerateConfig, index: EvalIndex | None) -> ConvertReport:
    """Run every pair not yet run, then convert all of them into one training file."""
    cfg.check_out()
    out = Path(cfg.out)
    pairs = cfg.pairs()
    todo = [(t, m) for t, m in pairs if not pair_done(cfg, t, m)]
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("extra", "force")}
    write_atomic(out / SETTINGS_FILE, json.dumps(settings, indent=2))
    if todo:
        from fireact_eval.harness.evaluate import load_model

        lm = load_model(cfg.model, cfg.model_args, cfg.batch_size, cfg.device)
        for number, (task, method) in enumerate(todo, 1):
            log.info("teacher run %d of %d: %s x %s", number, len(todo), task, method)
            print(f"fireact-eval generate: {task} x {method} ({number} of {len(todo)}; "
                  f"{len(pairs) - len(todo)} done before)", flush=True)
            _run_pair(lm, cfg, task, method, pair_dir(out, task, method))
    return convert([pair_dir(out, t, m) for t, m in pairs],
                   out / f"train.{data_file_suffix(cfg.format)}",
                   cfg.format, cfg.methods, index=index, strict_format=cfg.strict_format)
