"""A report per training file: counts per task x method, turns, token lengths with the base
model's tokenizer, the share the trainer would cut at its cutoff, and a histogram."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact_eval.catalog import CUTOFF, data_format_of
from fireact_eval.data.examples import Example, read_examples, to_row
from fireact_eval.data.segments import read_layout, row_segments
from fireact_eval.jsonio import write_figure
from fireact_eval.tool_calls import HERMES_TEMPLATE


def p95(values: list[int]) -> float:
    """The 95th percentile, between the data's own values (``inclusive``: the default
    ``exclusive`` method extrapolates past the largest value on small samples)."""
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=20, method="inclusive")[18]


@dataclass
class DataStats:
    path: Path
    rows: int
    skipped: int
    counts: Counter  # (task, method) -> rows
    turns: dict[tuple[str, str], list[int]]
    lengths: list[int]  # tokens per example as the trainer renders it
    cutoff: int

    @property
    def over_cutoff(self) -> float:
        return sum(n > self.cutoff for n in self.lengths) / max(len(self.lengths), 1)

    def markdown(self) -> str:
        lines = [f"## {self.path.name}: {self.rows} rows ({self.skipped} skipped)", "",
                 "| task | method | rows | turns mean | turns std |", "|---|---|---:|---:|---:|"]
        for (task, method), n in sorted(self.counts.items()):
            turns = self.turns[(task, method)]
            std = statistics.stdev(turns) if len(turns) > 1 else 0.0
            lines.append(f"| {task or '?'} | {method or '?'} | {n} | "
                         f"{statistics.mean(turns):.2f} | {std:.2f} |")
        if self.lengths:
            lines += ["", f"tokens per example: mean {statistics.mean(self.lengths):.0f}, "
                      f"median {statistics.median(self.lengths):.0f}, "
                      f"p95 {p95(self.lengths):.0f}, "
                      f"max {max(self.lengths)}; over the cutoff ({self.cutoff}, cut by the "
                      f"trainer): {self.over_cutoff:.1%}"]
        return "\n".join(lines)


def token_lengths(examples: list[Example], fmt: str, tokenizer: Any) -> list[int]:
    """Each example's length in tokens, rendered as ``train`` renders it (template and all)."""
    lengths = []
    # tools rows: through the model's own template where it renders tools, else the shipped
    # Hermes one (what `train --tool-template hermes` renders)
    own = "tools" in str(getattr(tokenizer, "chat_template", None) or "")
    tool_template = None if own else HERMES_TEMPLATE
    for example in examples:
        row = to_row(example, fmt)
        segments = row_segments(row, fmt, tokenizer, tool_template)
        text = "".join(t for t, _ in segments)
        lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1)  # eos
    return lengths


def data_stats(path: str | Path, tokenizer: Any = None, cutoff: int = CUTOFF) -> DataStats:
    path = Path(path)
    examples, skipped = read_examples(path)
    turns: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in examples:
        turns[(e.task, e.method)].append(e.turns)
    fmt = read_layout(path)[1] if examples else data_format_of(path)
    lengths = token_lengths(examples, fmt, tokenizer) if tokenizer else []
    return DataStats(path, len(examples), len(skipped),
                     Counter((e.task, e.method) for e in examples), dict(turns), lengths, cutoff)


def plot_lengths(stats: DataStats, out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(stats.lengths, bins=40, color="#4477aa")
    ax.axvline(stats.cutoff, color="#cc3311", linestyle="--", label=f"cutoff {stats.cutoff}")
    ax.set_xlabel("tokens per example")
    ax.set_ylabel("examples")
    ax.set_title(f"{stats.path.name}: {stats.over_cutoff:.1%} over the cutoff")
    ax.legend()
    fig.tight_layout()
    return write_figure(fig, out)
