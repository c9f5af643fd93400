"""The lm-eval glue, all of it: a task class that asks for rollouts, and the
``react_generate`` request type that runs them on any lm-eval backend.

lm-eval calls each request type once with every instance, so ``react_generate`` gets all
docs of all our tasks at once and hands them to the engine, which advances them together
with one ``generate_until`` per turn.  Everything it calls is plain Python.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM, hash_args
from lm_eval.api.task import ConfigurableTask

from fireact_eval.errors import FireactError
from fireact_eval.perturb import make_perturbation, validate_noise
from fireact_eval.prompts import build_prompt, check_prompt
from fireact_eval.rollout import (
    DEFAULT_MAX_TURNS,
    Episode,
    never_reflect,
    reflect_before,
    run_episodes,
)
from fireact_eval.scoring import COST_METRICS
from fireact_eval.tools import make_search, response_pool
from fireact_eval.transcript import render_messages, render_text

log = logging.getLogger(__name__)
REQUEST_TYPE = "react_generate"
SINGLE_TURN_METHODS = ("io", "cot")  # one finish[...], no tools
DEFAULT_REFLECT_AT = (6, 10)  # FireAct's Reflexion turns


def _integer(name: str, value: Any) -> int:
    """An integer setting: ``2`` and ``"2"`` are, ``2.7``, ``"two"`` and ``True`` are not
    (``int()`` would silently floor ``2.7``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise FireactError(f"{name} must be an integer, got {value!r}")


@dataclass(frozen=True)
class RolloutSettings:
    """What ``--metadata`` may set for a rollout, checked before any model call."""

    max_turns: int = DEFAULT_MAX_TURNS
    search: str = "wiki"  # HotpotQA's Wikipedia; fireact_demo sets "local"
    method: str = "react"
    shots: str = "fewshot"
    format: str = "plain"
    family: str = "qa"  # which few-shot examples: tasks/prompts/{method}_{family}.txt
    noise: str = "off"
    noise_p: float = 0.5
    noise_seed: int = 0
    reflect_at: tuple[int, ...] = DEFAULT_REFLECT_AT

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> RolloutSettings:
        meta = dict(metadata or {})
        max_turns = _integer("max_turns", meta.get("max_turns", DEFAULT_MAX_TURNS))
        noise_seed = _integer("noise_seed", meta.get("noise_seed", 0))
        try:
            noise_p = float(meta.get("noise_p", 0.5))
        except (TypeError, ValueError):
            raise FireactError(f"noise_p must be a number, got {meta['noise_p']!r}") from None
        reflect_at = meta.get("reflect_at", DEFAULT_REFLECT_AT)
        reflect_at = tuple(_integer("reflect_at", t) for t in (
            reflect_at if isinstance(reflect_at, (list, tuple)) else [reflect_at]))
        if max_turns < 1:
            raise FireactError(f"max_turns must be at least 1, got {max_turns}")
        settings = cls(
            max_turns=max_turns, search=str(meta.get("search", cls.search)),
            method=str(meta.get("method", cls.method)), shots=str(meta.get("shots", cls.shots)),
            format=str(meta.get("format", cls.format)), family=str(meta.get("family", cls.family)),
            noise=str(meta.get("noise", cls.noise)), noise_p=noise_p, noise_seed=noise_seed,
            reflect_at=reflect_at,
        )
        check_prompt(settings.method, settings.shots, settings.format, settings.family)
        validate_noise(settings.noise, settings.noise_p)
        if settings.method not in SINGLE_TURN_METHODS:  # they call no tool: need no index
            make_search(settings.search)  # fail now (bad spec, no corpus), not mid-run
        return settings

    def as_metadata(self) -> dict[str, Any]:
        """Every setting as a JSON-ready value, as result files record it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def episode(self, prompt: str, gen_kwargs: dict, doc_key: str, pools: dict) -> Episode:
        """The rollout of one doc: single-turn methods get no tools and one turn."""
        if self.method in SINGLE_TURN_METHODS:
            return Episode(prompt, tools={}, max_turns=1, gen_kwargs=gen_kwargs)
        search = make_search(self.search)
        if self.noise == "random" and self.search not in pools:
            # a snapshot before any call (a cache's pool grows); an index's is read lazily
            pools[self.search] = response_pool(search)
        return Episode(
            prompt,
            tools={"search": search},
            max_turns=self.max_turns,
            gen_kwargs=gen_kwargs,
            observe=make_perturbation(self.noise, self.noise_p, self.noise_seed, doc_key,
                                      pools.get(self.search, ())),
            reflect=reflect_before(self.reflect_at) if self.method == "reflexion"
            else never_reflect,
        )


class ReactTask(ConfigurableTask):
    """A YAML task (``class: !function fireact_eval.harness.ReactTask``) whose one request
    per doc is a whole ReAct rollout; scoring stays in the YAML's ``process_results``."""

    def __init__(self, config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        self.settings = RolloutSettings.from_metadata(config.get("metadata"))
        # The result file records every setting the run used, defaults included.
        config["metadata"] = {**(config.get("metadata") or {}), **self.settings.as_metadata()}
        # Every task reports the cost of its rollouts; YAMLs list only their quality metrics.
        listed = {m["metric"] for m in config.get("metric_list") or []}
        config["metric_list"] = [*(config.get("metric_list") or []), *(
            {"metric": name, "aggregation": "mean", "higher_is_better": name == "finished"}
            for name in (*COST_METRICS, "finished") if name not in listed
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


def _cached_generate(lm: LM, requests: Sequence[tuple[Any, dict]]) -> list[str]:
    """One batched ``generate_until``; with ``--use_cache``, turns already generated by an
    earlier run of the same model are read back from lm-eval's cache instead of being
    generated again."""
    db = getattr(getattr(lm, "cache_hook", None), "dbdict", None)
    if db is None:  # no --use_cache: nothing to look up or keep
        return lm.generate_until([Instance(request_type="generate_until", doc={},
                                           arguments=tuple(req), idx=0) for req in requests],
                                 disable_tqdm=True)
    kind = f"generate_until:{model_identity(lm)}"
    keys = [hash_args(kind, req) for req in requests]
    outputs: list[str | None] = [
        None if req[1].get("do_sample") else db.get(key)
        for key, req in zip(keys, requests, strict=True)
    ]
    missing = [i for i, out in enumerate(outputs) if out is None]
    if missing:
        instances = [
            Instance(request_type="generate_until", doc={}, arguments=tuple(requests[i]), idx=0)
            for i in missing
        ]
        for i, text in zip(missing, lm.generate_until(instances, disable_tqdm=True), strict=True):
            outputs[i] = text
            if not requests[i][1].get("do_sample"):
                db[keys[i]] = text
    return outputs  # type: ignore[return-value]


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
    pools: dict[str, list[str]] = {}  # noise=random pools: one snapshot per backend per run
    for req in requests:
        prompt, gen_kwargs, rollout = req.args
        fields = {k: v for k, v in rollout.items() if k != "chat"}
        fields["reflect_at"] = tuple(fields["reflect_at"])
        doc_key = str(req.doc.get("id", req.doc_id))
        episode = RolloutSettings(**fields).episode(prompt, gen_kwargs, doc_key, pools)
        # each task renders its own way: a chat task in the run leaves a plain one plain
        episode.render = render_chat if rollout["chat"] else render_text
        episodes.append(episode)
    trajectories = run_episodes(
        episodes,
        generate=lambda reqs: _cached_generate(self, reqs),
        count_tokens=_token_counter(self),
    )
    return [t.to_json() for t in trajectories]


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


# Other keys a fireact task's metadata may hold: read by the question loaders (qa_data), or
# put there by lm-eval itself.
DATA_KEYS = ("data_dir", "questions")
LM_EVAL_KEYS = ("version", "config_source")


def check_metadata_keys(metadata: Mapping[str, Any], model_args: Any = None,
                        others: Sequence[str] = ()) -> None:
    """Refuse a key nobody reads (``serach=bing`` would run with the default search).
    lm-eval merges the model args into the metadata, so those keys are allowed too; in a run
    with other tasks (``others``), whose metadata lm-eval shares with ours, it is a warning."""
    from lm_eval.utils import simple_parse_args_string

    if isinstance(model_args, str):
        model_args = simple_parse_args_string(model_args)
    valid = [f.name for f in fields(RolloutSettings)] + [*DATA_KEYS, *LM_EVAL_KEYS]
    unknown = sorted(set(metadata) - set(valid) - set(model_args or {}))
    if unknown:
        message = (f"unknown --metadata key(s): {', '.join(unknown)}; valid keys: "
                   f"{', '.join(valid[:-len(LM_EVAL_KEYS)])}")
        if others:
            log.warning("%s (or keys of the other tasks: %s)", message, ", ".join(others))
            return
        raise FireactError(message)


def preflight(task_manager: Any, tasks: Any, model_args: Any = None) -> None:
    """Check every fireact task's settings and build its search tool *before* lm-eval loads
    the model (it loads the model first, tasks after): a typo or a missing Wikipedia index
    costs seconds, not a model load.  Called by the start-up hook around ``simple_evaluate``."""
    if task_manager is None or tasks is None:
        return
    names = tasks if isinstance(tasks, (list, tuple)) else [tasks]
    others: list[str] = []
    configs = list(_our_task_configs(task_manager, names, set(), others))
    for cfg in configs:
        check_metadata_keys(cfg.get("metadata") or {}, model_args, others)
        RolloutSettings.from_metadata(cfg.get("metadata"))
        if callable(loader := cfg.get("custom_dataset")):  # the questions load, or say why not
            loader(**(cfg.get("metadata") or {}))
