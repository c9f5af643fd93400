"""Figures for a report: the leaderboard as grouped bars, a curve (EM against training
trajectories, against rounds) as lines (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fireact_eval.jsonio import write_figure


def plot_table(table: pd.DataFrame, out: str | Path, title: str = "",
               ylabel: str = "score", curve: bool = False) -> Path:
    """Grouped bars: a group per score column (dataset, or noise setting), a bar per row,
    each with its interval (``X_low`` / ``X_high``) as an error bar.  ``curve``: a line per
    row across the columns in their order (Figure 3's sizes, the rounds), each point with
    its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fireact_eval.results.tables import score_columns

    columns = [c for c in score_columns(table) if not str(c).startswith("drop_")]
    labels = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in table.index]
    data = table[columns].set_axis(labels)
    # matplotlib's asymmetric error bars: (series, [below, above], column) for a frame
    below = (table[columns] - table[[f"{c}_low" for c in columns]].to_numpy()).set_axis(labels)
    above = (table[[f"{c}_high" for c in columns]].to_numpy() - table[columns]).set_axis(labels)
    errors = np.stack([below.T.to_numpy(), above.T.to_numpy()], axis=1).transpose(2, 1, 0)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.4 * data.size), 4))
    if curve:
        for number, label in enumerate(labels):
            ax.errorbar(range(len(columns)), data.loc[label], capsize=3, marker="o",
                        yerr=np.nan_to_num(errors[number]), label=label)
        ax.set_xticks(range(len(columns)), [str(c) for c in columns])
    else:
        data.T.plot.bar(ax=ax, rot=0, width=0.8, yerr=np.nan_to_num(errors), capsize=3)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    return write_figure(fig, out)
