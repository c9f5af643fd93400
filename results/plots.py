"""Figures for a report: the leaderboard as grouped bars (matplotlib, no display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from fireact_eval.jsonio import write_atomic


def plot_table(table: pd.DataFrame, out: str | Path, title: str = "",
               ylabel: str = "score") -> Path:
    """Grouped bars: a group per column (dataset, or noise setting), a bar per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = table.drop(columns=[c for c in table.columns if str(c).startswith("drop_")])
    data.index = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i)
                  for i in data.index]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.4 * data.size), 4))
    data.T.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    out = Path(out)
    image = io.BytesIO()
    fig.savefig(image, dpi=120, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    write_atomic(out, image.getvalue())
    return out
