"""``lm_eval`` end to end through its CLI, with the tiny agent on real backends."""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys

import pytest
from fast_python import python as fast_python

from fireact_eval.errors import FireactError
from fireact_eval.rollout_settings import RolloutSettings
from fireact_eval.tasks import TASKS_DIR
from fireact_eval.trajectory import Trajectory

from conftest import FIREACT_DATA, read_outputs, run_lm_eval

DEMO = ("--tasks", "fireact_demo", "--device", "cpu", "--batch_size", "8")


def hf(model_dir) -> tuple[str, ...]:
    return ("--model", "hf", "--model_args", f"pretrained={model_dir}")


def python(code: str, **env: str) -> str:
    return subprocess.run([fast_python(), "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **env}).stdout


def test_tasks_are_registered_without_include_path():
    code = "from lm_eval.tasks import TaskManager; print(sorted(TaskManager().all_tasks))"
    everything = python(code)
    assert "'fireact_hotpotqa'" in everything and "'hellaswag'" in everything
    ours = ast.literal_eval(python(code, FIREACT_EVAL_TASKS_ONLY="1"))
    assert ours and all(name.startswith("fireact") for name in ours)  # our tasks only
    code = "from lm_eval.tasks import TaskManager as T; print(T(include_defaults=False).all_tasks)"
    assert "fireact" not in python(code, FIREACT_EVAL_NO_AUTOLOAD="1")
    assert "fireact" not in python(code)  # lm-eval's documented meaning, hook or not
    tasks_dir = subprocess.run([fast_python(), "-m", "fireact_eval.cli", "tasks-dir"],
                               capture_output=True, text=True,
                               check=True).stdout.strip()
    code = (f"from lm_eval.tasks import TaskManager as T; "
            f"print(T(include_path={tasks_dir!r}, include_defaults=False).all_tasks)")
    assert "'fireact_demo'" in python(code, FIREACT_EVAL_NO_AUTOLOAD="1")
    listing = run_lm_eval("ls", "tasks").stdout
    assert "fireact_hotpotqa" in listing and "fireact_demo" in listing


def test_a_users_own_task_manager_and_excepthook_are_left_as_lm_eval_made_them(tmp_path):
    """``TaskManager(include_defaults=False, include_path=MINE)`` indexes MINE only, and no
    process that imports lm-eval without running our tasks has its excepthook changed
    (lm-eval's own test_include_defaults_false_with_custom_path failed with the hook on)."""
    (tmp_path / "mine.yaml").write_text("task: my_own_task\ndataset_path: json\n"
                                       "output_type: generate_until\ndoc_to_text: q\n"
                                       "doc_to_target: a\n")
    code = ("import sys, lm_eval.evaluator\nfrom lm_eval.tasks import TaskManager as T\n"
            f"print(sorted(T(include_defaults=False, include_path={str(tmp_path)!r}).all_tasks))\n"
            "print(sys.excepthook is sys.__excepthook__)\n")
    assert python(code).split("\n")[:2] == ["['my_own_task']", "True"]
    ours_asked = code.replace("include_defaults=False", "include_defaults=True")
    assert "'fireact_demo'" in python(ours_asked)  # beside lm-eval's own, as before


def test_autoload_hook_costs_nothing_to_other_processes():
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True,
                           text=True, check=True).stderr.splitlines()
    names = [line.rstrip() for line in trace]
    start = next(i for i, name in enumerate(names) if name.endswith("  fireact_eval"))
    end = next(i for i, name in enumerate(names) if name.endswith("fireact_eval.harness.autoload"))
    imported = [line.split("|")[-1].strip() for line in trace[start : end + 1]]
    # no other module, no lm_eval
    assert imported == ["fireact_eval", "fireact_eval.harness", "fireact_eval.harness.autoload"]
    assert int(trace[end].split("|")[1]) < 20_000  # microseconds, even on a loaded CI machine


def test_tiny_agent_end_to_end(tiny_model, tmp_path):
    """(``--metadata key=value`` as written, where lm-eval 0.4.13 parses it; every other run
    and the docs give the JSON form, which every supported version parses.)"""
    import lm_eval

    proc = run_lm_eval(*hf(tiny_model), *DEMO, "--limit", "8", "--metadata", "shots=zeroshot",
                       "--output_path", str(tmp_path), "--log_samples",
                       metadata_as_given=lm_eval.__version__.startswith("0.4."))
    assert "exact_match" in proc.stdout and "invalid_actions" in proc.stdout  # lm-eval's table
    results, samples = read_outputs(tmp_path, "fireact_demo")
    assert results["exact_match,none"] >= 0.75
    assert results["finished,none"] == 1.0
    assert results["tool_calls,none"] == 2.0 and results["turns,none"] == 3.0
    assert results["prompt_tokens,none"] > results["gen_tokens,none"] > 0
    assert len(samples) == 8
    for sample in samples:
        traj = Trajectory.from_json(sample["resps"][0][0])  # one JSON trajectory per doc
        assert traj.steps[0].action == "search"
        assert traj.steps[0].observation.split(":")[0] in traj.steps[0].argument  # real passage
        assert sample["exact_match"] == float(traj.answer == sample["doc"]["answer"])


def test_chat_backend_path(tiny_model, tmp_path):
    run_lm_eval(*hf(tiny_model), *DEMO, "--limit", "8", "--metadata", "shots=zeroshot",
                "--apply_chat_template", "--output_path", str(tmp_path), "--log_samples")
    results, _ = read_outputs(tmp_path, "fireact_demo")
    assert results["exact_match,none"] >= 0.75 and results["finished,none"] == 1.0


def test_max_turns_from_metadata(tiny_model, tmp_path):
    run_lm_eval(*hf(tiny_model), *DEMO, "--limit", "4", "--metadata", "shots=zeroshot",
                "max_turns=1", "--output_path", str(tmp_path), "--log_samples")
    results, _ = read_outputs(tmp_path, "fireact_demo")
    assert results["turns,none"] == 1.0 and results["finished,none"] == 0.0
    assert results["exact_match,none"] == 0.0


def test_untrained_model_runs_out_of_turns_without_crashing(untrained_model, tmp_path):
    run_lm_eval(*hf(untrained_model), *DEMO, "--limit", "2", "--metadata", "shots=zeroshot",
                "max_turns=3", "--gen_kwargs", "max_gen_toks=24", "--output_path", str(tmp_path),
                "--log_samples")
    results, samples = read_outputs(tmp_path, "fireact_demo")
    assert results["finished,none"] == 0.0 and results["turns,none"] == 3.0
    assert results["invalid_actions,none"] == 3.0
    first_step = Trajectory.from_json(samples[0]["resps"][0][0]).steps[0]
    assert "Valid actions are" in first_step.observation


def test_local_completions_batches_turns_and_use_cache_skips_them(tiny_model, tmp_path):
    from openai_server import CompletionServer

    server = CompletionServer(str(tiny_model))
    args = ("--model", "local-completions", "--model_args",
            f"base_url={server.base_url},model=tiny,tokenizer_backend=huggingface,"
            f"tokenizer={tiny_model},tokenized_requests=False,max_retries=1",
            *DEMO, "--limit", "4", "--metadata", "shots=zeroshot",
            "--use_cache", str(tmp_path / "cache"), "--log_samples")
    try:
        run_lm_eval(*args, "--output_path", str(tmp_path / "first"))
        assert server.requests == 3  # one batched request per turn, 4 docs, 3 turns
        assert server.prompts == 12
        run_lm_eval(*args, "--output_path", str(tmp_path / "again"))
        assert server.requests == 3  # every turn came from the cache
    finally:
        server.close()
    first, first_samples = read_outputs(tmp_path / "first", "fireact_demo")
    again, again_samples = read_outputs(tmp_path / "again", "fireact_demo")
    assert first["exact_match,none"] >= 0.75
    assert first["exact_match,none"] == again["exact_match,none"]
    strip = [{**json.loads(s["resps"][0][0]), "seconds": 0} for s in first_samples]
    assert strip == [{**json.loads(s["resps"][0][0]), "seconds": 0} for s in again_samples]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"search": "bing"}, "valid backends: wiki"),
        ({"max_turns": "zero"}, "max_turns must be an integer"),
        ({"max_turns": 2.7}, "max_turns must be an integer, got 2.7"),
        ({"max_turns": True}, "max_turns must be an integer"),
        ({"reflect_at": [6, "x"]}, "reflect_at must be an integer"),
        ({"noise_p": "half"}, "noise_p must be a number"),
        ({"max_turns": 0}, "max_turns must be from 1 to 100"),
        ({"max_turns": 100000}, r"max_turns must be from 1 to 100 \(FireAct: 11\), got 100000"),
        ({"reflect_at": [0, 6]}, "reflect_at turns start at 1"),
        ({"shots": "twoshot"}, "valid values: fewshot, zeroshot"),
    ],
)
def test_bad_metadata_is_one_clear_error(metadata, message):
    with pytest.raises(FireactError, match=message):
        RolloutSettings.from_metadata(metadata)


def test_bad_metadata_fails_the_run_before_any_model_call(tmp_path):
    """Before the model loads: no model needed (the path is not there)."""
    proc = run_lm_eval(*hf(tmp_path / "no-model"), *DEMO, "--limit", "1", "--metadata",
                       "search=bing", check=False)
    assert proc.returncode != 0
    assert "unknown search spec 'bing'; valid backends: wiki" in proc.stderr


def test_no_wiki_index_offline_fails_before_the_model_is_loaded(tmp_path, monkeypatch):
    """The default search of fireact_hotpotqa is wiki: with no network and no index the run
    stops with the ways out, before lm-eval loads the (here nonexistent) model."""
    monkeypatch.setenv("FIREACT_EVAL_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who?", "answer": "Me"}\n')
    proc = run_lm_eval("--model", "hf", "--model_args", f"pretrained={tmp_path}/no-model",
                       "--tasks", "fireact_hotpotqa_cot,fireact_hotpotqa", "--limit", "1",
                       "--metadata", f"questions={questions}", check=False)
    assert proc.returncode != 0
    assert "'mteb/hotpotqa' could not be loaded" in proc.stderr and "Ways out" in proc.stderr
    assert "Initializing hf model" not in proc.stderr and "Traceback" not in proc.stderr


def test_missing_data_dir_names_the_file(tmp_path):
    proc = run_lm_eval(*hf(tmp_path / "no-model"), "--tasks", "fireact_hotpotqa", "--limit", "1",
                       "--metadata", f"data_dir={tmp_path}", "search=local", check=False)
    assert proc.returncode != 0
    assert f"data file not found: {tmp_path}/hotpotqa/dev.json" in proc.stderr


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_hotpotqa_from_fireact_files(tiny_model, tmp_path):
    run_lm_eval(*hf(tiny_model), "--tasks", "fireact_hotpotqa", "--device", "cpu", "--limit", "2",
                "--metadata", f"data_dir={FIREACT_DATA}", "shots=zeroshot", "max_turns=2",
                "search=local",
                "--gen_kwargs", "max_gen_toks=48", "--output_path", str(tmp_path), "--log_samples")
    results, samples = read_outputs(tmp_path, "fireact_hotpotqa")
    assert len(samples) == 2 and 1.0 <= results["turns,none"] <= 2.0


def test_preflight_checks_our_tasks_in_groups_and_lists_and_skips_others(tmp_path):
    """What runs before lm-eval loads the model: every fireact task named directly or
    through a group gets its settings checked, its search tool built, its questions loaded."""
    from lm_eval.tasks import TaskManager

    from fireact_eval.harness.preflight import preflight

    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who?", "answer": "Me"}\n')
    manager = TaskManager(include_defaults=False, include_path=TASKS_DIR,
                          metadata={"search": "bing", "questions": str(questions)})
    with pytest.raises(FireactError, match="unknown search spec 'bing'"):
        preflight(manager, ["fireact"])  # the group: its four ReAct tasks
    with pytest.raises(FireactError, match="unknown search spec 'bing'"):
        preflight(manager, "fireact_demo_noise_none")
    preflight(manager, ["fireact_hotpotqa_cot", "not_a_fireact_task"])  # no tool, not ours
    preflight(None, ["fireact"])  # no task manager yet: lm-eval checks later, as before


@pytest.mark.parametrize(("metadata", "message"), [
    ({"serach": "bing"}, "unknown --metadata key(s): serach; valid keys: method, shots, format,"),
    ({"max_turn": "1"}, "unknown --metadata key(s): max_turn;"),
    ({"max_turns": 2.7}, "max_turns must be an integer, got 2.7"),
])
def test_bad_metadata_is_refused_by_the_preflight(metadata, message):
    """What the start-up hook runs before lm-eval loads a model, in process on lm-eval's own
    TaskManager (the exit path through ``lm_eval``'s CLI: the test below)."""
    from lm_eval.tasks import TaskManager

    from fireact_eval.harness.preflight import preflight

    manager = TaskManager(include_defaults=False, include_path=TASKS_DIR, metadata=metadata)
    with pytest.raises(FireactError, match=None) as err:
        preflight(manager, ["fireact_demo"], "pretrained=/no/model")
    assert message in str(err.value)


@pytest.mark.parametrize(("metadata", "message"), [
    ("serach=bing", "unknown --metadata key(s): serach; valid keys: method, shots, format,"),
])
def test_bad_metadata_is_one_line_before_the_model_is_loaded(tmp_path, metadata, message):
    proc = run_lm_eval("--model", "hf", "--model_args", f"pretrained={tmp_path}/no-model",
                       "--tasks", "fireact_demo", "--limit", "1", "--metadata", metadata,
                       check=False)
    assert proc.returncode == 1
    assert f"fireact-eval: error: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr and "Initializing hf model" not in proc.stderr


def test_model_args_and_data_keys_are_valid_metadata():
    from fireact_eval.harness.preflight import check_metadata_keys

    check_metadata_keys({"pretrained": "x", "dtype": "bf16", "data_dir": "d", "version": 1,
                         "search": "local"}, "pretrained=x,dtype=bf16")
    with pytest.raises(FireactError, match="unknown --metadata key"):
        check_metadata_keys({"pretrained": "x"}, None)
    check_metadata_keys({"max_seq_lengths": 4}, None, others=["ruler"])  # theirs, maybe: warn


def test_use_cache_never_replays_another_models_turns(tiny_model, untrained_model, tmp_path):
    """One cache file, two models: the untrained one must not score with the trained one's
    cached turns (it did: EM 1.0 instead of 0.0)."""
    cache = str(tmp_path / "cache")
    common = (*DEMO, "--limit", "2", "--metadata", "shots=zeroshot", "max_turns=3",
              "--use_cache", cache, "--log_samples")
    run_lm_eval(*hf(tiny_model), *common, "--output_path", str(tmp_path / "trained"))
    run_lm_eval(*hf(untrained_model), *common, "--output_path", str(tmp_path / "untrained"))
    trained, _ = read_outputs(tmp_path / "trained", "fireact_demo")
    untrained, _ = read_outputs(tmp_path / "untrained", "fireact_demo")
    assert trained["exact_match,none"] > 0.0 and untrained["exact_match,none"] == 0.0


def test_no_hub_and_no_data_dir_is_one_line_before_the_model_is_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty"))
    proc = run_lm_eval("--model", "hf", "--model_args", f"pretrained={tmp_path}/no-model",
                       "--tasks", "fireact_bamboogle", "--limit", "1", "--metadata",
                       "search=local", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert ("fireact-eval: error: could not load chiayewken/bamboogle from the Hugging Face "
            "Hub") in proc.stderr and "data_dir=DIR with FireAct's files" in proc.stderr
    assert "Initializing hf model" not in proc.stderr


def test_no_chat_template_advice_for_our_own_format_choice(tiny_model, tmp_path):
    """lm-eval advises --apply_chat_template for any "instruct" model; our tasks choose their
    format (plain/alpaca/chat) themselves, so a run of only fireact tasks does not repeat it."""
    # a path of 54-78 characters puts lm-eval's line break inside the advice's phrase (the
    # offline SmolLM2 under root is 54): the check reads the text with whitespace normalised
    named = tmp_path / "tiny-instruct"
    named = named.with_name(named.name + "x" * max(0, 66 - len(str(named))))
    named.symlink_to(tiny_model, target_is_directory=True)
    proc = run_lm_eval("--model", "hf", "--model_args", f"pretrained={named}", "--tasks",
                       "fireact_demo", "--limit", "1", "--metadata", "max_turns=1",
                       "shots=zeroshot", "--gen_kwargs", "max_gen_toks=8")
    said = " ".join(proc.stderr.split())
    assert "chat template is not applied" not in said and "Custom kwargs" not in said


@pytest.mark.parametrize("length", range(20, 200, 7))
def test_the_chat_template_advice_is_dropped_however_lm_eval_wraps_it(length):
    """The advice as lm-eval 0.4.13 words and wraps it (``wrap_text``, 140 columns)."""
    from lm_eval.utils import wrap_text

    from fireact_eval.harness.preflight import OurTasks, _AdviceNotForUs

    path = "/m/" + "x" * (length - 12) + "-instruct"
    advice = wrap_text(f"""pretrained={path} appears to be an
                instruct or chat variant but chat template is not applied.
                Recommend setting `apply_chat_template` (optionally `fewshot_as_multiturn`).""")
    record = logging.LogRecord("lm_eval.evaluator", logging.WARNING, "", 0, advice, None, None)
    assert not _AdviceNotForUs(OurTasks(frozenset({"fireact_demo"}), True)).filter(record)
    assert _AdviceNotForUs(OurTasks(frozenset({"fireact_demo"}), False)).filter(record)
    for task, kept in (("fireact_demo", False), ("ruler_niah", True)):  # ours only
        kwargs = logging.LogRecord("lm_eval.api.task", logging.WARNING, "", 0,
                                   f"{task}: Custom kwargs can be passed to `--metadata` in "
                                   "console", None, None)
        assert _AdviceNotForUs(OurTasks(frozenset({"fireact_demo"}))).filter(kwargs) is kept
