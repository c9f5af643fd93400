"""``fireact-eval``: the few commands that are not plain ``lm_eval`` runs, by group:
``run`` (demo, tasks-dir, index, cache), ``data`` (convert, generate, data), ``train``
(train, accelerate-config), ``experiment`` and ``results`` (results, gate, report)."""

from __future__ import annotations

import argparse
import sys

from fireact_eval.errors import FireactError, SettingsError


def build_parser() -> argparse.ArgumentParser:
    from fireact_eval.cli import data, experiment, results, run, train

    parser = argparse.ArgumentParser(prog="fireact-eval", description="the commands around "
                                     "lm_eval: demo, data, training, results")
    from fireact_eval import __version__

    parser.add_argument("--version", action="version", version=f"fireact-eval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (run, data, train, experiment, results):
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.whole_process = argv is None  # parsed from the process's own command line
    if getattr(args, "lm_eval_args", None) and args.lm_eval_args[0] == "--":
        args.lm_eval_args = args.lm_eval_args[1:]
    try:
        args.func(args)
    except SettingsError as err:  # refused where it entered: a usage error, as argparse's
        print(f"fireact-eval: error: {err}", file=sys.stderr)
        sys.exit(2)
    except FireactError as err:
        sys.exit(f"fireact-eval: error: {err}")
