"""The paper's table shapes, from the runs frame (``frame.load_runs``).

FireAct reports: quality per dataset for each model and method (its Tables 2 and 5), the
same under noisy search (Table 3: the tool returns ``None`` or a random other result), and the
cost of a trajectory (turns, tokens, time; Table 4).  Each function is one ``pivot``.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from fireact_eval.catalog import DATASETS, NOISE_KINDS
from fireact_eval.errors import FireactError
from fireact_eval.outcomes import OUTCOMES, PREFIX
from fireact_eval.results.frame import distinguishing, sample_scores

DATASET_ORDER, NOISE_ORDER = DATASETS, NOISE_KINDS
COST_COLUMNS = ("score", "finished", "turns", "tool_calls", "invalid_actions", "prompt_tokens",
                "gen_tokens", "seconds")


def _ordered(columns: pd.Index, order: tuple[str, ...]) -> list[str]:
    known = [c for c in order if c in columns]
    return known + sorted(c for c in columns if c not in order)


def _cells(runs: pd.DataFrame, index: list[str], column: str) -> pd.DataFrame:
    """``score`` with a row per ``index`` and a column per ``column``, one run per cell; a
    score that is NaN stays a NaN cell (``pivot_table`` drops such a column whole)."""
    return runs.set_index([*index, column])["score"].unstack(column)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Headline score (EM, or accuracy) per dataset: a row per model x method x shots; noisy
    runs are left to ``robustness``.  ``mean`` is over every dataset column: a row missing
    one (or whose score is NaN) has no mean, rather than a mean over other datasets."""
    clean = runs[runs["noise"] == "off"]
    index = ["model", "method", "shots"]
    index += distinguishing(clean, [*index, "dataset"])
    _one_run_per_cell(clean, [*index, "dataset"])
    table = _cells(clean, index, "dataset")
    table = table[_ordered(table.columns, DATASET_ORDER)]
    table["mean"] = table.mean(axis=1, skipna=False)
    return table.sort_values("mean", ascending=False, na_position="last")


def _paired_drop(clean: pd.Series, noisy: pd.Series) -> tuple[float, int]:
    """Mean of clean - noisy over the questions both runs answered, and how many; without
    sample files, the runs' scores when they asked the same number of questions."""
    a = sample_scores(clean, clean["metric"])
    b = sample_scores(noisy, noisy["metric"])
    shared = sorted(a.keys() & b.keys())
    if shared:
        return sum(a[k] - b[k] for k in shared) / len(shared), len(shared)
    if not a and not b and clean["n"] == noisy["n"]:
        return float(clean["score"] - noisy["score"]), int(clean["n"] or 0)
    return float("nan"), 0


def _conditions(runs: pd.DataFrame) -> pd.Series:
    """Each run's tool condition: its noise kind, plus its p and seed where runs of that kind
    differ in them (so two noisy runs at p=0.5 and p=0.3 are two columns, never one)."""
    varied = {kind for kind, group in runs.groupby("noise")
              if group[["noise_p", "noise_seed"]].drop_duplicates().shape[0] > 1}
    return runs.apply(lambda r: r["noise"] if r["noise"] == "off" or r["noise"] not in varied
                      else f"{r['noise']} p={r['noise_p']} seed={r['noise_seed']}", axis=1)


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
    runs = runs.assign(condition=_conditions(runs))
    _one_run_per_cell(runs, [*index, "condition"])
    table = _cells(runs, index, "condition")
    table = table[_ordered(table.columns, NOISE_ORDER)]
    table.columns.name = "noise"
    if "off" not in table.columns:
        return table
    by_key = runs.set_index(index)
    for noise in [c for c in table.columns if c != "off"]:
        drops, counts = [], []
        for key in table.index:
            rows = by_key.loc[[key]]
            clean, noisy = rows[rows["noise"] == "off"], rows[rows["condition"] == noise]
            drop, n = (_paired_drop(clean.iloc[0], noisy.iloc[0])
                       if len(clean) and len(noisy) else (float("nan"), 0))
            drops.append(drop)
            counts.append(n)
        table[f"drop_{noise}"], table[f"n_{noise}"] = drops, counts
    return table


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """What a trajectory costs on average, next to what it scores."""
    columns = [c for c in COST_COLUMNS if c in runs.columns]
    keys = ["model", "method", "dataset", "noise"]
    keys += distinguishing(runs, keys)
    return runs.groupby(keys)[columns].first()


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
    return sorted(set(lines))


SHAPES = {"leaderboard": leaderboard, "robustness": robustness, "cost": cost,
          "outcomes": outcomes}
