"""The lm-eval glue, all of it: a task class that asks for rollouts, and the
``react_generate`` request type that runs them on any lm-eval backend.

lm-eval calls each request type once with every instance, so ``react_generate`` gets all
docs of all our tasks at once and hands them to the engine, which advances them together
with one ``generate_until`` per turn.  Everything it calls is plain Python.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM, hash_args
from lm_eval.api.task import ConfigurableTask

from fireact_eval.errors import FireactError
from fireact_eval.prompts import build_prompt
from fireact_eval.rollout import run_concurrently, run_episodes
from fireact_eval.scoring import COST_METRICS, OUTCOME_METRICS, higher_is_better
from fireact_eval.settings import LM_EVAL_KEYS, RolloutSettings, valid_metadata_keys
from fireact_eval.transcript import render_messages, render_text

log = logging.getLogger(__name__)
REQUEST_TYPE = "react_generate"


class ReactTask(ConfigurableTask):
    """A YAML task (``class: !function fireact_eval.harness.ReactTask``) whose one request
    per doc is a whole ReAct rollout; scoring stays in the YAML's ``process_results``."""

    def __init__(self, config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        self.settings = RolloutSettings.from_metadata(config.get("metadata"))
        # The result file records every setting the run used, defaults included.
        config["metadata"] = {**(config.get("metadata") or {}), **self.settings.as_metadata()}
        # Every task reports the outcomes and cost of its rollouts; YAMLs list only their
        # quality metrics.
        listed = {m["metric"] for m in config.get("metric_list") or []}
        config["metric_list"] = [*(config.get("metric_list") or []), *(
            {"metric": name, "aggregation": "mean", "higher_is_better": higher_is_better(name)}
            for name in (*OUTCOME_METRICS, *COST_METRICS, "finished") if name not in listed
        )]
        super().__init__(config=config)

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> Instance:
        chat = bool(kwargs.pop("apply_chat_template", False)) or self.settings.format == "chat"
        kwargs.pop("chat_template", None)
        s = self.settings
        prompt = build_prompt(doc["question"], s.method, s.shots,
                              "chat" if chat else s.format, s.family)
        rollout = {"chat": chat, **asdict(s)}
        gen_kwargs = dict(self.config.generation_kwargs or {})
        return Instance(
            request_type=REQUEST_TYPE,
            doc=doc,
            arguments=(prompt, gen_kwargs, rollout),
            idx=0,
            **kwargs,
        )


def model_identity(lm: LM) -> str:
    """What makes one model's turns differ from another's: backend class, weights, revision,
    adapter, dtype, endpoint.  Keys our turn cache, so a cache file written by one model is
    never replayed for another (lm-eval keys its own cache by the request alone)."""
    identity: dict[str, Any] = {"class": type(lm).__name__}
    for name in ("pretrained", "revision", "peft", "delta", "model", "base_url"):
        value = getattr(lm, name, None)
        if isinstance(value, str):
            identity[name] = value
    weights = getattr(lm, "_model", None)
    if weights is not None:
        identity["weights"] = getattr(weights, "name_or_path", "")
        identity["dtype"] = str(getattr(weights, "dtype", ""))
    vllm_args = getattr(lm, "model_args", None)
    if isinstance(vllm_args, dict):
        identity.update({k: str(vllm_args.get(k)) for k in ("model", "dtype", "revision")})
        identity["lora"] = str(getattr(getattr(lm, "lora_request", None), "lora_path", None))
    return json.dumps(identity, sort_keys=True)


def _generate_until(lm: LM, instances: list[Instance]) -> list[str]:
    """``lm.generate_until``; for an API backend, a server that still fails after lm-eval's
    retries (HTTP errors, a reply without ``choices``, one that is not JSON) is one line
    that says so, not a traceback from inside lm-eval's reorderer or ``requests``."""
    if not _is_api(lm):
        return lm.generate_until(instances, disable_tqdm=True)
    import requests

    try:
        outputs = lm.generate_until(instances, disable_tqdm=True)
    except (requests.RequestException, KeyError, IndexError, TypeError, ValueError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        if isinstance(err, ValueError) and "shorter" in str(err):
            detail = "a reply held fewer completions than prompts (empty 'choices')"
        raise FireactError(
            f"the model server at {getattr(lm, 'base_url', '?')} gave no usable reply after "
            f"lm-eval's {getattr(lm, 'max_retries', '?')} tries ({type(err).__name__}: "
            f"{detail}); with --use_cache the turns generated so far are kept: rerun to go "
            "on") from err
    if len(outputs) != len(instances):
        raise FireactError(f"the model server at {getattr(lm, 'base_url', '?')} answered "
                           f"{len(outputs)} of {len(instances)} prompts")
    return outputs


def _cached_generate(lm: LM, requests: Sequence[tuple[Any, dict]]) -> list[str]:
    """One batched ``generate_until``; with ``--use_cache``, turns already generated by an
    earlier run of the same model are read back from lm-eval's cache instead of being
    generated again."""
    db = getattr(getattr(lm, "cache_hook", None), "dbdict", None)
    if db is None:  # no --use_cache: nothing to look up or keep
        return _generate_until(lm, [Instance(request_type="generate_until", doc={},
                                             arguments=tuple(req), idx=0) for req in requests])
    kind = f"generate_until:{model_identity(lm)}"
    keys = [hash_args(kind, req) for req in requests]
    outputs: list[str | None] = [  # an empty entry (older caches kept failed replies) is a miss
        None if req[1].get("do_sample") else (db.get(key) or None)
        for key, req in zip(keys, requests, strict=True)
    ]
    missing = [i for i, out in enumerate(outputs) if out is None]
    if missing:
        instances = [
            Instance(request_type="generate_until", doc={}, arguments=tuple(requests[i]), idx=0)
            for i in missing
        ]
        for i, text in zip(missing, _generate_until(lm, instances), strict=True):
            outputs[i] = text
            # a failed reply (an API's null text) or an empty one is asked again next run
            if text and not requests[i][1].get("do_sample"):
                db[keys[i]] = text
    return outputs  # type: ignore[return-value]


def _context_limit(lm: LM, gen_kwargs: dict) -> int | None:
    """The prompt tokens a local backend (hf, vllm) takes before it cuts the context from
    the left: its ``max_length`` less the generation budget, as their ``generate_until``
    computes it.  API backends: unknown (the server says no)."""
    max_length = None if _is_api(lm) else getattr(lm, "max_length", None)
    if not isinstance(max_length, int):
        return None
    return max_length - int(gen_kwargs.get("max_gen_toks", getattr(lm, "max_gen_toks", 256)))


def _token_counter(lm: LM):
    """Counts with the backend's tokenizer; API backends without one get chars/4, flagged."""
    if getattr(lm, "tokenizer", None) is not None:
        return lambda context: len(lm.tok_encode(getattr(context, "prompt", context)))
    log.warning("model has no local tokenizer: prompt_tokens/gen_tokens are estimated as chars/4")
    return lambda context: len(str(getattr(context, "prompt", context))) // 4


def react_generate(self: LM, requests: list[Instance]) -> list[str]:
    """Run every requested rollout; one trajectory JSON string per request, in order."""
    def render_chat(prompt, steps, reflect=False):
        return self.apply_chat_template(render_messages(prompt, steps, reflect))

    episodes = []
    concurrency = 0
    pools: dict[str, list[str]] = {}  # noise=random pools: one snapshot per backend per run
    for req in requests:
        prompt, gen_kwargs, rollout = req.args
        settings = RolloutSettings(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in rollout.items() if k != "chat"})
        concurrency = max(concurrency, settings.concurrency)
        doc_key = str(req.doc.get("id", req.doc_id))
        episode = settings.episode(prompt, gen_kwargs, doc_key, pools)
        # each task renders its own way: a chat task in the run leaves a plain one plain
        episode.render = render_chat if rollout["chat"] else render_text
        episode.context_limit = _context_limit(self, gen_kwargs)
        episodes.append(episode)
    concurrency = concurrency or int(getattr(self, "_concurrent", 1) or 1)
    generate = functools.partial(_cached_generate, self)
    if _is_api(self) and concurrency > 1:
        # our workers are the concurrency: each sends its own request the plain way, not
        # through lm-eval's per-call asyncio loop
        saved, self._concurrent = self._concurrent, 1
        try:
            with _quiet_api_progress():
                trajectories = run_concurrently(episodes, generate, concurrency=concurrency,
                                                count_tokens=_token_counter(self))
        finally:
            self._concurrent = saved
    else:
        _warn_one_at_a_time(self, len(episodes))
        trajectories = run_episodes(episodes, generate, count_tokens=_token_counter(self))
    return [t.to_json() for t in trajectories]


@contextlib.contextmanager
def _quiet_api_progress():
    """lm-eval 0.4.13's API backends draw a "Requesting API" bar on every call, whatever
    ``disable_tqdm`` says; with a worker per trajectory that is hundreds of bars over ours."""
    from lm_eval.models import api_models

    original = api_models.tqdm
    api_models.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        api_models.tqdm = original


def _is_api(lm: LM) -> bool:
    """A backend whose requests are HTTP calls (lm-eval's TemplateAPI family)."""
    from lm_eval.models.api_models import TemplateAPI

    return isinstance(lm, TemplateAPI)


_WARNED: set[str] = set()


def _warn_one_at_a_time(lm: LM, live: int) -> None:
    """lm-eval's default ``--batch_size 1`` makes a local backend (hf, vllm) generate the
    live trajectories of a turn one at a time: several times slower, silently.  Say so
    once, with the flag to pass."""
    if live > 1 and getattr(lm, "batch_size", None) == 1 and not _is_api(lm) \
            and type(lm).__name__ not in _WARNED:
        _WARNED.add(type(lm).__name__)
        log.warning("--batch_size 1 (lm-eval's default) makes %s generate the %d live "
                    "trajectories of each turn one at a time; pass --batch_size auto or "
                    "--batch_size %d for several times the speed",
                    type(lm).__name__, live, min(live, 64))


if not hasattr(LM, REQUEST_TYPE):
    setattr(LM, REQUEST_TYPE, react_generate)


def _our_task_configs(task_manager: Any, names: Sequence[Any], seen: set[str],
                      others: list[str]):
    """The merged YAML + run config of each fireact task among ``names`` (tasks, groups,
    tags), read the way lm-eval will read it; the names of tasks not ours go to ``others``."""
    from fireact_eval.tasks import TASKS_DIR

    root = os.path.realpath(TASKS_DIR)
    for name in names:
        entry = task_manager.task_index.get(name) if isinstance(name, str) else None
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


ADVISING_LOGGERS = ("lm_eval.evaluator", "lm_eval.api.task")


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


def preflight(task_manager: Any, tasks: Any, model_args: Any = None) -> OurTasks:
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
        check_metadata_keys(cfg.get("metadata") or {}, model_args, others)
        RolloutSettings.from_metadata(cfg.get("metadata"))
        if callable(loader := cfg.get("custom_dataset")):  # the questions load, or say why not
            loader(**(cfg.get("metadata") or {}))
    return OurTasks(frozenset(str(cfg.get("task")) for cfg in configs),
                    bool(configs) and not others)
