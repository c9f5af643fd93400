"""The paper's table shapes, from the runs frame (``runs.load_runs``).

FireAct reports: quality per dataset for each model and method (its Tables 2 and 5), the
same under noisy search (Table 3: the tool returns ``None`` or a random other result), and the
cost of a trajectory (turns, tokens, time; Table 4).  Each function is one ``pivot``.
"""

from __future__ import annotations

import pandas as pd

DATASET_ORDER = ("hotpotqa", "bamboogle", "strategyqa", "mmlu", "demo")
NOISE_ORDER = ("off", "none", "random")
COST_COLUMNS = ("score", "finished", "turns", "tool_calls", "invalid_actions", "prompt_tokens",
                "gen_tokens", "seconds")


def _ordered(columns: pd.Index, order: tuple[str, ...]) -> list[str]:
    known = [c for c in order if c in columns]
    return known + sorted(c for c in columns if c not in order)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Headline score (EM, or accuracy) per dataset: a row per model x method x shots; noisy
    runs are left to ``robustness``."""
    clean = runs[runs["noise"] == "off"]
    table = clean.pivot_table(index=["model", "method", "shots"], columns="dataset",
                              values="score", aggfunc="mean")
    table = table[_ordered(table.columns, DATASET_ORDER)]
    table["mean"] = table.mean(axis=1)
    return table.sort_values("mean", ascending=False)


def robustness(runs: pd.DataFrame) -> pd.DataFrame:
    """Score with a clean tool and with noisy ones, and the drop from clean to each."""
    table = runs.pivot_table(index=["model", "method", "dataset"], columns="noise",
                             values="score", aggfunc="mean")
    table = table[_ordered(table.columns, NOISE_ORDER)]
    for noise in table.columns:
        if noise != "off" and "off" in table.columns:
            table[f"drop_{noise}"] = table["off"] - table[noise]
    return table


def cost(runs: pd.DataFrame) -> pd.DataFrame:
    """What a trajectory costs on average, next to what it scores."""
    columns = [c for c in COST_COLUMNS if c in runs.columns]
    return runs.groupby(["model", "method", "dataset", "noise"])[columns].mean()


SHAPES = {"leaderboard": leaderboard, "robustness": robustness, "cost": cost}
