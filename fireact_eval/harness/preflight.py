"""Every fireact task of a run checked before lm-eval loads the model, and lm-eval's advice
that is not meant for our tasks dropped while the run lasts."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.harness.compat import task_index
from fireact_eval.rollout_settings import LM_EVAL_KEYS, check_metadata, valid_metadata_keys

log = logging.getLogger(__name__)


def _our_task_configs(task_manager: Any, names: Sequence[Any], seen: set[str],
                      others: list[str]):
    """The merged YAML + run config of each fireact task among ``names`` (tasks, groups,
    tags), read the way lm-eval will read it; the names of tasks not ours go to ``others``."""
    from fireact_eval.tasks import TASKS_DIR

    root = os.path.realpath(TASKS_DIR)
    for name in names:
        entry = task_index(task_manager).get(name) if isinstance(name, str) else None
        if entry is None:  # a path, a dict, a Task object: lm-eval's to check
            others.append(str(name))
            continue
        if name in seen:
            continue
        seen.add(name)
        if entry.kind.name == "TAG":  # its member tasks
            yield from _our_task_configs(task_manager, sorted(entry.tags), seen, others)
            continue
        if not entry.yaml_path or not os.path.realpath(entry.yaml_path).startswith(root):
            others.append(name)
            continue
        cfg = task_manager._factory._load_full_config(entry, None)
        if isinstance(cfg.get("task"), list):  # a group: its members
            yield from _our_task_configs(task_manager, cfg["task"], seen, others)
        else:
            yield cfg


def check_metadata_keys(metadata: Mapping[str, Any], model_args: Any = None,
                        others: Sequence[str] = ()) -> None:
    """Refuse a key nobody reads (``serach=bing`` would run with the default search).
    lm-eval merges the model args into the metadata, so those keys are allowed too; in a run
    with other tasks (``others``), whose metadata lm-eval shares with ours, it is a warning."""
    from lm_eval.utils import simple_parse_args_string

    if isinstance(model_args, str):
        model_args = simple_parse_args_string(model_args)
    valid = valid_metadata_keys()
    unknown = sorted(set(metadata) - set(valid) - set(LM_EVAL_KEYS) - set(model_args or {}))
    if unknown:
        message = (f"unknown --metadata key(s): {', '.join(unknown)}; valid keys: "
                   f"{', '.join(valid)}")
        if others:
            log.warning("%s (or keys of the other tasks: %s)", message, ", ".join(others))
            return
        raise FireactError(message)


@dataclass(frozen=True)
class OurTasks:
    """What the preflight found in a run: the fireact tasks, and whether it holds only them."""

    names: frozenset[str] = frozenset()
    only_ours: bool = False


class _AdviceNotForUs(logging.Filter):
    """lm-eval's advice that does not apply to our tasks, dropped so that a newcomer does
    not read it as their mistake: "chat template is not applied" (lm-eval gives it to any
    model whose name says "instruct"; our tasks choose their rendering themselves,
    ``format``: plain, alpaca or chat, recorded in each result file; for SmolLM2-135M-Instruct
    few-shot on the demo the advice is wrong: plain finishes 0.67, chat 0.00), in a run of
    our tasks only; and "Custom kwargs can be passed to --metadata ... max_seq_lengths",
    which lm-eval says once per task that loads its questions through a function, as ours
    do (their ``--metadata`` keys are checked by the preflight instead)."""

    def __init__(self, ours: OurTasks) -> None:
        super().__init__()
        self.ours = ours

    def filter(self, record: logging.LogRecord) -> bool:
        # lm-eval wraps its advice at 140 columns: a model path of some lengths puts a line
        # break inside a phrase, so the text is matched with its whitespace normalised
        text = " ".join(record.getMessage().split())
        if self.ours.only_ours and "chat template is not applied" in text:
            return False
        task, _, rest = text.partition(": ")
        return not (task in self.ours.names and rest.startswith("Custom kwargs can be passed"))


# where lm-eval logs the advice: ``lm_eval.api.task._task`` is 0.5.0.dev1's module of it
ADVISING_LOGGERS = ("lm_eval.evaluator", "lm_eval.api.task", "lm_eval.api.task._task")


@contextlib.contextmanager
def advice_not_for_us_dropped(ours: OurTasks):
    """Drop lm-eval's advice that does not apply to our tasks while the run lasts."""
    quiet = _AdviceNotForUs(ours)
    for name in ADVISING_LOGGERS:
        logging.getLogger(name).addFilter(quiet)
    try:
        yield
    finally:
        for name in ADVISING_LOGGERS:
            logging.getLogger(name).removeFilter(quiet)


def require_chat_template(tokenizer: Any, name: str) -> None:
    """format=chat renders every turn through the tokenizer's chat template: a tokenizer
    without one is one line, not transformers' traceback at the first turn."""
    if not getattr(tokenizer, "chat_template", None):
        raise FireactError(f"format=chat: {name}'s tokenizer has no chat template; use "
                           "format=plain or alpaca, or a model that has one")


# backends that render our chat and tools layouts through a local tokenizer's template
LOCAL_TEMPLATE_BACKENDS = ("hf", "hf-auto", "huggingface", "vllm")


def check_templates(metadatas: Sequence[Mapping[str, Any]], model: Any,
                    model_args: Any) -> None:
    """A local model whose tokenizer cannot render the layout asked for (``format=chat``
    without a chat template; ``format=tools`` with its own template that renders no tools)
    is one line now, not after the model loaded; read from the tokenizer alone."""
    from pathlib import Path

    from lm_eval.utils import simple_parse_args_string

    from fireact_eval.tool_calls import resolve_layout

    if model not in LOCAL_TEMPLATE_BACKENDS:
        return
    args = simple_parse_args_string(model_args) if isinstance(model_args, str) else (
        model_args or {})
    path = str(args.get("tokenizer") or args.get("pretrained") or "")
    needs = [m for m in metadatas if m.get("format") == "chat" or m.get("format") == "tools"
             and m.get("tool_template", "model") == "model"]
    if not needs or not Path(path).is_dir():  # a Hub name: checked where it loads
        return
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    for metadata in needs:
        if metadata.get("format") == "chat":
            require_chat_template(tokenizer, path)
        if metadata.get("format") == "tools":
            resolve_layout(tokenizer, "model", str(metadata.get("tool_parser", "auto")),
                           model=path)


def preflight(task_manager: Any, tasks: Any, model_args: Any = None,
              model: Any = None) -> OurTasks:
    """Check every fireact task's settings and build its search tool *before* lm-eval loads
    the model (it loads the model first, tasks after): a typo or a missing Wikipedia index
    costs seconds, not a model load.  Called by the start-up hook around ``simple_evaluate``.
    Returns the fireact tasks it found."""
    if task_manager is None or tasks is None:
        return OurTasks()
    names = tasks if isinstance(tasks, (list, tuple)) else [tasks]
    others: list[str] = []
    configs = list(_our_task_configs(task_manager, names, set(), others))
    for cfg in configs:
        metadata = cfg.get("metadata") or {}
        check_metadata_keys(metadata, model_args, others)  # the model args' keys are lm-eval's
        # the one check every door shares (its keys checked just above, with lm-eval's)
        check_metadata(metadata, where="", allowed=tuple(metadata)).settings.build_tools()
        if callable(loader := cfg.get("custom_dataset")):  # the questions load, or say why not
            loader(**(cfg.get("metadata") or {}))
    check_templates([cfg.get("metadata") or {} for cfg in configs], model, model_args)
    return OurTasks(frozenset(str(cfg.get("task")) for cfg in configs),
                    bool(configs) and not others)
