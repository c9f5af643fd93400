"""``fireact-eval``: the few commands that are not plain ``lm_eval`` runs."""

from __future__ import annotations

import argparse
import sys

from fireact_eval.errors import FireactError


def _tasks_dir(_: argparse.Namespace) -> None:
    from fireact_eval.tasks import TASKS_DIR

    print(TASKS_DIR)


def _demo(args: argparse.Namespace) -> None:
    """Run ``lm_eval`` on the embedded demo task with the default offline model."""
    from fireact_eval.offline_model import smollm2_path

    model = args.model or str(smollm2_path())
    argv = [
        "lm_eval", "run",
        "--model", "hf",
        "--model_args", f"pretrained={model},dtype={args.dtype}",
        "--tasks", "fireact_demo",
        "--device", args.device,
        "--batch_size", str(args.batch_size),
    ]
    if args.limit is not None:
        argv += ["--limit", str(args.limit)]
    if args.output_path:
        argv += ["--output_path", args.output_path, "--log_samples"]
    argv += args.lm_eval_args
    from lm_eval.__main__ import cli_evaluate

    sys.argv = argv
    cli_evaluate()


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
    print(f"{count} passages -> {args.out}; use --metadata search=local:{args.out}")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fireact-eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks-dir", help="print the task folder, for lm_eval --include_path")
    p.set_defaults(func=_tasks_dir)

    p = sub.add_parser("demo", help="offline end-to-end run: SmolLM2-135M on fireact_demo")
    p.add_argument("--limit", type=int, default=None, help="questions to run (default: all 36)")
    p.add_argument("--model", default=None, help="HF model folder (default: SmolLM2-135M)")
    p.add_argument("--dtype", default="bfloat16", help="default bfloat16: ~1.6x fp32 on CPU")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_size", "--batch-size", default=36, type=int)
    p.add_argument("--output_path", "--output-path", default=None,
                   help="write lm-eval result and sample files here")
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER,
                   help="after --: extra arguments passed to lm_eval as they are")
    p.set_defaults(func=_demo)

    index = sub.add_parser("index", help="build search data").add_subparsers(
        dest="index_command", required=True)
    p = index.add_parser("build", help="replay index from trajectory files (search=replay:OUT)")
    p.add_argument("files", nargs="+",
                   help="FireAct alpaca .json / chat .jsonl files, lm-eval samples_*.jsonl")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_index_build)
    p = index.add_parser("corpus", help="HotpotQA context paragraphs as a local:PATH corpus")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="validation")
    p.set_defaults(func=_index_corpus)

    p = sub.add_parser("cache", help="the persistent tool-call cache")
    p.add_argument("action", choices=["stats", "clear"])
    p.add_argument("--backend", default=None, help="clear only this backend (e.g. serpapi:google)")
    p.add_argument("--path", default=None, help="cache file (default: $FIREACT_EVAL_TOOL_CACHE)")
    p.set_defaults(func=_cache)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "lm_eval_args", None) and args.lm_eval_args[0] == "--":
        args.lm_eval_args = args.lm_eval_args[1:]
    try:
        args.func(args)
    except FireactError as err:
        sys.exit(f"fireact-eval: error: {err}")


if __name__ == "__main__":
    main()
