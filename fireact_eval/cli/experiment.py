"""``fireact-eval experiment CONFIG.yaml``: the grid of train x evaluate cells."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fireact_eval.cli.common import OUT_FOLDER, add_force, door


def _experiment(args: argparse.Namespace) -> None:
    from fireact_eval.experiment import layout
    from fireact_eval.experiment.config import load
    from fireact_eval.experiment.runner import run
    from fireact_eval.jsonio import refuse_foreign_folder

    root = Path(args.out or Path("runs") / Path(args.config).stem)
    with door():
        experiment = load(args.config)
        # a folder of something else is not written into (nor is the experiment's own)
        refuse_foreign_folder(root, (layout.PLAN,), args.force,
                              "experiment")
    records = run(experiment, root, args.jobs, args.launcher, args.dry_run)
    if args.dry_run:
        return
    failed = [r for r in records if r.get("status") != "done"]
    for record in failed:
        print(f"FAILED {record['name']}: {record.get('error', record.get('status'))} "
              f"(log: {record.get('log', '?')})")
    print(f"{len(records) - len(failed)} of {len(records)} cells done in {root}; tables: "
          f"fireact-eval results table {root} --shape figure3|table2|...")
    if failed:
        sys.exit(1)


def add_commands(sub: argparse._SubParsersAction) -> None:
    from fireact_eval.experiment.runner import LAUNCHERS

    p = sub.add_parser("experiment", help="a resumable grid of train x evaluate cells from "
                       "one YAML (experiments/*.yaml)")
    p.add_argument("config", help="the experiment YAML")
    p.add_argument("--out", default=None, type=OUT_FOLDER,
                   help="the experiment folder (default: runs/<config name>)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the cells, their training steps, rollouts and estimated time")
    p.add_argument("--jobs", type=int, default=1, help="cells run at once (default 1)")
    p.add_argument("--launcher", choices=LAUNCHERS, default="local",
                   help="local: here; slurm: a submitit job per cell (the YAML's launcher: "
                   "options are submitit's, e.g. slurm_partition, gpus_per_node); "
                   "submitit-local: submitit's local executor")
    add_force(p)
    p.set_defaults(func=_experiment)
