"""Evaluation and its search: the demo, the task folder, search indexes, the tool cache."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from fireact_eval.cli.common import OUT_FILE, OUT_FOLDER, add_force, door
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import files_read, refuse_overwrite
from fireact_eval.tools.corpus import WIKI_DATASET


def _tasks_dir(_: argparse.Namespace) -> None:
    from fireact_eval.tasks import TASKS_DIR

    print(TASKS_DIR)


def _demo(args: argparse.Namespace) -> None:
    """The offline demo: prompted vs two fine-tuned SmolLM2 agents (fireact_eval.demo)."""
    import time

    from fireact_eval.demo import DemoConfig, run_demo
    from fireact_eval.offline_model import smollm2_path
    from fireact_eval.paths import cache_root

    root = Path(args.out) if args.out else cache_root() / "demo"
    out = root / time.strftime("%Y-%m-%dT%H-%M-%S")
    cfg = DemoConfig(model=args.model or str(smollm2_path()), out=out, dtype=args.dtype,
                     device=args.device, batch_size=args.batch_size, limit=args.limit or None,
                     max_turns=args.max_turns, prompted_only=args.prompted_only,
                     extra=tuple(args.lm_eval_args))
    run_demo(cfg)
    print(f"\nresult and sample files: {out}\nthe report (open it in a browser): "
          f"{(out / 'report.html').resolve().as_uri()}")


def _index_build(args: argparse.Namespace) -> None:
    from fireact_eval.data.replay_index import build_replay_index

    refuse_overwrite(args.out, files_read(args.files), args.force)
    count = build_replay_index(args.files, args.out)
    print(f"{count} recorded queries -> {args.out}; use --metadata search=replay:{args.out}")


def _index_corpus(args: argparse.Namespace) -> None:
    """HotpotQA's context paragraphs (from the Hub) as a local search corpus."""
    import datasets

    from fireact_eval.tools.local_search import hotpotqa_passages, write_corpus

    refuse_overwrite(args.out, set(), args.force)
    rows = datasets.load_dataset("hotpotqa/hotpot_qa", "distractor", split=args.split)
    count = write_corpus(hotpotqa_passages(rows), args.out)
    print(f"{count} passages -> {args.out}; use --metadata search=wiki:{args.out}")


def _index_wiki(args: argparse.Namespace) -> None:
    """Build a search index ahead of a run (e.g. on a login node that reaches the Hub).
    ``--out``: a new or empty folder, or an index this command built (kept as it is unless
    ``--force`` rebuilds it); a folder of anything else is refused unless ``--force``, and
    one that holds the corpus always."""
    import shutil

    from fireact_eval.tools.local_search import open_index
    from fireact_eval.tools.passage_index import ours_to_replace

    if args.out:
        out, source = Path(args.out).resolve(), Path(args.source).resolve()
        if source == out or out in source.parents:
            raise FireactError(f"--out {args.out} holds the corpus --source {args.source}; "
                               "write the index elsewhere")
        if not ours_to_replace(out):
            if not args.force:
                raise FireactError(f"--out {args.out} holds files that are not a search "
                                   "index; give a new or empty folder, or --force (or "
                                   "--overwrite) to replace what it holds")
            if out.is_dir():
                shutil.rmtree(out)
            else:
                out.unlink()
    index = open_index(args.source, out=args.out, rebuild=args.force and bool(args.out))
    where = f"wiki:{index.path}" if args.out else (
        "wiki" if args.source == WIKI_DATASET else f"wiki:{args.source}")
    print(f"{len(index):,} passages indexed in {index.path}; use --metadata search={where}")


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


def _serve_tools(args: argparse.Namespace) -> None:
    from fireact_eval.options import parse_pairs
    from fireact_eval.serve_tools import ToolServer, require_sdk, serve
    from fireact_eval.task_environment import load_task

    require_sdk()
    with door():
        if not re.fullmatch(r"[\w.-]+", args.label) or set(args.label) == {"."}:
            raise FireactError(f"--label names the folder the runs go in under --out: letters, "
                               f"digits, '.', '_' or '-', got {args.label!r}")
        overrides = parse_pairs(args.metadata, "--metadata") if args.metadata else {}
        metadata, checked, docs = load_task(args.task, overrides)
    serve(ToolServer(args.task, metadata, checked, docs, Path(args.out), args.label),
          args.transport, args.port)


def add_commands(sub: argparse._SubParsersAction) -> None:
    from fireact_eval.demo import DemoConfig

    p = sub.add_parser("tasks-dir", help="print the task folder, for lm_eval --include_path")
    p.set_defaults(func=_tasks_dir)

    p = sub.add_parser("demo", help="offline, on a CPU: SmolLM2-135M prompted vs fine-tuned "
                       "on clean and on retry trajectories, clean and None search, tables, "
                       "gates and the report")
    p.add_argument("--limit", type=int, default=DemoConfig.limit,
                   help="test questions per task (default 12 of 36, to stay within minutes on "
                   "a CPU; 0: all)")
    p.add_argument("--model", default=None, help="HF model folder (default: SmolLM2-135M)")
    p.add_argument("--dtype", default=DemoConfig.dtype,
                   help="default float32: results independent of the batch size and the "
                   "CPU's kernels; bfloat16 is ~1.3x faster and moves by a question")
    p.add_argument("--device", default=DemoConfig.device)
    p.add_argument("--batch_size", "--batch-size", default=DemoConfig.batch_size, type=int,
                   help="trajectories generated together (default 24: both tasks at once)")
    p.add_argument("--max-turns", "--max_turns", type=int, default=DemoConfig.max_turns,
                   help="turn budget (default 5, to keep the demo short; FireAct: 11)")
    p.add_argument("--prompted-only", action="store_true",
                   help="only step 1: the base model, few-shot")
    p.add_argument("--out", "--output_path", "--output-path", dest="out", default=None,
                   type=OUT_FOLDER, help="folder for the runs (default: the cache); each "
                   "demo writes a new timestamped folder in it")
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER,
                   help="after --: extra arguments passed to lm_eval as they are")
    p.set_defaults(func=_demo)

    p = sub.add_parser("serve-tools", help="a task's tools as an MCP server (search, finish; "
                       "its faults, seeds, turn limit and scorer), every episode written as an "
                       "lm-eval run")
    p.add_argument("task", help="a fireact task, e.g. fireact_world_noise_distractor")
    p.add_argument("--metadata", default="", help="settings as lm_eval --metadata takes them "
                   "(key=value,...; a fault mixture with +)")
    p.add_argument("--out", "--output_path", dest="out", default="runs/serve-tools",
                   type=OUT_FOLDER, help="where each ended episode is written (LABEL/ under it)")
    p.add_argument("--label", default="mcp-agent", help="the agent's name in the run files")
    p.add_argument("--transport", default="stdio", choices=("stdio", "http"),
                   help="stdio, or streamable HTTP on 127.0.0.1:--port (path /mcp)")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=_serve_tools)

    index = sub.add_parser("index", help="build search data").add_subparsers(
        dest="index_command", required=True)
    p = index.add_parser("build", help="replay index from trajectory files (search=replay:OUT)")
    p.add_argument("files", nargs="+",
                   help="FireAct alpaca .json / chat .jsonl files, lm-eval samples_*.jsonl")
    p.add_argument("--out", required=True, type=OUT_FILE)
    add_force(p)
    p.set_defaults(func=_index_build)
    p = index.add_parser("corpus", help="HotpotQA context paragraphs as a local:PATH corpus")
    p.add_argument("--out", required=True, type=OUT_FILE)
    p.add_argument("--split", default="validation")
    add_force(p)
    p.set_defaults(func=_index_corpus)
    p = index.add_parser("wiki", help="build the Wikipedia search index ahead of a run "
                         "(search=wiki); downloads the corpus from the Hub once")
    p.add_argument("--source", default=WIKI_DATASET,
                   help=f"corpus: Hub dataset id with a 'corpus' config (default {WIKI_DATASET}: "
                   "HotpotQA's 5.2M Wikipedia abstracts), a local folder in that layout, or a "
                   "JSONL / Parquet file of title, text (, _id)")
    p.add_argument("--out", default=None, type=OUT_FOLDER,
                   help="index folder (default: the cache, where search=wiki finds it)")
    add_force(p)
    p.set_defaults(func=_index_wiki)

    p = sub.add_parser("cache", help="the persistent tool-call cache")
    p.add_argument("action", choices=["stats", "clear"])
    p.add_argument("--backend", default=None, help="clear only this backend (e.g. serpapi:google)")
    p.add_argument("--path", default=None, help="cache file (default: $FIREACT_EVAL_TOOL_CACHE)")
    p.set_defaults(func=_cache)
