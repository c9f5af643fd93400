"""Every part of lm-eval that is not its documented API and that we rely on, named once:
when an lm-eval upgrade changes one, this file fails and says which, before any run
misbehaves.  (lm-eval's public surface we use, ``simple_evaluate``, ``TaskManager``,
``ConfigurableTask``, ``Instance``, ``--use_cache``, the results and samples files, is
exercised by the end-to-end tests.)"""

from __future__ import annotations

import inspect

import lm_eval
import lm_eval.api.model
import lm_eval.evaluator
import lm_eval.models.api_models
import lm_eval.tasks

from fireact_eval.tasks import TASKS_DIR

# The lm-eval versions whose private surface this file has checked (the main CI run: 0.4.13;
# the canary, .ci/canary: 0.5's preview).  Another one is refused here in one line.
CHECKED = ("0.4.13", "0.5.0.dev1")
IS_05 = lm_eval.__version__.startswith("0.5.")


def test_the_installed_lm_eval_is_one_whose_surface_we_checked():
    assert lm_eval.__version__ in CHECKED, (
        f"lm-eval {lm_eval.__version__} is not one whose private surface fireact-eval has "
        f"checked ({', '.join(CHECKED)}): run this file against it and extend harness/compat.py")


def test_each_named_difference_between_the_versions_is_as_written():
    """harness/compat.py: 0.5.0.dev1 renamed ``TaskManager.task_index`` to ``_task_index``,
    made ``Instance`` take ``task_name`` and a keyword ``doc_id``, and checks a registered
    metric's output type (``f1`` is registered for multiple choice there): our metrics go as
    callables named after them; 0.4.13 has ``task_index``, no such fields, and keys a
    ``process_results`` task's metrics by name."""
    from lm_eval.api.instance import Instance

    from fireact_eval.harness import compat

    manager = lm_eval.tasks.TaskManager(include_defaults=False, include_path=TASKS_DIR)
    assert hasattr(manager, "_task_index" if IS_05 else "task_index")
    assert "fireact_demo" in compat.task_index(manager)
    params = inspect.signature(Instance).parameters
    assert (params["doc_id"].kind is inspect.Parameter.KEYWORD_ONLY) == IS_05
    assert params["task_name"].default is (inspect.Parameter.empty if IS_05 else None)
    made = compat.new_instance("fireact_demo", 3, request_type="generate_until", doc={},
                               arguments=("x", {}), idx=0)
    # 0.4.13 sets the two from ``metadata`` (ReactTask passes lm-eval's there)
    assert (made.task_name, made.doc_id) == (("fireact_demo", 3) if IS_05 else (None, None))
    entry = compat.metric_entry("f1")
    assert (callable(entry) and entry.__name__ == "f1") if IS_05 else entry == "f1"
    if IS_05:
        from lm_eval.api.registry import metric_registry

        assert "generate_until" not in metric_registry.get("f1").output_type


def test_task_manager_init_takes_verbosity_and_include_path_first():
    """_autoload wraps ``TaskManager.__init__(self, verbosity, include_path, ...)`` to add our
    task folder, and sets ``include_defaults`` for FIREACT_EVAL_TASKS_ONLY."""
    init = lm_eval.tasks.TaskManager.__init__
    params = list(inspect.signature(getattr(init, "__wrapped__", init)).parameters)
    assert params[:3] == ["self", "verbosity", "include_path"], params
    assert "include_defaults" in params and "metadata" in params, params


def test_task_manager_loads_a_full_config_through_its_factory():
    """The preflight reads each task's merged YAML + run config the way lm-eval will:
    ``TaskManager._factory._load_full_config(entry, overrides)`` and ``task_index`` entries
    with ``kind``, ``yaml_path`` and ``tags``."""
    from fireact_eval.harness.compat import task_index

    manager = lm_eval.tasks.TaskManager(include_defaults=False, include_path=TASKS_DIR)
    entry = task_index(manager)["fireact_demo"]
    assert entry.kind.name in ("TASK", "PY_TASK") and entry.yaml_path and hasattr(entry, "tags")
    config = manager._factory._load_full_config(entry, None)
    assert config["task"] == "fireact_demo" and "metadata" in config


def test_api_models_keep_their_concurrency_and_progress_bar_where_we_set_them():
    """react_generate sets ``TemplateAPI._concurrent`` to 1 while our workers are the
    concurrency, and swaps ``api_models.tqdm`` for a disabled one (lm-eval 0.4.13 draws a
    bar on every call)."""
    source = inspect.getsource(lm_eval.models.api_models.TemplateAPI.__init__)
    assert "self._concurrent" in source
    assert callable(lm_eval.models.api_models.tqdm)
    assert "tqdm(" in inspect.getsource(lm_eval.models.api_models.TemplateAPI.generate_until)
    assert "max_retries" in inspect.signature(
        lm_eval.models.api_models.TemplateAPI.__init__).parameters


def test_the_request_cache_is_a_dict_on_cache_hook():
    """_cached_generate reads and writes lm-eval's ``--use_cache`` store directly,
    ``lm.cache_hook.dbdict``, keyed by ``lm_eval.api.model.hash_args``."""
    assert callable(lm_eval.api.model.hash_args)
    source = inspect.getsource(lm_eval.api.model.CachingLM)
    assert "self.dbdict" in source and "cache_hook" in source
    assert "dbdict" in inspect.getsource(lm_eval.api.model.CacheHook)


def test_our_request_type_is_a_method_lm_eval_calls_by_name():
    """ReactTask's requests have ``request_type="react_generate"``; lm-eval calls
    ``getattr(lm, reqtype)(requests)``, so the method is set on ``LM`` when lm-eval loads our
    task module (imported here: which test module imported it first depends on the worker)."""
    import fireact_eval.harness.task  # noqa: F401  (the import sets the method)
    from fireact_eval.harness.backend import REQUEST_TYPE

    assert hasattr(lm_eval.api.model.LM, REQUEST_TYPE)
    assert "getattr(lm, reqtype)" in inspect.getsource(lm_eval.evaluator.evaluate)


def test_lm_evals_advice_we_drop_still_reads_as_we_match_it():
    """_AdviceNotForUs matches two warnings by their words: the chat-template advice in
    ``simple_evaluate`` and the custom-dataset line in ``Task.download``."""
    import lm_eval.api.task

    assert "chat template is not applied" in " ".join(
        inspect.getsource(lm_eval.evaluator.simple_evaluate).split())
    assert "Custom kwargs can be passed to `--metadata`" in inspect.getsource(
        lm_eval.api.task.ConfigurableTask.download)
    from fireact_eval.harness.preflight import ADVISING_LOGGERS

    assert lm_eval.api.task.ConfigurableTask.download.__module__ in ADVISING_LOGGERS


def test_per_request_seeds_reach_the_backends_that_take_them():
    """``backend.request_seed`` reads ``TemplateAPI._seed`` (lm-eval sends it with every
    request, and a ``seed`` in the request's gen_kwargs overrides it in the payload) and the
    vllm backend's ``model_args["seed"]`` (its generate_until builds ``SamplingParams(**kwargs)``
    per request, ungrouped), by the class name ``VLLM``."""
    import pathlib

    from fireact_eval.harness.backend import PER_REQUEST_SEED_BACKENDS

    assert "self._seed" in inspect.getsource(lm_eval.models.api_models.TemplateAPI.__init__)
    import lm_eval.models.openai_completions as completions

    payload = inspect.getsource(completions.LocalCompletionsAPI._create_payload)
    assert payload.index('"seed": seed') < payload.index("**gen_kwargs")
    vllm = (pathlib.Path(lm_eval.models.__file__).parent / "vllm_causallms.py").read_text()
    assert "class VLLM(" in vllm and PER_REQUEST_SEED_BACKENDS == ("VLLM",)
    assert '"seed": int(seed)' in vllm and "SamplingParams(max_tokens=max_gen_toks" in vllm
