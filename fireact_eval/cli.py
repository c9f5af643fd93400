"""``fireact-eval``: the few commands that are not plain ``lm_eval`` runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fireact_eval.catalog import CUTOFF, TRAINING_METHODS
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import output_file, output_folder, write_atomic
from fireact_eval.options import add_arguments, from_namespace
from fireact_eval.tools.corpus import WIKI_DATASET


def _checked(check):
    """A path check as an argparse ``type``: its message is argparse's one-line error."""
    def parse(value: str) -> str:
        try:
            return check(value)
        except FireactError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = check.__name__
    return parse


OUT_FILE, OUT_FOLDER = _checked(output_file), _checked(output_folder)


def _tasks_dir(_: argparse.Namespace) -> None:
    from fireact_eval.tasks import TASKS_DIR

    print(TASKS_DIR)


def _accelerate_config(args: argparse.Namespace) -> None:
    from fireact_eval.trainers import ACCELERATE_CONFIGS

    print(ACCELERATE_CONFIGS / f"{args.name}.yaml")


def _demo(args: argparse.Namespace) -> None:
    """The offline demo: prompted vs fine-tuned SmolLM2 on the demo task (fireact_eval.demo)."""
    import time

    from fireact_eval.demo import DemoConfig, run_demo
    from fireact_eval.offline_model import smollm2_path
    from fireact_eval.paths import cache_root

    root = Path(args.output_path) if args.output_path else cache_root() / "demo"
    out = root / time.strftime("%Y-%m-%dT%H-%M-%S")
    cfg = DemoConfig(model=args.model or str(smollm2_path()), out=out, dtype=args.dtype,
                     device=args.device, batch_size=args.batch_size, limit=args.limit or None,
                     max_turns=args.max_turns, prompted_only=args.prompted_only,
                     extra=tuple(args.lm_eval_args))
    run_demo(cfg)
    print(f"\nresult and sample files: {out}\nthe report (open it in a browser): "
          f"{(out / 'report.html').resolve().as_uri()}")


def _index_build(args: argparse.Namespace) -> None:
    from fireact_eval.tools.replay import build_replay_index

    count = build_replay_index(args.files, args.out)
    print(f"{count} recorded queries -> {args.out}; use --metadata search=replay:{args.out}")


def _index_corpus(args: argparse.Namespace) -> None:
    """HotpotQA's context paragraphs (from the Hub) as a local search corpus."""
    import datasets

    from fireact_eval.tools.local_search import hotpotqa_passages, write_corpus

    rows = datasets.load_dataset("hotpotqa/hotpot_qa", "distractor", split=args.split)
    count = write_corpus(hotpotqa_passages(rows), args.out)
    print(f"{count} passages -> {args.out}; use --metadata search=wiki:{args.out}")


def _index_wiki(args: argparse.Namespace) -> None:
    """Build a search index ahead of a run (e.g. on a login node that reaches the Hub)."""
    from fireact_eval.tools.local_search import open_index

    index = open_index(args.source, out=args.out)
    where = f"wiki:{index.path}" if args.out else (
        "wiki" if args.source == WIKI_DATASET else f"wiki:{args.source}")
    print(f"{len(index):,} passages indexed in {index.path}; use --metadata search={where}")


def _convert(args: argparse.Namespace) -> None:
    from fireact_eval.convert import convert

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    report = convert(args.runs, args.out, args.format, methods, args.keep_failed,
                     _eval_index(args))
    print("\n".join(report.lines()))


def _eval_index(args: argparse.Namespace):
    """The evaluation sets to decontaminate against, unless --no-decontaminate."""
    if args.no_decontaminate:
        return None
    from fireact_eval.data.decontaminate import EvalIndex, shipped_eval_sets

    return EvalIndex(shipped_eval_sets(args.data_dir))


def _decontamination_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None,
                   help="evaluation sets in FireAct's layout (default: from the Hub), to drop "
                   "training questions found in one")
    p.add_argument("--no-decontaminate", action="store_true",
                   help="keep training questions that appear in an evaluation set")


def _generate(args: argparse.Namespace) -> None:
    from fireact_eval.generate import GenerateConfig, generate

    cfg = from_namespace(GenerateConfig, args)
    output_folder(cfg.out)  # the cheap checks first: the evaluation sets may come from the Hub
    cfg.pairs()
    index = None
    if not cfg.keep_contaminated:  # checked before the teacher runs: it is the cheap part
        from fireact_eval.data.decontaminate import EvalIndex, shipped_eval_sets

        index = EvalIndex(shipped_eval_sets(cfg.data_dir or None))
    report = generate(cfg, index)
    print("\n".join(report.lines()))


def _results_import(args: argparse.Namespace) -> None:
    from fireact_eval.questions import hotpotqa
    from fireact_eval.results.fireact_dumps import import_dump

    docs = hotpotqa(data_dir=args.data_dir)["test"].to_list()
    for path in args.files:
        folder = import_dump(path, args.out, docs)
        print(f"{path} -> {folder}")


def _data_import(args: argparse.Namespace) -> None:
    from fireact_eval.data.fireact_release import import_release

    for report in import_release(args.src, args.out, _eval_index(args)):
        print("\n".join(report.lines()))


def _data_mix(args: argparse.Namespace) -> None:
    from fireact_eval.data.examples import read_examples, write_examples
    from fireact_eval.data.mix import mix

    examples = [e for path in args.files for e in read_examples(path)[0]]
    chosen = mix(examples, args.mix, args.seed)
    write_examples(chosen, args.out)
    counts: dict[str, int] = {}
    for e in chosen:
        counts[f"{e.task}:{e.method}"] = counts.get(f"{e.task}:{e.method}", 0) + 1
    print(f"{len(chosen)} rows -> {args.out} ("
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + ")")


def _data_stats(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer

    from fireact_eval.data.stats import data_stats, plot_lengths
    from fireact_eval.offline_model import smollm2_path

    name = args.tokenizer or str(smollm2_path())
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise FireactError(f"tokenizer {name!r} not found ({str(err).splitlines()[0]})") from None
    stats = data_stats(args.file, tokenizer, args.cutoff)
    print(stats.markdown())
    if args.png:
        print(f"histogram -> {plot_lengths(stats, args.png)}")


def _results(args: argparse.Namespace) -> None:
    from fireact_eval.results.frame import load_runs
    from fireact_eval.results.tables import SHAPES, provenance

    if args.action == "plot" and args.shape in ("cost", "outcomes"):
        raise FireactError("plot shapes: leaderboard, robustness")
    runs = load_runs(args.runs)
    table = SHAPES[args.shape](runs)
    if args.action == "plot":
        from fireact_eval.results.plots import plot_table

        out = args.out or f"{args.shape}.png"
        print(f"wrote {plot_table(table, out, title=args.shape)}")
        return
    out = str(args.out or "")
    if out.endswith(".csv"):
        text = table.to_csv()
    elif out.endswith(".tex"):
        text = table.to_latex(float_format="%.3f")
    else:
        text = table.reset_index().to_markdown(index=False, floatfmt=".3f")
        text += "\n\n" + "\n".join(f"- {line}" for line in provenance(runs)) + "\n"
        if not out:
            print(text, end="")
            return
    write_atomic(out, text)
    print(f"wrote {out}")


def _gate(args: argparse.Namespace) -> None:
    import json

    from fireact_eval.results.gate import as_records, gate

    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    verdicts = gate(args.baseline, args.candidate, metrics, args.z, args.tolerance,
                    args.min_overlap, args.allow_different_settings)
    print(f"{'task':<32} {'metric':<12} {'baseline':>8} {'candid.':>8} {'delta':>8}  noise")
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

    report = build_report(args.runs, args.baseline, args.candidate)
    out = write_report(report, args.out, args.title)
    size = out.stat().st_size / 1e6
    print(f"wrote {out} ({len(report.runs)} runs, {len(report.questions)} rollouts, "
          f"{len(report.pairs)} paired tasks, {size:.1f} MB); open it in a browser: "
          f"{out.resolve().as_uri()}")


def _cache(args: argparse.Namespace) -> None:
    from fireact_eval.tools.cache import ToolCache

    cache = ToolCache(args.path)
    if args.action == "clear":
        print(f"removed {cache.clear(args.backend)} cached calls from {cache.path}")
        return
    stats = cache.stats()
    print(f"{cache.path}: {sum(stats.values())} cached calls")
    for backend, count in sorted(stats.items()):
        print(f"  {backend}: {count}")


def _train(args: argparse.Namespace) -> None:
    from fireact_eval.trainers.allocator import run_under
    from fireact_eval.trainers.train import TrainConfig, train

    cfg = from_namespace(TrainConfig, args)
    cfg.validate()  # before re-executing under another allocator
    if args.whole_process:  # this command is the process: it may re-execute itself
        run_under(cfg.allocator, sys.orig_argv[1:])
    card = train(cfg)
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under accelerate launch: one report, not N
        return
    print(f"trained {card['examples']} examples, {card['global_step']} steps; loss (mean of "
          f"the first / last tenth of the steps) {card['train_loss_start']:.3f} -> "
          f"{card['train_loss_end']:.3f}; {card['tokens_per_second']:.0f} tokens/s, peak "
          f"{card['peak_memory_kind']} {card['peak_memory_mb'] / 1024:.1f} GB "
          f"({card['host_allocator']}); saved to "
          f"{args.out}. Evaluate with:")
    for command in card["eval_commands"]:
        print(f"  {command}")


def _results_parser(p: argparse.ArgumentParser, action: str) -> None:
    p.add_argument("runs", nargs="+", help="lm_eval --output_path folders or result files; "
                   "LABEL=PATH names a run")
    p.add_argument("--shape", choices=["leaderboard", "robustness", "cost", "outcomes"],
                   default="leaderboard")
    p.add_argument("--out", default=None, type=OUT_FILE, help=".md (default: print), .csv or .tex"
                   if action == "table" else ".png, .pdf or .svg")
    p.set_defaults(func=_results, action=action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fireact-eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks-dir", help="print the task folder, for lm_eval --include_path")
    p.set_defaults(func=_tasks_dir)

    p = sub.add_parser("demo", help="offline, on a CPU: SmolLM2-135M prompted vs fine-tuned "
                       "on the demo task, clean and noisy search, tables and the gate")
    p.add_argument("--limit", type=int, default=12,
                   help="test questions per task (default 12 of 36, to stay within minutes on "
                   "a CPU; 0: all)")
    p.add_argument("--model", default=None, help="HF model folder (default: SmolLM2-135M)")
    p.add_argument("--dtype", default="bfloat16", help="default bfloat16: ~1.6x fp32 on CPU")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_size", "--batch-size", default=24, type=int,
                   help="trajectories generated together (default 24: both tasks at once)")
    p.add_argument("--max-turns", "--max_turns", type=int, default=5,
                   help="turn budget (default 5, to keep the demo short; FireAct: 11)")
    p.add_argument("--prompted-only", action="store_true",
                   help="only step 1: the base model, few-shot")
    p.add_argument("--output_path", "--output-path", default=None, type=OUT_FOLDER,
                   help="folder for the runs (default: the cache); each demo writes a new "
                   "timestamped folder in it")
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER,
                   help="after --: extra arguments passed to lm_eval as they are")
    p.set_defaults(func=_demo)

    index = sub.add_parser("index", help="build search data").add_subparsers(
        dest="index_command", required=True)
    p = index.add_parser("build", help="replay index from trajectory files (search=replay:OUT)")
    p.add_argument("files", nargs="+",
                   help="FireAct alpaca .json / chat .jsonl files, lm-eval samples_*.jsonl")
    p.add_argument("--out", required=True, type=OUT_FILE)
    p.set_defaults(func=_index_build)
    p = index.add_parser("corpus", help="HotpotQA context paragraphs as a local:PATH corpus")
    p.add_argument("--out", required=True, type=OUT_FILE)
    p.add_argument("--split", default="validation")
    p.set_defaults(func=_index_corpus)
    p = index.add_parser("wiki", help="build the Wikipedia search index ahead of a run "
                         "(search=wiki); downloads the corpus from the Hub once")
    p.add_argument("--source", default=WIKI_DATASET,
                   help=f"corpus: Hub dataset id with a 'corpus' config (default {WIKI_DATASET}: "
                   "HotpotQA's 5.2M Wikipedia abstracts), a local folder in that layout, or a "
                   "JSONL / Parquet file of title, text (, _id)")
    p.add_argument("--out", default=None, type=OUT_FOLDER,
                   help="index folder (default: the cache, where search=wiki finds it)")
    p.set_defaults(func=_index_wiki)

    p = sub.add_parser("convert", help="teacher rollouts (lm_eval --log_samples) -> training data")
    p.add_argument("runs", nargs="+", help="lm_eval --output_path folders or samples_*.jsonl")
    p.add_argument("--out", required=True, type=OUT_FILE,
                   help="alpaca .json, or chat .jsonl with --format chat")
    p.add_argument("--format", choices=["alpaca", "chat"], default="alpaca")
    p.add_argument("--methods", default=",".join(TRAINING_METHODS),
                   help="keep rollouts of these methods (comma list)")
    p.add_argument("--keep-failed", action="store_true",
                   help="also keep unsuccessful rollouts (default: exact match / accuracy 1)")
    _decontamination_flags(p)
    p.set_defaults(func=_convert)

    p = sub.add_parser("generate", help="a teacher on the training questions of every task x "
                       "method (lm-eval, any backend), resumable, then converted")
    from fireact_eval.generate import GenerateConfig

    add_arguments(p, GenerateConfig)
    p.set_defaults(func=_generate)

    data = sub.add_parser("data", help="training data: import, mix, report").add_subparsers(
        dest="data_command", required=True)
    p = data.add_parser("import-fireact", help="FireAct's released fine-tuning files -> our "
                        "format (parsed, MMLU options moved back, decontaminated)")
    p.add_argument("src", help="a clone of FireAct, its data/finetune folder, a file, or "
                   "'github' (fetch at the pinned commit)")
    p.add_argument("--out", required=True, type=OUT_FOLDER,
                   help="folder; files keep their names and layouts")
    _decontamination_flags(p)
    p.set_defaults(func=_data_import)
    p = data.add_parser("mix", help="so many (or such a share) of each task:method, seeded")
    p.add_argument("files", nargs="+", help="training files (ours: rows carry task, method)")
    p.add_argument("--mix", required=True, help="task:method=COUNT|SHARE,... or a preset: "
                   "single-task, multi-method, multi-task, multi-task-multi-method")
    p.add_argument("--out", required=True, type=OUT_FILE, help=".json (alpaca) or .jsonl (chat)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_data_mix)
    p = data.add_parser("stats", help="rows per task x method, turns, token lengths, cutoff")
    p.add_argument("file")
    p.add_argument("--tokenizer", default=None,
                   help="the base model's tokenizer (default: the offline SmolLM2)")
    p.add_argument("--cutoff", type=int, default=CUTOFF, help=f"the trainer's (FireAct: {CUTOFF})")
    p.add_argument("--png", default=None, type=OUT_FILE,
                   help="write a histogram of token lengths here")
    p.set_defaults(func=_data_stats)

    p = sub.add_parser("train", help="LoRA / full fine-tuning on ReAct trajectories")
    from fireact_eval.trainers.train import TrainConfig

    add_arguments(p, TrainConfig)
    p.set_defaults(func=_train)

    p = sub.add_parser("accelerate-config",
                       help="print the path of a shipped accelerate config, for --config_file")
    p.add_argument("name", choices=["ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"])
    p.set_defaults(func=_accelerate_config)

    p = sub.add_parser("results", help="leaderboard tables and plots from lm_eval result folders")
    results = p.add_subparsers(dest="results_command", required=True)
    p = results.add_parser("import-fireact", help="FireAct's released evaluation dumps -> "
                           "result folders that table, plot and gate read")
    p.add_argument("files", nargs="+", help="trajs/hotpotqa_dev_0_500_*.json")
    p.add_argument("--out", required=True, type=OUT_FOLDER)
    p.add_argument("--data-dir", default=None,
                   help="HotpotQA dev in FireAct's layout (default: from the Hub)")
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
    p.add_argument("--z", type=float, default=1.96, help="standard errors counted as noise")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="also ignore drops up to this size")
    p.add_argument("--min-overlap", type=float, default=1.0,
                   help="share of the baseline's questions the candidate must have answered "
                   "(with --log_samples files; default 1.0: all)")
    p.add_argument("--allow-different-settings", action="store_true",
                   help="compare runs whose search, noise, max_turns or questions differ "
                   "(refused by default: the difference would not be the agent's)")
    p.add_argument("--report", default=None, type=OUT_FILE,
                   help="write the verdicts as JSON here")
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
    p.set_defaults(func=_report)

    p = sub.add_parser("cache", help="the persistent tool-call cache")
    p.add_argument("action", choices=["stats", "clear"])
    p.add_argument("--backend", default=None, help="clear only this backend (e.g. serpapi:google)")
    p.add_argument("--path", default=None, help="cache file (default: $FIREACT_EVAL_TOOL_CACHE)")
    p.set_defaults(func=_cache)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.whole_process = argv is None  # parsed from the process's own command line
    if getattr(args, "lm_eval_args", None) and args.lm_eval_args[0] == "--":
        args.lm_eval_args = args.lm_eval_args[1:]
    try:
        args.func(args)
    except FireactError as err:
        sys.exit(f"fireact-eval: error: {err}")


if __name__ == "__main__":
    main()
