"""Training data: convert, generate, data import / mix / stats."""

from __future__ import annotations

import argparse

from fireact_eval.catalog import CUTOFF, DATA_FORMATS, TRAINING_METHODS, data_format_of
from fireact_eval.cli.common import OUT_FIGURE, OUT_FILE, OUT_FOLDER, add_force, door
from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import run_inputs
from fireact_eval.jsonio import files_read, refuse_overwrite
from fireact_eval.options import add_arguments, from_namespace


def _convert(args: argparse.Namespace) -> None:
    from fireact_eval.convert import convert
    from fireact_eval.data.examples import check_suffix

    refuse_overwrite(args.out, run_inputs(args.runs), args.force)
    check_suffix(args.out, args.format)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    report = convert(args.runs, args.out, args.format, methods, args.keep_failed,
                     _eval_index(args), args.strict_format)
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

    with door():
        cfg = from_namespace(GenerateConfig, args)
        cfg.check_out()  # the cheap checks first: the evaluation sets may come from the Hub
        cfg.pairs()
    index = None
    if not cfg.keep_contaminated:  # checked before the teacher runs: it is the cheap part
        from fireact_eval.data.decontaminate import EvalIndex, shipped_eval_sets

        index = EvalIndex(shipped_eval_sets(cfg.data_dir or None, cfg.against))
    report = generate(cfg, index)
    print("\n".join(report.lines()))


def _data_import(args: argparse.Namespace) -> None:
    from fireact_eval.data.fireact_release import import_release

    for report in import_release(args.src, args.out, _eval_index(args), args.force):
        print("\n".join(report.lines()))


def _data_mix(args: argparse.Namespace) -> None:
    from fireact_eval.data.examples import read_examples, write_examples
    from fireact_eval.data.mix import mix

    refuse_overwrite(args.out, files_read(args.files), args.force)
    from fireact_eval.data.segments import read_layout

    examples = [e for path in args.files for e in read_examples(path)[0]]
    chosen = mix(examples, args.mix, args.seed)
    # a .jsonl out keeps the inputs' layout when they share one (tools stays tools)
    layouts = {read_layout(path)[1] for path in args.files}
    keep = layouts.pop() if len(layouts) == 1 and data_format_of(args.out) == "chat" else None
    write_examples(chosen, args.out, keep if keep in ("chat", "tools") else None)
    counts: dict[str, int] = {}
    for e in chosen:
        counts[f"{e.task}:{e.method}"] = counts.get(f"{e.task}:{e.method}", 0) + 1
    print(f"{len(chosen)} rows -> {args.out} ("
          + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + ")")


def _data_stats(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer

    from fireact_eval.data.summary import data_stats, plot_lengths
    from fireact_eval.offline_model import smollm2_path

    if args.png:
        refuse_overwrite(args.png, files_read([args.file]), args.force)
    name = args.tokenizer or str(smollm2_path())
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise FireactError(f"tokenizer {name!r} not found ({str(err).splitlines()[0]})") from None
    stats = data_stats(args.file, tokenizer, args.cutoff)
    print(stats.markdown())
    if args.png:
        print(f"histogram -> {plot_lengths(stats, args.png)}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="teacher rollouts (lm_eval --log_samples) -> training data")
    p.add_argument("runs", nargs="+", help="lm_eval --output_path folders or samples_*.jsonl")
    p.add_argument("--out", required=True, type=OUT_FILE,
                   help="alpaca .json, or .jsonl with --format chat or tools")
    p.add_argument("--format", choices=DATA_FORMATS, default="alpaca",
                   help="alpaca (FireAct's), chat (its messages) or tools (messages with "
                   "native tool calls + the tool schemas, as TRL and HF datasets hold them)")
    p.add_argument("--methods", default=",".join(TRAINING_METHODS),
                   help="keep rollouts of these methods (comma list)")
    p.add_argument("--keep-failed", action="store_true",
                   help="also keep unsuccessful rollouts (default: exact match / accuracy 1)")
    p.add_argument("--strict-format", action="store_true",
                   help="drop a successful try with an action line that is not one "
                        "tool[argument] (a model's own sampled tries: self-improvement)")
    _decontamination_flags(p)
    add_force(p)
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
    add_force(p)
    p.set_defaults(func=_data_import)
    p = data.add_parser("mix", help="so many (or such a share) of each task:method, seeded")
    p.add_argument("files", nargs="+", help="training files (ours: rows carry task, method)")
    p.add_argument("--mix", required=True, help="task:method=COUNT|SHARE,... or a preset: "
                   "single-task, multi-method, multi-task, multi-task-multi-method")
    p.add_argument("--out", required=True, type=OUT_FILE, help=".json (alpaca) or .jsonl (chat)")
    p.add_argument("--seed", type=int, default=0)
    add_force(p)
    p.set_defaults(func=_data_mix)
    p = data.add_parser("stats", help="rows per task x method, turns, token lengths, cutoff")
    p.add_argument("file")
    p.add_argument("--tokenizer", default=None,
                   help="the base model's tokenizer (default: the offline SmolLM2)")
    p.add_argument("--cutoff", type=int, default=CUTOFF, help=f"the trainer's (FireAct: {CUTOFF})")
    p.add_argument("--png", default=None, type=OUT_FIGURE,
                   help="write a histogram of token lengths here (.png, .pdf, .svg ...)")
    add_force(p)
    p.set_defaults(func=_data_stats)
