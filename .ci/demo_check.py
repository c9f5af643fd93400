"""CI's short demo, checked against what docs/demo.md measured on the same questions.

`fireact-eval demo --limit 3 --batch_size 6` runs the full demo's recipe on the first 3 of
its 12 test questions; the full run of 2026-12-08 (docs/demo.md) answered them as below,
question by question.  The base model is inference only (float32, the same on any CPU's
kernels): its numbers must be equal.  The fine-tuned agents' adapters depend on the CPU's
kernels (docs/demo.md: another CPU's training moved one question in twelve), so theirs may
differ by one question; what must hold everywhere is the format they learnt (every clean
rollout finishes, no invalid action) and the retry-trained agent searching again after `None`.

    python .ci/demo_check.py DEMO_FOLDER   # the folder `fireact-eval demo --out` was given
"""

from __future__ import annotations

import sys
from pathlib import Path

from fireact_eval.results.frame import load_runs

# (label, task) -> questions right of the first 3, in the full run of 2026-12-08
MEASURED = {("prompted", "fireact_demo"): 0,
            ("tuned-clean", "fireact_demo"): 1, ("tuned-clean", "fireact_demo_noise_none"): 0,
            ("tuned-retry", "fireact_demo"): 1, ("tuned-retry", "fireact_demo_noise_none"): 0}
FOLDERS = {"prompted": "prompted", "tuned-clean": "tuned_clean", "tuned-retry": "tuned_retry"}


def main(root: Path) -> None:
    [run] = sorted(p for p in root.iterdir() if p.is_dir())[-1:]  # its timestamped folder
    runs = load_runs([f"{label}={run / folder}" for label, folder in FOLDERS.items()])
    problems = []
    for row in runs.itertuples():
        right = round(row.score * row.n)
        expected = MEASURED[(row.model, row.task)]
        allowed = 0 if row.model == "prompted" else 1
        if row.n != 3 or abs(right - expected) > allowed:
            problems.append(f"{row.model} {row.task}: {right} of {row.n} right, measured "
                            f"{expected} of 3")
        if row.model != "prompted" and row.task == "fireact_demo" and (
                row.finished < 1 or row.invalid_actions > 0):
            problems.append(f"{row.model}: finished {row.finished}, invalid actions "
                            f"{row.invalid_actions} a question (the format is not learnt)")
        if row.model == "tuned-retry" and row.task.endswith("noise_none") and not (
                row.searches_after_empty > 0):
            problems.append("tuned-retry never searched again after None")
    if len(runs) != len(MEASURED):
        problems.append(f"{len(runs)} runs of tasks, expected {len(MEASURED)}")
    if problems:
        sys.exit("the short demo differs from docs/demo.md: " + "; ".join(problems))
    print(f"the short demo matches docs/demo.md ({len(runs)} runs of tasks)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
