"""Fine-tuning: ``train`` (LoRA, full, GRPO) and ``accelerate-config``."""

from __future__ import annotations

import argparse
import sys

from fireact_eval.cli.common import door
from fireact_eval.options import add_arguments, from_namespace


def _train(args: argparse.Namespace) -> None:
    from fireact_eval.trainers.allocator import run_under
    from fireact_eval.trainers.train import TrainConfig, train

    with door():
        cfg = from_namespace(TrainConfig, args)
        cfg.validate()  # before re-executing under another allocator
        cfg.check_paths()
    if args.whole_process:  # this command is the process: it may re-execute itself
        run_under(cfg.allocator, sys.orig_argv[1:])
    card = train(cfg)
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under accelerate launch: one report, not N
        return
    print(f"trained {card.examples} examples, {card.global_step} steps; loss (mean of "
          f"the first / last tenth of the steps) {card.train_loss_start:.3f} -> "
          f"{card.train_loss_end:.3f}; {card.tokens_per_second:.0f} tokens/s, peak "
          f"{card.peak_memory_kind} {card.peak_memory_mb / 1024:.1f} GB "
          f"({card.host_allocator}); saved to "
          f"{args.out}. Evaluate with:")
    for command in card.eval_commands:
        print(f"  {command}")


def _accelerate_config(args: argparse.Namespace) -> None:
    from fireact_eval.trainers import ACCELERATE_CONFIGS

    print(ACCELERATE_CONFIGS / f"{args.name}.yaml")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="LoRA / full fine-tuning on ReAct trajectories")
    from fireact_eval.trainers.train import TrainConfig

    add_arguments(p, TrainConfig)
    p.set_defaults(func=_train)

    p = sub.add_parser("accelerate-config",
                       help="print the path of a shipped accelerate config, for --config_file")
    p.add_argument("name", choices=["ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3"])
    p.set_defaults(func=_accelerate_config)
