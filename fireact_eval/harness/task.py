"""``ReactTask``: a YAML task (``class: !function fireact_eval.harness.task.ReactTask``)
whose one request per doc is a whole ReAct rollout, run by ``backend.react_generate``."""

from __future__ import annotations

from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.task import ConfigurableTask

from fireact_eval.harness.backend import REQUEST_TYPE, react_generate
from fireact_eval.harness.compat import metric_entry, new_instance
from fireact_eval.prompts import build_prompt
from fireact_eval.rollout_settings import RolloutRequest, RolloutSettings
from fireact_eval.scoring import DATASET_SCORERS, higher_is_better, repeat_metrics


class ReactTask(ConfigurableTask):
    """A YAML task (``class: !function fireact_eval.harness.task.ReactTask``) whose one request
    per doc is a whole ReAct rollout, scored by the YAML's ``process_results`` or, where it
    names none, its dataset's scorer (``scoring.DATASET_SCORERS``)."""

    def __init__(self, config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        self.settings = RolloutSettings.from_metadata(config.get("metadata"))
        # The result file records every setting the run used, defaults included.
        config["metadata"] = {**(config.get("metadata") or {}), **self.settings.as_metadata()}
        dataset = str(config["metadata"].get("dataset", ""))
        if config.get("process_results") is None and dataset in DATASET_SCORERS:
            config["process_results"] = DATASET_SCORERS[dataset]
        # The metric list is what the task's scorer declares (``scoring.scorer``): quality,
        # outcome and cost metrics, each a mean with its direction; a YAML lists none
        declared = getattr(config.get("process_results"), "metrics", ())
        if self.settings.repeats > 1 and declared:
            declared = (*declared, *repeat_metrics(declared[0]))
        listed = {m["metric"] for m in config.get("metric_list") or []}
        config["metric_list"] = [*(config.get("metric_list") or []), *(
            {"metric": metric_entry(name), "aggregation": "mean",
             "higher_is_better": higher_is_better(name)}
            for name in declared if name not in listed
        )]
        super().__init__(config=config)

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> Instance:
        s = self.settings
        # format=tools renders through the chat template itself (with the tool schemas)
        chat = s.format != "tools" and (bool(kwargs.pop("apply_chat_template", False))
                                        or s.format == "chat")
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        prompt = build_prompt(doc["question"], s.method, s.shots,
                              "chat" if chat else s.format, s.family)
        rollout = RolloutRequest(s, chat)
        gen_kwargs = dict(self.config.generation_kwargs or {})
        meta = kwargs.get("metadata") or (self.config.task, kwargs.get("doc_id"), 1)
        return new_instance(
            str(meta[0]),
            int(kwargs.pop("doc_id", meta[1]) or 0),
            request_type=REQUEST_TYPE,
            doc=doc,
            arguments=(prompt, gen_kwargs, rollout),
            idx=0,
            **kwargs,
        )



# lm-eval calls ``getattr(lm, request_type)(instances)``: every backend gets the method
if not hasattr(LM, REQUEST_TYPE):
    setattr(LM, REQUEST_TYPE, react_generate)
