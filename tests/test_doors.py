"""Issue 45: settings are checked where they enter, by one schema, before anything heavy.

Each door (``check_metadata``, which ``lm_eval``'s preflight, ``generate``, GRPO and the
experiment share; ``train``; ``generate``; ``experiment --dry-run``) is fed invalid settings
by hypothesis and must answer with one line, exit 2, nothing written, no model loaded; and
training never reads test material unless asked in so many words.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireact_eval.errors import FireactError
from fireact_eval.rollout_settings import check_metadata, valid_metadata_keys

from conftest import cli_in_process

# (key, value) pairs that no door may take: wrong type, out of range, unknown choice
BAD_VALUES = [
    ("max_turns", 1000), ("max_turns", 0), ("max_turns", "three"), ("noise_p", 2),
    ("noise_p", -0.1), ("noise", "loud"), ("method", "magic"), ("format", "yaml"),
    ("shots", "some"), ("n", -5), ("repeats", 0), ("search", "bing"),
    ("search", "world:abc"), ("split", "dev"), ("reflect_at", "0"), ("concurrency", -1),
    ("tool_template", "nope"),
]
VALID_KEYS = set(valid_metadata_keys())
unknown_keys = st.from_regex(r"[a-z][a-z_]{1,12}", fullmatch=True).filter(
    lambda k: k not in VALID_KEYS and k not in ("version", "config_source"))
bad_settings = st.one_of(
    st.sampled_from(BAD_VALUES),
    st.tuples(unknown_keys, st.sampled_from(["bing", 1, True])))


def one_line(message: str) -> bool:
    return len(message.strip().splitlines()) == 1


@given(bad=bad_settings)
@settings(max_examples=200, deadline=None)
def test_check_metadata_refuses_every_bad_setting_in_one_line(bad):
    key, value = bad
    with pytest.raises(FireactError) as err:
        check_metadata({"dataset": "demo", "search": "local", key: value}, where="--metadata")
    assert one_line(str(err.value)) and str(err.value).startswith("--metadata: ")


def test_strict_types_refuse_strings_for_numbers_only_from_typed_files():
    """A YAML's ``max_turns: "3"`` is a quoting slip; a command line's ``max_turns=3`` is
    how every number arrives there."""
    assert check_metadata({"max_turns": "3"}).settings.max_turns == 3
    with pytest.raises(FireactError, match="max_turns must be an integer .unquoted."):
        check_metadata({"max_turns": "3"}, strict=True)


def test_training_reads_the_test_split_only_when_asked():
    with pytest.raises(FireactError, match="split=test trains on the evaluation questions"):
        check_metadata({"split": "test"}, training=True)
    assert check_metadata({}, training=True).source.split == "train"
    assert check_metadata({"split": "test"}, training=True,
                          train_on_test=True).source.split == "test"


def test_a_world_seed_must_be_the_questions_world():
    """``search=world:7`` on fireact_world searched a world none of its questions is about."""
    from fireact_eval.tools.world import WORLD_SEED

    with pytest.raises(FireactError, match="fireact_world's questions are those of world"):
        check_metadata({"dataset": "world", "search": "world:7"})
    check_metadata({"dataset": "world", "search": f"world:{WORLD_SEED}"})
    check_metadata({"dataset": "demo", "questions": "q.json", "search": "world:7"})


def test_an_n_beyond_the_test_split_is_refused():
    from fireact_eval.questions import demo

    with pytest.raises(FireactError, match="n=5000, but demo's test questions number 36"):
        demo(n=5000)


# ---------------------------------------------------------------- the command doors

def _refused(proc, out=None, started=None) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fireact-eval: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    if out is not None:
        assert not out.exists()
    if started is not None:
        assert time.perf_counter() - started < 3  # before anything heavy loads


@given(bad=bad_settings)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_train_grpo_refuses_bad_metadata_at_its_door(tmp_path, bad):
    key, value = bad
    if key == "max_turns":  # a flag of its own: given twice is its own error
        value = 7
    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    (base / "config.json").write_text("{}")
    out = tmp_path / "o"
    started = time.perf_counter()
    proc = cli_in_process("train", "--method", "grpo", "--base", str(base), "--data", "demo",
                          "--out", str(out), "--metadata", f"{key}={value}")
    _refused(proc, out, started)


@given(bad=bad_settings)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generate_refuses_bad_metadata_at_its_door(tmp_path, bad):
    key, value = bad
    if key in ("method", "n", "split"):  # flags of its own, or the split rule below
        value = "test" if key == "split" else value
    out = tmp_path / "g"
    started = time.perf_counter()
    proc = cli_in_process("generate", "--out", str(out), "--tasks", "demo", "--methods",
                          "react", "--metadata", f"{key}={value}")
    if key == "split" and value == "test":
        assert "split=test trains on the evaluation questions" in proc.stderr
    _refused(proc, out, started)


def test_sft_refuses_grpo_only_settings(tmp_path, train_file, untrained_model):
    out = tmp_path / "o"
    proc = cli_in_process("train", "--base", str(untrained_model), "--data", str(train_file),
                          "--out", str(out), "--metadata", "split=test")
    _refused(proc, out)
    assert "GRPO's" in proc.stderr


def _grid(tmp_path, **sections) -> str:
    config = {"axes": {"base": ["smollm2"], "data": ["gold"], "size": [4]},
              "data": {"gold": {"oracle": "demo"}},
              "train": {"method": "lora", "epochs": 1},
              "evaluate": {"tasks": ["fireact_demo"], "noise": ["off", "none"]},
              "finetuned": {"shots": "zeroshot", "format": "alpaca"}}
    for dotted, value in sections.items():
        *path, last = dotted.split(".")
        node = config
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


# each a setting that used to pass --dry-run and fail an hour in (issue 45's list)
BAD_GRIDS = [
    ({"evaluate.metadata": {"serach": "bing"}},
     "evaluate.metadata + finetuned: unknown key(s) serach"),
    ({"evaluate.metadata": {"noise_p": 2}}, "noise_p"),
    ({"evaluate.metadata": {"max_turns": 1000}}, "max_turns must be from 1 to 100"),
    ({"evaluate.metadata": {"max_turns": "three"}}, "max_turns must be an integer"),
    ({"evaluate.metadata": {"n": -5}}, "n must be 0 (all) or more"),
    ({"finetuned.format": "yaml"}, "unknown format='yaml'"),
    ({"prompted": {"method": "magic"}}, "unknown method='magic'"),
    ({"evaluate.batch_size": 0}, "evaluate.batch_size"),
    ({"evaluate.device": "quantum"}, "evaluate.device"),
    ({"evaluate.gen_kwargs": {"temperature": -3}}, "temperature must be a finite number"),
    ({"train.merge": "yes"}, "merge must be true or false (unquoted)"),
    ({"train.epochs": "3"}, "epochs must be a number (unquoted)"),
    ({"grpo": {"dataset": "demo", "metadata": {"noise": "loud"}}}, "unknown noise='loud'"),
    ({"grpo": {"dataset": "demo", "metadata": {"split": "test"}}},
     "split=test trains on the evaluation questions"),
    ({"improve": {"tasks": ["demo"], "gen_kwargs": "do_sample=True,temperature=-3"}},
     "improve.gen_kwargs"),
    ({"improve": {"tasks": ["demo"], "metadata": {"split": "test"}}},
     "split=test trains on the evaluation questions"),
    ({"finetuned.format": "tools"}, "finetuned.format is tools"),  # rounds of alpaca rows
    ({"evaluate.metadata": {"search": "world:7"}, "evaluate.tasks": ["fireact_world"]},
     "fireact_world's questions are those of world"),
]


@pytest.mark.parametrize("sections, said", BAD_GRIDS)
def test_experiment_dry_run_refuses_what_a_real_run_would(tmp_path, sections, said):
    if "finetuned.format" in sections and sections["finetuned.format"] == "tools":
        sections = {**sections, "improve": {"tasks": ["demo"]}}
    config = _grid(tmp_path, **sections)
    out = tmp_path / "runs"
    started = time.perf_counter()
    proc = cli_in_process("experiment", config, "--out", str(out), "--dry-run")
    _refused(proc, out, started)
    assert config in proc.stderr and said in proc.stderr, proc.stderr


def test_a_yaml_key_given_twice_is_refused(tmp_path):
    config = tmp_path / "grid.yaml"
    config.write_text(open(_grid(tmp_path)).read() + "train: {method: lora, epochs: 30}\n")
    proc = cli_in_process("experiment", str(config), "--dry-run")
    _refused(proc)
    assert "key 'train' given twice" in proc.stderr


@given(key=unknown_keys)
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_experiment_refuses_any_unknown_metadata_key(tmp_path, key):
    proc = cli_in_process("experiment", _grid(tmp_path, **{"evaluate.metadata": {key: 1}}),
                          "--dry-run")
    _refused(proc)
    assert f"unknown key(s) {key}" in proc.stderr


# ---------------------------------------------------------------- test material

@pytest.mark.parametrize("noise", ["off", "none", "random", "distractor", "truncated",
                                   "none:0.125+error:0.125+distractor:0.125+truncated:0.125"])
def test_no_oracle_row_shows_a_test_question_entity_or_passage(tmp_path, noise):
    """Every world oracle (clean, retrying after None, after a random passage, a distractor
    (another entity of its own training province), a cut passage, a mixture) writes rows
    in which no test question, no test entity and no test passage appears: a random wrong
    passage is drawn from the training questions' own passages (the whole corpus put test
    facts into 1,016 rows).  The demo's training questions share its 48-passage corpus by
    design (docs/demo.md), so the world is where this is measured."""
    from fireact_eval.data.oracle import write_oracle_data
    from fireact_eval.jsonio import iter_jsonl
    from fireact_eval.tools.world import world_folder

    test = [row for _, row in iter_jsonl(world_folder() / "test.jsonl")]
    names = {n for q in test for n in [*q["supporting"], q["answer"]] if not n.isdigit()}
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(sorted(map(re.escape, names), key=len,
                                                           reverse=True)) + r")(?!\w)")
    out = tmp_path / "train.json"
    assert write_oracle_data(out, "world", noise) > 3000
    rows = json.loads(out.read_text())
    text = "\n".join(r["instruction"] + "\n" + r["output"] for r in rows)
    assert not set(pattern.findall(text))
    assert not {q["question"] for q in test} & {r["instruction"] for r in rows}
    said = {"random": "That is not about", "distractor": "That is about",
            "truncated": "is cut off before its facts"}
    for kind, words in said.items():  # the faults are there, all of them training's
        if kind in noise:
            assert words in text
    if noise.startswith("none:"):
        assert "The search failed. I need to search" in text


def test_a_results_file_of_another_harness_task_keeps_no_defaults_of_ours(tmp_path):
    """``arc_easy`` beside ours: tabled, but not as a react, few-shot, wiki-search run."""
    from fireact_eval.harness.run_files import write_run
    from fireact_eval.results.frame import load_runs

    samples = [{"doc_id": i, "metrics": ["acc"], "acc": float(i % 2)} for i in range(4)]
    write_run(tmp_path / "run", "arc_easy", {}, samples, "m", "2026-12-07T00-00-00.000000")
    write_run(tmp_path / "ours", "fireact_demo", {"dataset": "demo"}, samples, "m",
              "2026-12-07T00-00-00.000000")
    frame = load_runs([str(tmp_path / "run"), str(tmp_path / "ours")]).set_index("task")
    assert frame.loc["arc_easy", "method"] == "" and frame.loc["arc_easy", "search"] == ""
    assert frame.loc["fireact_demo", "method"] == "react"


# ---------------------------------------------------------------- nothing deleted we did not make

def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_index_wiki_never_removes_a_folder_it_did_not_make(tmp_path):
    """It removed any --out that was not an index: a user's notes, results, even the
    corpus inside it, exit 0."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    corpus = _jsonl(out / "c.jsonl", [{"title": "Oslo", "text": "Oslo is in Norway."}])
    proc = cli_in_process("index", "wiki", "--source", str(corpus), "--out", str(out))
    assert proc.returncode == 1 and "holds the corpus" in proc.stderr
    proc = cli_in_process("index", "wiki", "--source", str(corpus), "--out", str(out),
                          "--force")
    assert proc.returncode == 1 and "holds the corpus" in proc.stderr  # even with --force
    outside = _jsonl(tmp_path / "c.jsonl", [{"title": "Oslo", "text": "Oslo is in Norway."}])
    proc = cli_in_process("index", "wiki", "--source", str(outside), "--out", str(out))
    assert proc.returncode == 1 and "not a search index" in proc.stderr and "--force" in \
        proc.stderr
    assert (out / "notes.txt").read_text() == "keep me" and corpus.is_file()
    index = tmp_path / "index"
    assert cli_in_process("index", "wiki", "--source", str(outside), "--out",
                          str(index)).returncode == 0
    again = cli_in_process("index", "wiki", "--source", str(outside), "--out", str(index))
    assert again.returncode == 0  # its own index: kept as it is
    assert cli_in_process("index", "wiki", "--source", str(outside), "--out", str(out),
                          "--force").returncode == 0  # told to: replaced
    assert not (out / "notes.txt").exists()


def test_import_fireact_refuses_a_run_folder_that_holds_files(tmp_path):
    dump = tmp_path / "hotpotqa_dev_0_500_gpt-4_0.0_2023-09-21-16-19-51.json"
    dump.write_text("{}")
    folder = tmp_path / "out" / "gpt-4_0.0"
    folder.mkdir(parents=True)
    (folder / "mine.txt").write_text("x")
    proc = cli_in_process("results", "import-fireact", str(dump), "--out",
                          str(tmp_path / "out"))
    assert proc.returncode == 1 and "--force" in proc.stderr and "gpt-4_0.0" in proc.stderr
    assert (folder / "mine.txt").read_text() == "x"


def test_experiment_refuses_another_commands_folder(tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    proc = cli_in_process("experiment", _grid(tmp_path), "--out", str(out), "--dry-run")
    _refused(proc)
    assert "did not make" in proc.stderr
    assert cli_in_process("experiment", _grid(tmp_path), "--out", str(out), "--dry-run",
                          "--force").returncode == 0


def test_convert_refuses_a_name_that_says_another_layout(tmp_path):
    proc = cli_in_process("convert", str(tmp_path), "--format", "tools", "--out",
                          str(tmp_path / "x.json"))
    assert proc.returncode == 1 and "tools rows are written as .jsonl" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_version_and_the_demos_out_flag():
    from fireact_eval import __version__
    from fireact_eval.cli import build_parser

    proc = cli_in_process("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"fireact-eval {__version__}"
    parser = build_parser()
    assert parser.parse_args(["demo", "--out", "d"]).out == "d"
    assert parser.parse_args(["demo", "--output_path", "d"]).out == "d"  # lm-eval's name


# ---------------------------------------------------------------- data says its layout

def _tools_row(call: dict, tools: list | None = None) -> dict:
    from fireact_eval.tool_calls import tool_schemas

    row = {"messages": [{"role": "user", "content": "Q?"},
                        {"role": "assistant", "content": "I search.", "tool_calls": [call]},
                        {"role": "tool", "tool_call_id": "c", "content": "R"},
                        {"role": "assistant", "content": "", "tool_calls": [
                            {"type": "function", "function": {"name": "finish",
                                                              "arguments": {"answer": "A"}}}]}]}
    if tools is not False:
        row["tools"] = tools or tool_schemas(["search"])
    return row


def _call(name, arguments):
    return {"type": "function", "id": "c", "function": {"name": name, "arguments": arguments}}


@pytest.mark.parametrize("row, said", [
    (_tools_row(_call("search", {"query": "x"}), tools=False), "carry tool_calls but the row "
     "has no 'tools'"),
    (_tools_row(_call("search", '{"query": "x')), "malformed tool call"),
    (_tools_row(_call("rm_rf", {"query": "/"})), "calls 'rm_rf', which the row's tools do not"),
    (_tools_row(_call("search", {"q": "x"})), "search called with unknown argument(s) q"),
    (_tools_row(_call("search", {})), "search called with no query"),
])
def test_a_tools_row_that_would_train_wrongly_is_refused_with_its_row(tmp_path, row, said):
    from fireact_eval.data.segments import read_layout

    path = _jsonl(tmp_path / "rows.jsonl", [_tools_row(_call("search", {"query": "x"})), row])
    with pytest.raises(FireactError) as err:
        read_layout(path)
    assert f"{path}, row 1" in str(err.value) and said in str(err.value)
    assert read_layout(_jsonl(tmp_path / "ok.jsonl", [_tools_row(_call("search", {
        "query": "x"}))]))[1] == "tools"


def test_format_chat_without_a_chat_template_is_one_line():
    from types import SimpleNamespace

    from fireact_eval.harness.backend import _check_chat_template

    lm = SimpleNamespace(tokenizer=SimpleNamespace(chat_template=None, name_or_path="m"))
    with pytest.raises(FireactError, match="format=chat: m's tokenizer has no chat template"):
        _check_chat_template(lm)
    _check_chat_template(SimpleNamespace(tokenizer=SimpleNamespace(chat_template="{{x}}")))


def test_grpo_checks_its_prompts_against_cutoff_before_the_model_loads(tiny_model):
    from transformers import AutoTokenizer

    from fireact_eval.prompts import build_prompt
    from fireact_eval.rollout_settings import RolloutSettings
    from fireact_eval.trainers.grpo import check_prompts_fit

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    settings = RolloutSettings(shots="zeroshot", format="alpaca", search="local")
    prompt = build_prompt("In which town was the founder of Velmora Observatory born?",
                          "react", "zeroshot", "alpaca", "qa")
    check_prompts_fit(settings, tokenizer, [prompt], 512)
    with pytest.raises(FireactError, match="--cutoff 16: the longest question's prompt is"):
        check_prompts_fit(settings, tokenizer, [prompt], 16)


def test_generate_with_hf_and_no_device_runs_on_the_cpu_here(untrained_model):
    """lm-eval's HFLM defaults to cuda: a CUDA assertion on a machine without one."""
    import torch

    from fireact_eval.harness.evaluate import load_model

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: cuda is the right default")
    lm = load_model("hf", f"pretrained={untrained_model}", "1")
    assert str(lm.device) == "cpu"


def test_a_checkpoint_trained_on_test_questions_is_said_so_under_every_table(tmp_path):
    from fireact_eval.harness.run_files import write_run
    from fireact_eval.results.frame import load_runs
    from fireact_eval.results.tables import provenance
    from fireact_eval.training_card import TrainingCard

    model = tmp_path / "adapter"
    model.mkdir()
    TrainingCard("base", "grpo", True, "demo", train_on_test=True).write(model)
    samples = [{"doc_id": 0, "metrics": ["exact_match"], "exact_match": 1.0}]
    write_run(tmp_path / "run", "fireact_demo", {"dataset": "demo"}, samples, "m",
              "2026-12-07T00-00-00.000000")
    results = next((tmp_path / "run").glob("results_*.json"))
    record = json.loads(results.read_text())
    record["config"]["model_args"] = {"pretrained": "base", "peft": str(model)}
    results.write_text(json.dumps(record))
    notes = provenance(load_runs([f"agent={tmp_path / 'run'}"]))
    assert any("agent: TRAINED ON TEST QUESTIONS" in line for line in notes), notes


def test_a_grpo_cards_command_evaluates_in_the_environment_it_trained_in():
    from fireact_eval.rollout_settings import RolloutSettings
    from fireact_eval.trainers.grpo import trained_environment

    settings = RolloutSettings(search="world", shots="zeroshot", format="alpaca", noise="none",
                               max_turns=8, concurrency=3)
    assert trained_environment("world", settings) == {
        "shots": "zeroshot", "format": "alpaca", "max_turns": 8, "noise": "none"}


def test_lm_evals_preflight_checks_a_local_models_templates_before_it_loads(tmp_path,
                                                                             untrained_model):
    """format=chat without a chat template, format=tools with a template that renders no
    tools: one line from the tokenizer alone (it came after the model loaded)."""
    import shutil

    from fireact_eval.harness.preflight import check_templates

    bare = tmp_path / "bare"
    shutil.copytree(untrained_model, bare)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    for name in ("chat_template.jinja", "chat_template.json"):
        (bare / name).unlink(missing_ok=True)
    with pytest.raises(FireactError, match="format=chat: .*has no chat template"):
        check_templates([{"format": "chat"}], "hf", f"pretrained={bare}")
    with pytest.raises(FireactError, match="renders no tools"):
        check_templates([{"format": "tools"}], "hf", f"pretrained={bare}")
    check_templates([{"format": "tools", "tool_template": "hermes"}], "hf",
                    f"pretrained={bare}")  # the shipped template renders them
    check_templates([{"format": "chat"}], "local-chat-completions", "model=x")  # the server's


@given(bad=bad_settings)
@settings(max_examples=15, deadline=None)
def test_lm_evals_preflight_refuses_every_bad_setting_before_the_model(bad):
    """The ``lm_eval --metadata`` door: lm-eval's own TaskManager, our preflight (what the
    start-up hook runs before the model loads), one line."""
    from lm_eval.tasks import TaskManager

    from fireact_eval.harness.preflight import preflight
    from fireact_eval.tasks import TASKS_DIR

    key, value = bad
    manager = TaskManager(include_defaults=False, include_path=TASKS_DIR,
                          metadata={key: value})
    with pytest.raises(FireactError) as err:
        preflight(manager, ["fireact_demo"], "pretrained=/no/model", "hf")
    assert one_line(str(err.value))


def test_a_grid_without_save_steps_checkpoints_each_quarter_of_a_cell(tmp_path):
    """A killed training cell resumes from a checkpoint: the shipped world grid set
    save_steps 100000 and started over."""
    from fireact_eval.experiment.config import load
    from fireact_eval.experiment.plan import cells
    from fireact_eval.experiment.runner import _checkpoints

    ex = load(_grid(tmp_path, **{"train.epochs": 12, "axes.size": [32]}))
    [cell] = cells(ex)
    assert _checkpoints(ex, cell, 32) == ["--save-steps", "24"]  # 8 steps x 12 epochs / 4
    ex = load(_grid(tmp_path, **{"train.save_steps": 5}))
    assert _checkpoints(ex, cells(ex)[0], 32) == []  # the YAML's own
