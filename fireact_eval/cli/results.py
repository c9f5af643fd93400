"""Results: tables, plots, the regression gate, the trajectory report, imports."""

from __future__ import annotations

import argparse
import sys

from fireact_eval.cli.common import OUT_FIGURE, OUT_FILE, OUT_FOLDER, add_force
from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import run_inputs
from fireact_eval.jsonio import refuse_overwrite, write_atomic
from fireact_eval.results.names import GATE_MIN_OVERLAP, GATE_TOLERANCE, TABLE_SHAPES


def _results_import(args: argparse.Namespace) -> None:
    from pathlib import Path

    from fireact_eval.jsonio import files_read
    from fireact_eval.questions import hotpotqa
    from fireact_eval.results.fireact_dumps import import_dump, run_label

    reads = files_read(args.files)
    for path in args.files:  # every folder it would write, checked before any is written
        folder = Path(args.out) / run_label(Path(path))
        if any(f.resolve() in reads for f in folder.rglob("*")) if folder.is_dir() else False:
            raise FireactError(f"{folder} holds one of this command's inputs; give another "
                               "--out")
        if folder.exists() and any(folder.iterdir()) and not args.force:
            raise FireactError(f"{folder} exists and is not empty; give another --out, or "
                               "--force (or --overwrite) to write over it")
    docs = hotpotqa(data_dir=args.data_dir)["test"].to_list()
    for path in args.files:
        folder = import_dump(path, args.out, docs)
        print(f"{path} -> {folder}")


# the shapes drawn: as bars, or (CURVES) as a line per row across the columns
PLOTTED = ("leaderboard", "robustness", "faults", "repeats", "figure3", "figure4", "table5",
           "rounds")
CURVES = ("figure3", "rounds")


def _results(args: argparse.Namespace) -> None:
    from fireact_eval.results.frame import load_runs, pool_seeds
    from fireact_eval.results.paper import beside
    from fireact_eval.results.tables import SHAPES, interval_notes, provenance, readable

    if args.action == "plot" and args.shape not in PLOTTED:
        raise FireactError(f"plot shapes: {', '.join(PLOTTED)}")
    if args.action == "plot":
        args.out = args.out or f"{args.shape}.png"
    if args.out:
        refuse_overwrite(args.out, run_inputs(args.runs), args.force)
    loaded = load_runs(args.runs)
    missing = loaded.attrs.get("missing", [])  # an experiment's cells without results
    runs = pool_seeds(loaded)
    if args.against is not None and args.shape not in ("faults", "table3"):
        raise FireactError(f"--against compares agents in --shape faults or table3, not "
                           f"{args.shape}")
    runs.attrs["against"] = args.against
    table, cited = beside(args.shape, SHAPES[args.shape](runs))
    if args.action == "plot":
        from fireact_eval.results.plots import plot_table
        from fireact_eval.results.tables import faults_wide

        table = faults_wide(table) if args.shape == "faults" else table

        written = plot_table(table, args.out, title=args.shape, curve=args.shape in CURVES)
        print(f"wrote {written}")
        return
    out = str(args.out or "")
    if out.endswith(".csv"):
        text = table.to_csv()
    elif out.endswith(".tex"):
        text = readable(table).to_latex(float_format="%.3f")
    else:
        text = readable(table).reset_index().to_markdown(index=False, floatfmt=".3f")
        notes = [*missing, *interval_notes(runs), *cited, *provenance(runs)]
        text += "\n\n" + "\n".join(f"- {line}" for line in notes) + "\n"
        if not out:
            print(text, end="")
            return
    write_atomic(out, text)
    print(f"wrote {out}")
    for line in missing:
        print(line, file=sys.stderr)


def _gate(args: argparse.Namespace) -> None:
    import json

    from fireact_eval.results.gate import as_records, gate

    if args.report:
        refuse_overwrite(args.report, run_inputs([args.baseline, args.candidate]), args.force)
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    verdicts = gate(args.baseline, args.candidate, metrics, args.level, args.tolerance,
                    args.min_overlap, args.allow_different_settings)
    print(f"{'task':<32} {'metric':<12} {'baseline':>8} {'candid.':>8} {'delta':>8} "
          f"[{args.level:.0%} interval], p (test, questions)")
    for verdict in verdicts:
        print(verdict.line())
    if args.report:
        write_atomic(args.report, json.dumps(as_records(verdicts), indent=2))
    regressed = [v.task for v in verdicts if v.regressed]
    if regressed:
        print(f"regression beyond noise on: {', '.join(regressed)}")
        sys.exit(1)
    print("no regression beyond noise")


def _report(args: argparse.Namespace) -> None:
    from fireact_eval.results.report import build_report
    from fireact_eval.results.report_page import write_report

    refuse_overwrite(args.out, run_inputs([*args.runs, *filter(None, (args.baseline,
                                                                     args.candidate))]),
                     args.force)
    report = build_report(args.runs, args.baseline, args.candidate)
    out = write_report(report, args.out, args.title)
    size = out.stat().st_size / 1e6
    print(f"wrote {out} ({len(report.runs)} runs, {len(report.questions)} rollouts, "
          f"{len(report.pairs)} paired tasks, {size:.1f} MB); open it in a browser: "
          f"{out.resolve().as_uri()}")


def _results_parser(p: argparse.ArgumentParser, action: str) -> None:
    p.add_argument("runs", nargs="+", help="lm_eval --output_path folders or result files; "
                   "LABEL=PATH names a run")
    p.add_argument("--shape", choices=TABLE_SHAPES, default="leaderboard")
    p.add_argument("--against", default=None, metavar="LABEL",
                   help="--shape faults: each agent's paired difference from this one (its "
                        "label: LABEL=PATH, or its model name) under every condition; "
                        "--shape table3: McNemar's p against this agent (e.g. 'clean 128 sft')")
    if action == "table":
        p.add_argument("--out", default=None, type=OUT_FILE,
                       help=".md (default: print), .csv or .tex")
    else:
        p.add_argument("--out", default=None, type=OUT_FIGURE,
                       help="a file matplotlib can write: .png (default: SHAPE.png), .pdf, "
                       ".svg ...")
    add_force(p)
    p.set_defaults(func=_results, action=action)


def add_commands(sub: argparse._SubParsersAction) -> None:
    from fireact_eval.stats import LEVEL

    p = sub.add_parser("results", help="leaderboard tables and plots from lm_eval result folders")
    results = p.add_subparsers(dest="results_command", required=True)
    p = results.add_parser("import-fireact", help="FireAct's released evaluation dumps -> "
                           "result folders that table, plot and gate read")
    p.add_argument("files", nargs="+", help="trajs/hotpotqa_dev_0_500_*.json")
    p.add_argument("--out", required=True, type=OUT_FOLDER)
    p.add_argument("--data-dir", default=None,
                   help="HotpotQA dev in FireAct's layout (default: from the Hub)")
    add_force(p)
    p.set_defaults(func=_results_import)
    for action in ("table", "plot"):
        _results_parser(results.add_parser(action, help=f"{action} of lm_eval result folders"),
                        action)

    p = sub.add_parser("gate", help="exit 1 when a candidate is worse than its baseline "
                       "beyond noise (paired per question)")
    p.add_argument("--baseline", required=True, help="lm_eval output folder or results file")
    p.add_argument("--candidate", required=True)
    p.add_argument("--metrics", default=None,
                   help="comma list (default: each task's score: exact_match or acc)")
    p.add_argument("--level", type=float, default=LEVEL,
                   help="confidence level (default 0.95): a drop regresses when McNemar's "
                   "exact p (0/1 scores) is below 1 - level, or, for other scores, the paired "
                   "bootstrap interval lies below 0")
    p.add_argument("--tolerance", type=float, default=GATE_TOLERANCE,
                   help="also ignore drops up to this size")
    p.add_argument("--min-overlap", type=float, default=GATE_MIN_OVERLAP,
                   help="share of the baseline's questions the candidate must have answered "
                   "(with --log_samples files; default 1.0: all)")
    p.add_argument("--allow-different-settings", action="store_true",
                   help="compare runs whose search, noise, max_turns or questions differ "
                   "(refused by default: the difference would not be the agent's)")
    p.add_argument("--report", default=None, type=OUT_FILE,
                   help="write the verdicts as JSON here")
    add_force(p)
    p.set_defaults(func=_gate)

    p = sub.add_parser("report", help="one self-contained HTML page: tables, every trajectory "
                       "step by step, and two runs compared question by question")
    p.add_argument("runs", nargs="*", help="lm_eval --output_path folders or result files; "
                   "LABEL=PATH names a run; the first two are paired unless --baseline / "
                   "--candidate say otherwise")
    p.add_argument("--baseline", default=None, help="the paired view's A (a run folder or file)")
    p.add_argument("--candidate", default=None, help="the paired view's B")
    p.add_argument("--out", default="report.html", type=OUT_FILE,
                   help="the HTML file (default: report.html)")
    p.add_argument("--title", default="", help="the page's title (default: the run labels)")
    add_force(p)
    p.set_defaults(func=_report)
