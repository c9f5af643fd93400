"""What the results commands offer by name, importable without pandas or scipy (the command
line's choices and defaults are built from it before any work): the table shapes and the
gate's defaults.  ``tables.SHAPES`` and ``gate`` hold the code behind each name."""

from __future__ import annotations

TABLE_SHAPES = ("leaderboard", "robustness", "faults", "cost", "outcomes", "repeats",
                # the paper's, from an experiment folder
                "table2", "table3", "table4", "table5", "figure3", "figure4", "rounds")
GATE_TOLERANCE, GATE_MIN_OVERLAP = 0.0, 1.0  # `fireact-eval gate`'s defaults
