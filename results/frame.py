"""lm-eval result folders -> one tidy table: a row per (run, task) with its settings and metrics.

Everything downstream (leaderboards, plots, the regression gate) reads this frame or the
per-sample scores below, never lm-eval's JSON directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
from scipy import stats as scipy_stats

from fireact_eval.errors import FireactError
from fireact_eval.experiment import layout
from fireact_eval.harness.run_files import TaskResult, read_run, results_files, split_label
from fireact_eval.results.inspect_logs import as_lm_eval_run, inspect_logs
from fireact_eval.rollout_settings import RolloutSettings
from fireact_eval.scoring import QUALITY_METRICS
from fireact_eval.stats import LEVEL, clustered_mean, wilson_interval

__all__ = ["Run", "EXPERIMENT_AXES", "experiment_runs", "IDENTITY", "SEEDS", "ENVIRONMENT",
           "find_runs", "load_runs", "pool_seeds", "SeedPool", "distinguishing",
           "sample_scores", "score_interval", "task_interval"]

# Everything besides the model and the task that changes a run's numbers: the rollout
# settings (defaults from RolloutSettings, for files that do not record them all), where the
# questions came from, and how many were asked.
SETTINGS = (*(f.name for f in fields(RolloutSettings) if f.metadata["changes_results"]),
            "data")
# The model's side: its decoding (--gen_kwargs), its training recipe (from the card of a
# checkpoint `fireact-eval train` made), and every seed (``run_files.run_seed``).
IDENTITY = ("model", "training", "decoding", "task", *SETTINGS, "seed", "n")
# What a second run of the same recipe would change: ``pool_seeds`` pools runs differing
# only in these into a mean +- spread.
SEEDS = ("seed", "noise_seed")
# The settings of the world the agent acts in, as opposed to the agent's own (method, shots,
# format, family, reflect_at): two runs compared question by question must share these.
ENVIRONMENT = ("search", "noise", "noise_p", "noise_seed", "noise_persist", "max_turns", "data")


# The grid axes of a run from an experiment folder (``fireact-eval experiment``): prompted or
# finetuned, its base, the training set's name and size (0: all of it), and the methods that
# wrote the rows it trained on (``cot+react``; empty for a prompted cell or an older record),
# its self-improvement round (0: fine-tuned on the named data only), and whether GRPO went on
# from that fine-tuned cell's adapter (the experiment's ``grpo:`` cells).
EXPERIMENT_AXES = ("kind", "base", "train_data", "train_size", "train_methods", "round",
                   "grpo")


@dataclass(frozen=True)
class Run:
    """One ``lm_eval --output_path`` result file, the name it goes by in tables, and its
    cell's axes when it comes from an experiment."""

    label: str
    results_file: Path
    axes: tuple[tuple[str, object], ...] = ()


def experiment_runs(folder: Path) -> tuple[list[Run], list[str]]:
    """The finished cells of an experiment folder as runs (labelled by the cell, with its
    axes), and a line for each cell that is not there (failed, running, not run), so a
    table says what is missing instead of leaving a silent hole."""
    from fireact_eval.jsonio import read_json

    plan = read_json(layout.plan_file(folder), "experiment plan")
    runs, missing = [], []
    for cell in plan["cells"]:
        record_path = layout.cell_record(folder, cell["eval_hash"])
        record = (read_json(record_path, "cell record")
                  if record_path.is_file() else {"status": "not run"})
        if record.get("status") != "done":
            error = f": {record['error']}" if record.get("error") else ""
            log = f" (log: {record['log']})" if record.get("error") and record.get("log") else ""
            missing.append(f"missing cell {cell['name']}: {record.get('status')}{error}{log}")
            continue
        axes = (("kind", cell["kind"]), ("base", cell["axes"]["base"]),
                ("train_data", cell["axes"]["data"] or ""),
                ("train_size", cell["axes"]["size"] or 0),
                ("train_methods", "+".join(record.get("train_methods") or {})),
                ("round", int(cell["axes"].get("round", 0))),
                ("grpo", bool(cell["axes"].get("grpo", False))))
        runs += [Run(cell["name"], f, axes)
                 for f in results_files(layout.results_dir(folder, cell["eval_hash"]))]
    return runs, missing


def find_runs(specs: list[str], missing: list[str] | None = None) -> list[Run]:
    """``PATH`` or ``LABEL=PATH``; a folder means every ``results_*.json`` under it (one run
    each, labelled by the model), a file means that run, an experiment folder its finished
    cells (the others are added to ``missing``), an inspect ``.eval`` log (or a folder of
    them) each log's run (``inspect_logs``)."""
    runs = []
    for spec in specs:
        label, rest = split_label(spec)
        if layout.is_experiment(rest):
            found, absent = experiment_runs(Path(rest))
            runs += found
            if missing is not None:
                missing += absent
            continue
        logs = inspect_logs(Path(rest))  # inspect_ai's .eval logs of our tasks
        runs += ([Run(label, as_lm_eval_run(log)) for log in logs] if logs
                 else [Run(label, f) for f in results_files(rest)])
    return runs


def short_names(names, taken: set[str] = frozenset()) -> dict[str, str]:
    """Each distinct unlabelled model name (an adapter or model folder, a Hub id) as the
    fewest trailing parts of its path that no other name ends with and no label takes:
    ``runs/sft/adapter`` and ``runs/grpo/adapter`` read ``sft/adapter`` and
    ``grpo/adapter``, a lone run its folder's name.  One name per path and one path per
    name, so runs stay apart; the whole path stays in ``model_path``."""
    distinct = sorted(set(names))
    short = {}
    for name in distinct:
        parts = [p for p in name.rstrip("/").split("/") if p] or [name]
        others = [o for o in distinct if o != name]
        short[name] = next(
            (cand for k in range(1, len(parts) + 1)
             if (cand := "/".join(parts[-k:])) not in taken
             and not any(o.rstrip("/") == cand or o.rstrip("/").endswith("/" + cand)
                         for o in others)), name)
    return short


def is_ours(task: str) -> bool:
    """A fireact task (ours; its settings default as ours do): every one is named so."""
    return task.startswith("fireact")


def _defaults() -> dict[str, str]:
    return {k: str(v) for k, v in RolloutSettings().as_metadata().items()}


def _settings(meta: dict, defaults: dict[str, str]) -> dict[str, str]:
    values = {k: str(meta.get(k, defaults.get(k, ""))) for k in SETTINGS if k != "data"}
    data = str(meta.get("questions") or meta.get("data_dir") or "")
    if str(meta.get("split", "test")) != "test":
        data += f" split={meta['split']}"
    if meta.get("n"):
        data += f" n={meta['n']} sample_seed={meta.get('sample_seed', 0)}"
    values["data"] = data.strip()
    return values


def score_interval(score: float, n: int | None) -> tuple[float, float]:
    """The Wilson interval (``stats.LEVEL``) of a 0/1 headline score over n questions."""
    if not n or math.isnan(score):
        return float("nan"), float("nan")
    return wilson_interval(round(score * n), n)


def task_interval(task: TaskResult, metric: str) -> tuple[float, float, str]:
    """A task's headline interval and how it was made: with repeats, the bootstrap over
    questions of their mean scores (a question's tries are not independent), when the
    samples are there; else Wilson over the questions."""
    score = task.metrics[metric]
    if int(task.metadata.get("repeats", 1) or 1) > 1:
        per_question = list(task.sample_scores(metric).values())
        if per_question:
            _, low, high = clustered_mean([[v] for v in per_question])
            return low, high, "question bootstrap"
    return (*score_interval(score, task.n), "wilson")


def load_runs(specs: list[str]) -> pd.DataFrame:
    """A row per (run, task): label, task, dataset, settings, n, score (the headline metric),
    score_stderr, score_low / score_high (its interval at ``stats.LEVEL``; ``interval`` says
    which: Wilson, or with repeats a bootstrap over questions), every
    ``metric`` / ``metric_stderr`` the run reported, and ``result``
    (the ``TaskResult``: samples, lm-eval's ``higher_is_better``), and for an experiment's
    cells their ``EXPERIMENT_AXES``; ``frame.attrs["missing"]`` lists its cells without
    results.  The same run found twice is an error: results are never averaged."""
    rows, defaults, missing = [], _defaults(), []
    for found in find_runs(specs, missing):
        run = read_run(found.results_file)
        for task in run.tasks.values():
            primary = next((m for m in QUALITY_METRICS if m in task.metrics), None)
            if primary is None:
                continue
            rows.append({
                "model": found.label or run.model, "model_path": run.model,
                "labelled": bool(found.label), "training": run.training,
                "train_on_test": run.train_on_test,
                "decoding": run.decoding, "task": task.task, "dataset": task.dataset,
                # another harness's task keeps no defaults of ours (no react, no search)
                **_settings(task.metadata, defaults if is_ours(task.task) else {}),
                "seed": run.seed, "n": task.n,
                "results_file": str(run.path), **task.metrics, "metric": primary,
                "score": task.metrics[primary],
                "score_stderr": task.metrics.get(f"{primary}_stderr"),
                **dict(zip(("score_low", "score_high", "interval"),
                           task_interval(task, primary), strict=True)),
                "result": task, **dict(found.axes),
            })
    if not rows:
        raise FireactError("no fireact task results in " + ", ".join(specs)
                           + "".join(f"; {line}" for line in missing))
    frame = pd.DataFrame(rows)
    unlabelled = ~frame.pop("labelled")
    names = short_names(frame.loc[unlabelled, "model"], taken=set(frame.loc[~unlabelled,
                                                                            "model"]))
    frame.loc[unlabelled, "model"] = frame.loc[unlabelled, "model"].map(names)
    frame.attrs["missing"] = missing  # cells of an experiment that have no results
    twice = frame[frame.duplicated(list(IDENTITY), keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        files = twice[(twice[list(IDENTITY)] == first[list(IDENTITY)]).all(axis=1)]
        raise FireactError(
            f"the same run is there more than once ({first['model']}, {first['task']}, "
            f"n={first['n']}): {', '.join(files['results_file'])}; keep one (runs are never "
            "averaged) or name them apart with LABEL=PATH")
    return frame


@dataclass(frozen=True)
class SeedPool:
    """The runs of one recipe under different seeds, read like one ``TaskResult``: a
    question's score is its mean over the runs (on the questions every run answered), its
    samples are all of theirs."""

    results: tuple[TaskResult, ...]

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return self.results[0].higher_is_better

    @property
    def metadata(self) -> dict:
        return self.results[0].metadata

    def by_question(self, metric: str) -> dict[str, list[float]]:
        """Each shared question's score in every run, in run order."""
        scores = [r.sample_scores(metric) for r in self.results]
        shared = set.intersection(*(set(s) for s in scores)) if scores else set()
        return {k: [s[k] for s in scores] for k in sorted(shared)}

    def sample_scores(self, metric: str) -> dict[str, float]:
        return {k: sum(v) / len(v) for k, v in self.by_question(metric).items()}

    def samples(self):
        for result in self.results:
            yield from result.samples()


def _pooled(group: pd.DataFrame) -> dict:
    """One row for runs of one recipe differing only in their seeds: every metric's mean
    over the runs, ``score_spread`` (their standard deviation, ddof 1), ``runs``, the seeds
    joined, and the interval of the mean: a bootstrap over questions with each run as a
    try (a question's runs are not independent), or without samples a t interval over the
    runs' scores."""
    first = group.iloc[0]
    row = first.to_dict()
    metrics = [c for c in group.columns if c not in IDENTITY and c not in (
        "dataset", "results_file", "metric", "result", "interval", "score_low", "score_high")
        and pd.api.types.is_numeric_dtype(group[c])]
    for column in metrics:
        row[column] = (float("nan") if column.endswith("_stderr")
                       else float(group[column].mean()))
    for column in SEEDS:
        row[column] = "; ".join(sorted(set(group[column].astype(str))))
    pool = SeedPool(tuple(group["result"]))
    by_question = list(pool.by_question(first["metric"]).values())
    if by_question:
        row["score"], low, high = clustered_mean(by_question)
        row["interval"] = f"question bootstrap over {len(group)} runs"
    else:
        mean, sd, k = group["score"].mean(), group["score"].std(ddof=1), len(group)
        half = float(scipy_stats.t.ppf(0.5 + LEVEL / 2, k - 1)) * sd / math.sqrt(k)
        low, high, row["interval"] = mean - half, mean + half, f"t over {k} runs"
    row.update(score_low=low, score_high=high, score_spread=float(group["score"].std(ddof=1)),
               runs=len(group), results_file="; ".join(group["results_file"]), result=pool)
    return row


def pool_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """Runs that differ only in their seeds (``SEEDS``) as one row each: the mean over them
    +- ``score_spread`` over seeds, ``runs`` saying how many, the seed columns listing
    them.  A run that differs in anything else stays its own row (``runs`` 1, no spread)."""
    keys = [c for c in IDENTITY if c not in SEEDS]
    rows = []
    for _, group in frame.groupby(keys, dropna=False, sort=False):
        if len(group) == 1:
            rows.append({**group.iloc[0].to_dict(), "score_spread": float("nan"), "runs": 1})
        else:
            rows.append(_pooled(group))
    return pd.DataFrame(rows)


def distinguishing(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    """The identity columns beyond ``keys`` that differ between runs sharing ``keys``: a
    table adds them to its index, so two different runs are two rows, never one mean."""
    others = [c for c in IDENTITY if c not in keys and c != "task"]
    grouped = frame.groupby(keys, dropna=False)
    return [c for c in others if (grouped[c].nunique(dropna=False) > 1).any()]


def sample_scores(row: pd.Series, metric: str) -> dict[str, float]:
    """Per-doc values of ``metric`` for one row of ``load_runs`` (see ``TaskResult``)."""
    result: TaskResult = row["result"]
    return result.sample_scores(metric)
