"""The paper's table shapes, from the runs frame (``frame.load_runs``, seeds pooled by
``frame.pool_seeds``).

FireAct reports: quality per dataset for each model and method (its Tables 2 and 5), the
same under noisy search (Table 3: the tool returns ``None`` or a random other result), and the
cost of a trajectory (turns, tokens, time; Table 4).  Each function is one ``pivot``.  Every
score column ``X`` comes with ``X_low`` / ``X_high``, its interval at ``stats.LEVEL``, and,
where runs of several seeds were pooled, ``X_sd``, the spread over them; ``readable`` folds
them into one cell and ``interval_notes`` says how each was made.
"""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from fireact_eval.catalog import DATASETS, NOISE_KINDS, SINGLE_TURN_METHODS
from fireact_eval.errors import FireactError
from fireact_eval.outcomes import OUTCOMES, PREFIX
from fireact_eval.results.frame import distinguishing, sample_scores
from fireact_eval.results.names import TABLE_SHAPES
from fireact_eval.scoring import after_faults, false_alarms, trusted_fault
from fireact_eval.stats import LEVEL, mcnemar_exact, paired_bootstrap, paired_scores
from fireact_eval.trajectory import Trajectory

DATASET_ORDER = DATASETS
NOISE_ORDER = (*NOISE_KINDS, *(f"{k} permanent" for k in NOISE_KINDS[1:]))
COST_COLUMNS = ("score", "finished", "turns", "tool_calls", "invalid_actions", "prompt_tokens",
                "gen_tokens", "seconds")


def _ordered(columns: pd.Index, order: tuple[str, ...]) -> list[str]:
    known = [c for c in order if c in columns]
    return known + sorted(c for c in columns if c not in order)


BOUNDS = ("_low", "_high", "_sd")  # the suffixes of a score column's interval and spread
_PARTS = {"score": "", "score_low": "_low", "score_high": "_high", "score_spread": "_sd"}


def _cells(runs: pd.DataFrame, index: list[str], column: str,
           order: tuple[str, ...] = ()) -> pd.DataFrame:
    """``score`` with a row per ``index`` and a column per ``column``, one run per cell,
    each followed by its ``_low`` / ``_high`` (and ``_sd`` where seeds were pooled); a score
    that is NaN stays a NaN cell (``pivot_table`` drops such a column whole)."""
    indexed = runs.set_index([*index, column])
    parts = {suffix: indexed[name].unstack(column) for name, suffix in _PARTS.items()
             if name in indexed.columns}
    scores = parts[""]
    pieces = []
    for name in _ordered(scores.columns, order):
        for suffix, table in parts.items():
            if suffix != "_sd" or table[name].notna().any():
                pieces.append(table[name].rename(f"{name}{suffix}"))
    return pd.concat(pieces, axis=1)


def score_columns(table: pd.DataFrame) -> list[str]:
    """The columns of ``table`` that are scores with an interval (not their bounds)."""
    return [c for c in table.columns if f"{c}_low" in table.columns]


def readable(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Each score and its bounds as one cell, ``0.583 ± 0.040 [0.320, 0.807]`` (the ± only
    for pooled seeds), for Markdown and LaTeX; CSV keeps the numbers apart."""
    out = table.copy().astype(object)
    for name in score_columns(table):
        def cell(row, name=name):
            value = row[name]
            if pd.isna(value):
                return "nan"  # a score that is NaN says so, never a blank
            text = f"{value:.{digits}f}"
            if pd.notna(row.get(f"{name}_sd", float("nan"))):
                text += f" ± {row[f'{name}_sd']:.{digits}f}"
            if pd.notna(row[f"{name}_low"]):
                text += f" [{row[f'{name}_low']:.{digits}f}, {row[f'{name}_high']:.{digits}f}]"
            return text
        out[name] = table.apply(cell, axis=1)
    return out.drop(columns=[f"{n}{b}" for n in score_columns(table) for b in BOUNDS
                             if f"{n}{b}" in out.columns])


def _described(kind: str) -> str:
    if kind == "wilson":
        return "Wilson over the questions of one run"
    if kind == "question bootstrap":
        return "bootstrap over questions, each with all its tries (repeats)"
    if kind.startswith("question bootstrap over"):
        return f"bootstrap over questions, each with its score in all {kind.split()[-2]} runs"
    return kind  # "t over k runs": pooled runs without sample files


def interval_notes(runs: pd.DataFrame) -> list[str]:
    """How the intervals of a table from ``runs`` were made, for the notes under it."""
    lines = [f"[low, high]: the {LEVEL:.0%} interval of a score: "
             + "; ".join(_described(k) for k in sorted(set(runs["interval"])))
             + "; a drop's: paired bootstrap over the questions both runs answered; "
             "a mean over datasets has none"]
    if "runs" in runs.columns and (runs["runs"] > 1).any():
        lines.append("±: the standard deviation of the score over the runs pooled (`runs`; "
                     "`seed` and `noise_seed` list their seeds); the score is their mean")
    return lines


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Headline score (EM, or accuracy) per dataset: a row per model x method x shots; noisy
    runs are left to ``robustness``.  ``mean`` is over every dataset column: a row missing
    one (or whose score is NaN) has no mean, rather than a mean over other datasets."""
    clean = runs[runs["noise"] == "off"]
    if clean.empty:
        raise FireactError("the leaderboard is of clean-tool runs, and every run here had a "
                           "faulty tool: --shape robustness or --shape faults")
    index = ["model", "method", "shots"]
    index += distinguishing(clean, [*index, "dataset"])
    index += _pooling(clean, index)
    _one_run_per_cell(clean, [*index, "dataset"])
    table = _cells(clean, index, "dataset", DATASET_ORDER)
    table["mean"] = table[score_columns(table)].mean(axis=1, skipna=False)
    return table.sort_values("mean", ascending=False, na_position="last")


def _pooling(runs: pd.DataFrame, index: list[str]) -> list[str]:
    """``runs`` (how many a row pools) and ``seed`` (theirs) as index columns, when any row
    pools some: what was pooled is said, never implied."""
    if "runs" not in runs.columns or not (runs["runs"] > 1).any():
        return []
    return ["runs"] + (["seed"] if "seed" not in index else [])


def _paired_drop(clean: pd.Series, noisy: pd.Series) -> tuple[float, int, float, float]:
    """Mean of clean - noisy over the questions both runs answered, how many, and its
    paired bootstrap interval; without sample files, the runs' scores when they asked the
    same number of questions (no interval)."""
    a = sample_scores(clean, clean["metric"])
    b = sample_scores(noisy, noisy["metric"])
    shared = sorted(a.keys() & b.keys())
    if shared:
        drops = [a[k] - b[k] for k in shared]
        return (sum(drops) / len(shared), len(shared), *paired_bootstrap(drops))
    nan = float("nan")
    if not a and not b and clean["n"] == noisy["n"]:
        return float(clean["score"] - noisy["score"]), int(clean["n"] or 0), nan, nan
    return nan, 0, nan, nan


def _conditions(runs: pd.DataFrame) -> pd.Series:
    """Each run's tool condition: its fault spec (``permanent`` added when it persists),
    plus its p and seed where runs of that spec differ in them (so two noisy runs at p=0.5
    and p=0.3 are two columns, never one)."""
    persist = runs["noise_persist"] if "noise_persist" in runs else pd.Series(
        "transient", index=runs.index)
    spec = runs["noise"].where(persist != "permanent", runs["noise"] + " permanent")
    runs = runs.assign(spec=spec)
    varied = {kind for kind, group in runs.groupby("spec")
              if group[["noise_p", "noise_seed"]].drop_duplicates().shape[0] > 1}
    return runs.apply(lambda r: r["spec"] if r["spec"] == "off" or r["spec"] not in varied
                      else f"{r['spec']} p={r['noise_p']} seed={r['noise_seed']}", axis=1)


def _one_run_per_cell(runs: pd.DataFrame, keys: list[str]) -> None:
    for _, cell in runs.groupby(keys, dropna=False):
        if len(cell) > 1:
            first = cell.iloc[0]
            raise FireactError(
                f"{len(cell)} runs fall in one table cell ({first['model']}, {first['dataset']}, "
                f"noise {first['noise']}; n = {', '.join(str(n) for n in cell['n'])}): "
                f"{', '.join(cell['results_file'])}; a cell holds one run (never the first, "
                "never a mean): name them apart with LABEL=PATH or leave one out")


def robustness(runs: pd.DataFrame) -> pd.DataFrame:
    """Score with a clean tool and with noisy ones, and the drop from clean to each, taken
    over the questions both runs answered (``n_<noise>`` says how many).  Two runs that would
    share a cell are an error."""
    index = ["model", "method", "dataset"]
    index += [c for c in distinguishing(runs, [*index, "noise"])
              if c not in ("noise_p", "noise_seed", "n")]
    index += _pooling(runs, index)
    runs = runs.assign(condition=_conditions(runs))
    _one_run_per_cell(runs, [*index, "condition"])
    table = _cells(runs, index, "condition", NOISE_ORDER)
    table.columns.name = "noise"
    return _with_drops(table, runs, index)


def _row_runs(runs: pd.DataFrame, index: list[str], table: pd.DataFrame, condition: str
              ) -> list[pd.Series | None]:
    """For each row of ``table``, its run under ``condition`` (None where it has none)."""
    by_key = runs.set_index(index)
    found = []
    for key in table.index:
        rows = by_key.loc[[key]]
        rows = rows[rows["condition"] == condition]
        found.append(rows.iloc[0] if len(rows) else None)
    return found


def _with_drops(table: pd.DataFrame, runs: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """``drop_<noise>`` for each noisy column: clean - noisy over the questions both runs
    answered, with its paired bootstrap interval and ``n_<noise>``, the questions shared."""
    if "off" not in table.columns:
        return table
    nan = float("nan")
    cleans = _row_runs(runs, index, table, "off")
    for noise in [c for c in score_columns(table) if c != "off"]:
        found = [_paired_drop(clean, noisy) if clean is not None and noisy is not None
                 else (nan, 0, nan, nan)
                 for clean, noisy in zip(cleans, _row_runs(runs, index, table, noise),
                                         strict=True)]
        drop, n, low, high = (list(column) for column in zip(*found, strict=True))
        table[f"drop_{noise}"], table[f"drop_{noise}_low"] = drop, low
        table[f"drop_{noise}_high"], table[f"n_{noise}"] = high, n
    return table


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """What a trajectory costs on average, next to what it scores (with its interval)."""
    pooled = "score_spread" in runs.columns and runs["score_spread"].notna().any()
    runs = runs.assign(score_sd=runs["score_spread"] if pooled else float("nan"))
    columns = ["score", "score_low", "score_high", *(["score_sd"] if pooled else []),
               *(c for c in COST_COLUMNS[1:] if c in runs.columns)]
    keys = ["model", "method", "dataset", "noise"]
    keys += distinguishing(runs, keys)
    keys += _pooling(runs, keys)
    return runs.groupby(keys)[columns].first()


def repeats(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with ``repeats`` > 1: the mean score over tries, pass@k (a try was right),
    pass^k (every try was) and the majority answer's score, each with the bootstrap interval
    over questions of its per-question values."""
    runs = runs[runs["repeats"].astype(int) > 1]
    if runs.empty:
        raise FireactError("no run with repeats (lm_eval --metadata repeats=k)")
    keys = ["model", "method", "dataset", "noise", "repeats"]
    keys += distinguishing(runs, keys)
    keys += _pooling(runs, keys)
    rows = []
    for _, row in runs.iterrows():
        cells = {k: row[k] for k in keys}
        for name, metric in (("score", row["metric"]), ("pass_at_k", "pass_at_k"),
                             ("pass_hat_k", "pass_hat_k"),
                             ("majority", f"majority_{row['metric']}")):
            per_question = list(sample_scores(row, metric).values())
            low, high = (paired_bootstrap(per_question) if per_question
                         else (float("nan"), float("nan")))
            value = row["score"] if name == "score" else row.get(metric, float("nan"))
            cells |= {name: value, f"{name}_low": low, f"{name}_high": high}
        rows.append(cells)
    return pd.DataFrame(rows).set_index(keys)


def _experiment(runs: pd.DataFrame, shape: str, every_round: bool = False,
                every_noise: bool = False) -> pd.DataFrame:
    """An experiment's runs: the clean-search ones and, unless ``every_round``, the cells
    before any self-improvement round or GRPO (the paper's shapes have neither)."""
    if "kind" not in runs.columns or runs["kind"].isna().all():
        raise FireactError(f"--shape {shape} reads an experiment folder (fireact-eval "
                           "experiment); these runs are not from one")
    keep = runs["kind"].notna()
    if not every_noise:
        keep &= runs["noise"] == "off"
    if not every_round and "round" in runs.columns:
        keep &= runs["round"].fillna(0) == 0
    if not every_round and "grpo" in runs.columns:
        keep &= ~runs["grpo"].fillna(False).astype(bool)
    return runs[keep]


def rounds(runs: pd.DataFrame) -> pd.DataFrame:
    """Self-improvement: the score of the prompted base (``prompted``), the fine-tuned one
    (``round 0``) and each round after it, a row per base x training set and size x
    evaluated dataset x search noise, each with its interval."""
    runs = _experiment(runs, "rounds", every_round=True, every_noise=True)
    prompted = runs[runs["kind"] == "prompted"]
    tuned = runs[runs["kind"] == "finetuned"]
    parts = [tuned.assign(stage=tuned.apply(_stage, axis=1))]
    for (data, size), _ in tuned.groupby(["train_data", "train_size"]):
        parts.append(prompted.assign(train_data=data, train_size=size, stage="prompted"))
    table = pd.concat(parts)
    index = ["base", "train_data", "train_size", "dataset", "noise"]
    _one_run_per_cell(table, [*index, "stage"])
    order = ("prompted", *(f"round {r}" for r in sorted(set(tuned["round"].astype(int)))),
             "grpo")
    return _cells(table, index, "stage", order)


def _stage(row: pd.Series) -> str:
    """What a fine-tuned cell is past its SFT data: ``round N`` (0: the SFT itself) or
    ``grpo`` (GRPO from that SFT cell's adapter)."""
    grpo = row.get("grpo")
    return "grpo" if grpo is not None and not pd.isna(grpo) and bool(grpo) else (
        f"round {int(row['round'])}")


def table3(runs: pd.DataFrame) -> pd.DataFrame:
    """FireAct Table 3 on an experiment's cells: each agent's score with a clean search,
    with ``None`` and with a random other result (the experiment's noise conditions, each
    with its interval); the drop from clean to each, paired over the shared questions;
    ``retry_<noise>``, the share of its empty results it searched again after
    (``searches_after_empty / empty_results``), ``repeat_<noise>`` the share it asked the
    same search again after (``repeats_after_empty / empty_results``: a retry, not a
    guess); and ``p_<noise>`` for each condition some run was evaluated under, the exact
    McNemar p against the agent ``--against`` names (every other agent), else, for a
    GRPO or self-improvement agent, against the SFT agent it went on from, under the same
    tool.  A row per base x evaluated dataset x agent (prompted, or its training set,
    size and stage: ``sft``, ``grpo``, ``round N``)."""
    against = runs.attrs.get("against")
    runs = _experiment(runs, "table3", every_round=True, every_noise=True)
    runs = runs.assign(agent=runs.apply(_agent, axis=1), condition=_conditions(runs))
    if against is not None and against not in set(runs["agent"]):
        raise FireactError(f"--against {against}: no agent of that name; agents: "
                           + ", ".join(sorted(set(runs["agent"]))))
    index = ["base", "dataset", "agent"]
    _one_run_per_cell(runs, [*index, "condition"])
    table = _cells(runs, index, "condition", NOISE_ORDER)
    conditions = score_columns(table)  # those some run was evaluated under
    noisy = [c for c in conditions if c != "off"]
    table = _with_drops(table, runs, index)
    for noise in noisy:
        rows = list(_row_runs(runs, index, table, noise))
        for column, metric in (("retry", "searches_after_empty"),
                               ("repeat", "repeats_after_empty")):
            shares = []
            for row in rows:
                empty = row.get("empty_results") if row is not None else None
                again = row.get(metric) if row is not None else None
                shares.append(again / empty if empty and not pd.isna(empty)
                              and again is not None and not pd.isna(again) else float("nan"))
            table[f"{column}_{noise}"] = shares
    for condition in conditions:
        agents = dict(zip(table.index, _row_runs(runs, index, table, condition), strict=True))
        table[f"p_{condition}"] = [_against_sft(key, agents, against) for key in table.index]
    return table


def _floors(runs: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """The closed-book run (``io``, else ``cot``: no tool at all) of each model x dataset."""
    floors: dict[tuple[str, str], pd.Series] = {}
    for method in reversed(SINGLE_TURN_METHODS):  # io wins where both are there
        for _, row in runs[runs["method"] == method].iterrows():
            floors[row["model"], row["dataset"]] = row
    return floors


# One question of a run as the profile reads it: its trajectory, whether it was right, and
# (fault kind, what came next) for each faulted call
FaultedQuestion = tuple[Trajectory, bool, list[tuple[str, str]]]


def _faulted_questions(row: pd.Series) -> list[FaultedQuestion]:
    return [(s.trajectory, bool(s.correct), after_faults(s.trajectory))
            for s in row["result"].samples()]


def _after_faults(questions: list[FaultedQuestion], kind: str | None = None
                  ) -> dict[str, float]:
    """What followed a run's faulted calls (shares of them), the share of the questions
    that met a fault which still ended right (``recovered``) or whose wrong answer came from
    the fault (``trusted``), and false alarms a question; ``kind``: only the faults of that
    kind (and the questions that met one)."""
    followed, met, recovered, trusted, alarms = Counter(), 0, 0, 0, 0
    for traj, correct, faults_met in questions:
        after = [what for fault, what in faults_met if kind in (None, fault)]
        followed.update(after)
        alarms += false_alarms(traj)
        if after:
            met += 1
            recovered += correct
            trusted += trusted_fault(traj, correct)
    calls, n = sum(followed.values()), len(questions)
    nan = float("nan")
    return {"faulted": calls / n if n else nan,
            **{column: followed[what] / calls if calls else nan for column, what in
               (("retried", "retry"), ("searched", "search"), ("answered", "answer"),
                ("stopped", "stop"))},
            "recovered": recovered / met if met else nan,
            "trusted": trusted / met if met else nan,
            "false_alarms": alarms / n if n else nan}


def _paired(reference: pd.Series, run: pd.Series) -> tuple[float, float, float, float]:
    """run - reference over the questions both answered, its paired bootstrap interval and
    McNemar's exact p (NaN for graded scores: means over repeated tries)."""
    a = sample_scores(reference, reference["metric"])
    b = sample_scores(run, run["metric"])
    shared = sorted(a.keys() & b.keys())
    if not shared:
        return (float("nan"),) * 4
    paired = paired_scores([a[k] for k in shared], [b[k] for k in shared])
    return paired.difference, paired.low, paired.high, paired.p_value


def faults(runs: pd.DataFrame) -> pd.DataFrame:
    """A robustness profile: a row per agent x tool condition (clean, each fault kind and
    persistence), its score with its interval; ``drop`` from its own clean run, paired over
    the shared questions (interval, McNemar ``p``); with ``--against LABEL``, ``vs``: its
    difference from that agent under the same condition (interval, ``p_vs``); what it did
    after the faulted calls (``faulted`` a question; the shares ``retried`` (the same search
    again), ``searched`` (another), ``answered``, ``stopped`` (an invalid action, the turn
    limit)); of the questions that met a fault, the
    share ``recovered`` (ended right) and ``trusted`` (answered from the fault);
    ``false_alarms`` a question (the same search again after a clean result); turns and
    prompt tokens; under a mixture's row, a row per kind it met (``mix / error``) with the
    recovery columns of that kind's faults alone; and ``floor``, the same model's
    closed-book score (``io`` / ``cot``), with ``below_floor`` where the faulty tool did
    worse than no tool."""
    floors = _floors(runs)
    agents = runs[~runs["method"].isin(SINGLE_TURN_METHODS)]
    if (agents["noise"] == "off").all():
        raise FireactError("--shape faults: no agent ran under a faulty tool among these runs "
                           "(noise=none, error, distractor, ...)")
    index = ["model", "method", "dataset"]
    index += [c for c in distinguishing(agents, [*index, "noise"])
              if c not in ("noise", "noise_p", "noise_seed", "noise_persist", "n")]
    agents = agents.assign(condition=_conditions(agents))
    _one_run_per_cell(agents, [*index, "condition"])
    against = runs.attrs.get("against")
    if against is not None and against not in set(agents["model"]):
        raise FireactError(f"--against {against}: no agent of that name; agents: "
                           + ", ".join(sorted(set(agents["model"]))))
    by_key = {(*(row[k] for k in index), row["condition"]): row
              for _, row in agents.iterrows()}
    order = {name: i for i, name in enumerate(NOISE_ORDER)}
    rows = []
    for key, row in sorted(by_key.items(), key=lambda item: (
            tuple(map(str, item[0][:-1])), order.get(item[0][-1], len(order)), item[0][-1])):
        clean = by_key.get((*key[:-1], "off"))
        drop = (_paired(row, clean) if clean is not None and key[-1] != "off"  # clean - faulty
                else (float("nan"),) * 4)
        record = {**dict(zip([*index, "condition"], key, strict=True)),
                  "score": row["score"], "score_low": row["score_low"],
                  "score_high": row["score_high"], "n": row["n"],
                  "drop": drop[0], "drop_low": drop[1], "drop_high": drop[2], "p": drop[3]}
        if against is not None:
            reference = by_key.get((against, *key[1:]))
            vs = (_paired(reference, row) if reference is not None and row is not reference
                  else (float("nan"),) * 4)
            record |= {"vs": vs[0], "vs_low": vs[1], "vs_high": vs[2], "p_vs": vs[3]}
        questions = _faulted_questions(row)
        record |= _after_faults(questions)
        record |= {"turns": row.get("turns"), "prompt_tokens": row.get("prompt_tokens")}
        floor = floors.get((row["model"], row["dataset"]))
        record["floor"] = floor["score"] if floor is not None else float("nan")
        record["below_floor"] = bool(floor is not None and row["score"] < floor["score"])
        rows.append(record)
        met = {fault for _, _, faults_met in questions for fault, _ in faults_met}
        kinds = [kind for kind in NOISE_KINDS if kind in met]
        if len(kinds) > 1:  # a mixture: its recovery split by kind, under the mixture's row
            rows += [{**dict(zip([*index, "condition"], (*key[:-1], f"{key[-1]} / {kind}"),
                                 strict=True)), **_after_faults(questions, kind)}
                     for kind in kinds]
    return pd.DataFrame(rows).set_index([*index, "condition"])


def faults_wide(table: pd.DataFrame) -> pd.DataFrame:
    """The profile's scores with a column per condition (and its bounds), for a plot (a
    mixture's per-kind rows have no score of their own)."""
    table = table[table["score"].notna()]
    scores = table[["score", "score_low", "score_high"]].unstack("condition")
    conditions = list(dict.fromkeys(table.index.get_level_values("condition")))
    return pd.concat([scores[(part, c)].rename(f"{c}{suffix}") for c in conditions
                      for part, suffix in (("score", ""), ("score_low", "_low"),
                                           ("score_high", "_high"))], axis=1)


def _agent(row: pd.Series) -> str:
    if row["kind"] == "prompted":
        return "prompted"
    size = f" {int(row['train_size'])}" if row["train_size"] else ""
    stage = _stage(row)
    return f"{row['train_data']}{size} {'sft' if stage == 'round 0' else stage}"


def _against_sft(key: tuple, agents: dict[tuple, pd.Series | None],
                 against: str | None = None) -> float:
    """McNemar's exact p of the agent at ``key`` against ``against`` (an agent named by
    the user), else the SFT agent of its training set (``... sft``), over the questions
    both answered; NaN for the reference itself, for an SFT or prompted agent without
    ``against``, or where either run is missing."""
    base, dataset, agent = key
    name, stage = re.fullmatch(r"(?:(.*) )?(prompted|sft|grpo|round \d+)", agent).groups()
    reference = agents.get((base, dataset, against or f"{name} sft"))
    run = agents.get(key)
    if (against is None and stage in ("sft", "prompted")) or agent == against or (
            reference is None or run is None):
        return float("nan")
    a, b = sample_scores(reference, reference["metric"]), sample_scores(run, run["metric"])
    shared = a.keys() & b.keys()
    return mcnemar_exact(sum(1 for k in shared if a[k] == 1 and b[k] != 1),
                         sum(1 for k in shared if b[k] == 1 and a[k] != 1))


def figure3(runs: pd.DataFrame) -> pd.DataFrame:
    """FireAct Figure 3: the fine-tuned agent's score against the number of training
    trajectories, a column per size (each with its interval), a row per base x training
    set x evaluated dataset; the prompted base, where the grid has it, as size 0."""
    runs = _experiment(runs, "figure3")
    prompted = runs[runs["kind"] == "prompted"]
    tuned = runs[runs["kind"] == "finetuned"]
    # columns by number of trajectories, in numeric order; "all" for a cell trained on all
    sizes = tuned["train_size"].map(lambda n: str(int(n)) if n else "all")
    rows = [tuned.assign(trajectories=sizes)]
    for data in sorted(set(tuned["train_data"])):
        rows.append(prompted.assign(train_data=data, trajectories="0"))
    table = pd.concat(rows)
    index = ["base", "train_data", "dataset"]
    _one_run_per_cell(table, [*index, "trajectories"])
    order = sorted({s for s in table["trajectories"] if s != "all"}, key=int)
    return _cells(table, index, "trajectories", (*order, "all"))


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """FireAct Table 2: prompted against fine-tuned, per base and evaluated dataset (and
    training set and size where the grid has several): both scores with their intervals,
    the gain B - A with its paired bootstrap interval over the shared questions, and the
    relative gain (B / A - 1)."""
    runs = _experiment(runs, "table2")
    prompted = runs[runs["kind"] == "prompted"].set_index(["base", "dataset"])
    rows = []
    for _, tuned in runs[runs["kind"] == "finetuned"].iterrows():
        key = (tuned["base"], tuned["dataset"])
        if key not in prompted.index:
            continue
        base = prompted.loc[[key]].iloc[0]
        gain, n, low, high = _paired_drop(tuned, base)
        rows.append({"base": tuned["base"], "dataset": tuned["dataset"],
                     "train_data": tuned["train_data"], "train_size": tuned["train_size"],
                     "prompted": base["score"], "prompted_low": base["score_low"],
                     "prompted_high": base["score_high"], "finetuned": tuned["score"],
                     "finetuned_low": tuned["score_low"], "finetuned_high": tuned["score_high"],
                     "gain": gain, "gain_low": low, "gain_high": high, "n_paired": n,
                     "relative_gain": (tuned["score"] / base["score"] - 1
                                       if base["score"] else float("nan"))})
    if not rows:
        raise FireactError("--shape table2 needs a prompted and a fine-tuned cell of one base "
                           "(prompted: in the experiment YAML)")
    return pd.DataFrame(rows).set_index(["base", "dataset", "train_data", "train_size"])


def figure4(runs: pd.DataFrame) -> pd.DataFrame:
    """FireAct Figure 4: the fine-tuned agent's score per training set (its method mix), a
    row per base, training size and evaluated dataset, each with its interval."""
    tuned = _experiment(runs, "figure4")
    tuned = tuned[tuned["kind"] == "finetuned"]
    index = ["base", "train_size", "dataset"]
    _one_run_per_cell(tuned, [*index, "train_data"])
    return _cells(tuned, index, "train_data")


def table5(runs: pd.DataFrame) -> pd.DataFrame:
    """FireAct Table 5: single- against multi-task fine-tuning, a row per base, training
    size and training set, a column per evaluated dataset (each with its interval)."""
    tuned = _experiment(runs, "table5")
    tuned = tuned[tuned["kind"] == "finetuned"]
    index = ["base", "train_size", "train_data"]
    _one_run_per_cell(tuned, [*index, "dataset"])
    return _cells(tuned, index, "dataset", DATASET_ORDER)


def table4(runs: pd.DataFrame) -> pd.DataFrame:
    """FireAct Table 4: per fine-tuned agent (its training set, e.g. a method mix) the score
    with its interval and the mean and standard deviation of its turns, plus two agents made
    per question from the single-method ones (trained on rows of one method only, by the
    cell's ``train_methods``): ``random choice`` (a method drawn at random for each question:
    the mean of their scores on it) and ``oracle`` (the best of them on it), over the
    questions every one of them answered."""
    tuned = _experiment(runs, "table4")
    tuned = tuned[tuned["kind"] == "finetuned"]
    rows = []
    for (base, size, dataset), group in tuned.groupby(["base", "train_size", "dataset"]):
        single, wrote = {}, {}  # single-method agents: per-question scores, their method
        for _, row in group.iterrows():
            turns = pd.Series(list(sample_scores(row, "turns").values()), dtype=float)
            methods = row.get("train_methods") or ""
            if methods and "+" not in methods:
                single[row["train_data"]] = sample_scores(row, row["metric"])
                wrote[row["train_data"]] = methods
            rows.append({"base": base, "train_size": size, "dataset": dataset,
                         "agent": row["train_data"], "methods": methods,
                         "score": row["score"], "score_low": row["score_low"],
                         "score_high": row["score_high"], "turns": turns.mean(),
                         "turns_sd": turns.std(ddof=1), "n": row["n"]})
        if len(single) < 2:
            continue
        shared = sorted(set.intersection(*(set(v) for v in single.values())))
        if not shared:
            continue
        for agent, pick in (("random choice", lambda xs: sum(xs) / len(xs)),
                            ("oracle", max)):
            per_question = [pick([scores[k] for scores in single.values()]) for k in shared]
            low, high = paired_bootstrap(per_question)
            rows.append({"base": base, "train_size": size, "dataset": dataset,
                         "agent": agent, "methods": "+".join(sorted(wrote.values())),
                         "score": sum(per_question) / len(shared), "score_low": low,
                         "score_high": high, "turns": float("nan"),
                         "turns_sd": float("nan"), "n": len(shared)})
    if not rows:
        raise FireactError("--shape table4 needs fine-tuned cells")
    return pd.DataFrame(rows).set_index(["base", "train_size", "dataset", "agent"])


def outcome_counts(row: pd.Series) -> dict[str, int] | None:
    """How many of a run's samples ended each way: from its samples file (recorded, or
    derived from the trajectory for runs logged before outcomes were), else from the
    ``outcome_*`` means in its results file; None when it has neither."""
    counts = Counter(sample.outcome for sample in row["result"].samples())
    if counts:
        return {name: counts.get(name, 0) for name in OUTCOMES}
    shares = [row.get(PREFIX + name) for name in OUTCOMES]
    if row["n"] and all(isinstance(v, float) and not pd.isna(v) for v in shares):
        return {name: round(share * row["n"]) for name, share in zip(OUTCOMES, shares,
                                                                     strict=True)}
    return None


def outcomes(runs: pd.DataFrame) -> pd.DataFrame:
    """How each run's rollouts ended: the share of each outcome (``fireact_eval.outcomes``;
    the shares of a row add up to 1) and ``n``."""
    keys = ["model", "method", "dataset", "noise"]
    keys += [c for c in distinguishing(runs, keys) if c != "n"]
    rows = []
    for _, row in runs.iterrows():
        counts = outcome_counts(row)
        total = sum(counts.values()) if counts else 0
        rows.append({**{k: row[k] for k in keys}, "n": total or row["n"],
                     **{name: (counts[name] / total if total else float("nan"))
                        for name in OUTCOMES}})
    return pd.DataFrame(rows).set_index(keys)


def provenance(runs: pd.DataFrame) -> list[str]:
    """Where each run's numbers come from (search environment, questions), one line per
    model x dataset, for the notes under a table."""
    lines = []
    for row in runs.drop_duplicates(["model", "dataset", "search", "data"]).itertuples():
        data = f"; questions: {row.data}" if row.data else ""
        lines.append(f"{row.model} / {row.dataset}: search {row.search}{data}")
    tested = runs["train_on_test"].astype(bool) if "train_on_test" in runs else []
    for model in sorted(set(runs.loc[tested, "model"])) if len(tested) else []:
        lines.append(f"{model}: TRAINED ON TEST QUESTIONS (--train-on-test): its numbers "
                     "on those questions are not held out")
    return sorted(set(lines))


SHAPES = {name: globals()[name] for name in TABLE_SHAPES}  # each shape's function
# Shapes for some runs only (with repeats; from an experiment folder): where they do not
# apply they are left out of the report, not noted as failures.
WHERE_THEY_APPLY = ("faults", "repeats", "table2", "table3", "table4", "table5", "figure3",
                    "figure4", "rounds")
