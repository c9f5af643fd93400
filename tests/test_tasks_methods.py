"""All four tasks, every method and prompt style: loaders, scoring, prompts, and lm_eval."""

from __future__ import annotations

import json

import pytest

from fireact_eval.answer_match import choice_letter, yes_no
from fireact_eval.errors import FireactError
from fireact_eval.harness.compat import task_index
from fireact_eval.prompts import METHODS, build_prompt
from fireact_eval.questions import bamboogle, hotpotqa, mmlu, strategyqa
from fireact_eval.rollout_settings import RolloutSettings
from fireact_eval.scoring import multiple_choice_accuracy, yes_no_accuracy
from fireact_eval.tasks import TASKS_DIR
from fireact_eval.trajectory import Trajectory

from conftest import FIREACT_DATA, read_outputs, run_lm_eval


def test_loaders_read_fireact_layout(fireact_layout):
    d = str(fireact_layout)
    assert len(hotpotqa(data_dir=d)["test"]) == 2
    assert bamboogle(data_dir=d)["test"][0]["answer"] == "Kettwick"
    assert [r["answer"] for r in strategyqa(data_dir=d)["test"]] == ["no", "yes"]
    doc = mmlu(data_dir=d)["test"][0]
    assert doc["question"].endswith("\nA. Orrin\nB. Lisk\nC. Amber\nD. Grey")
    assert doc["answer"] == "B" and doc["choices"][1] == "Lisk"


def test_malformed_mmlu_row_names_file_and_row(tmp_path):
    (tmp_path / "mmlu" / "test").mkdir(parents=True)
    (tmp_path / "mmlu" / "test" / "x_test.csv").write_text("q,a,b,c,d,A\nq,a,b,c,d,E\n")
    with pytest.raises(FireactError, match=r"x_test\.csv, row 1"):
        mmlu(data_dir=str(tmp_path))
    with pytest.raises(FireactError, match="data file not found"):
        bamboogle(data_dir=str(tmp_path))


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_fireact_files_doc_counts():
    d = str(FIREACT_DATA)
    assert len(bamboogle(data_dir=d)["test"]) == 125
    assert len(strategyqa(data_dir=d)["test"]) == 229
    assert len(mmlu(data_dir=d)["test"]) == 14_042
    assert len(hotpotqa(data_dir=d)["test"]) == 500


@pytest.mark.parametrize(("answer", "gold", "acc"), [
    ("yes", "yes", 1.0), ("Yes.", "yes", 1.0), ("no, it is not", "no", 1.0),
    ("No", "yes", 0.0), ("maybe", "no", 0.0), (None, "no", 0.0),
])
def test_yes_no_scoring(answer, gold, acc):
    traj = Trajectory(answer=answer, finished=answer is not None)
    assert yes_no_accuracy({"answer": gold}, [traj.to_json()])["acc"] == acc


@pytest.mark.parametrize(("answer", "acc"), [
    ("B", 1.0), ("(b)", 1.0), ("B. Lisk", 1.0), ("lisk", 1.0), ("The Lisk.", 1.0),
    ("A", 0.0), ("Orrin", 0.0), ("E", 0.0), ("a river", 0.0),
])
def test_multiple_choice_scoring(answer, acc):
    doc = {"answer": "B", "choices": ["Orrin", "Lisk", "Amber", "Grey"]}
    traj = Trajectory(answer=answer, finished=True)
    assert multiple_choice_accuracy(doc, [traj.to_json()])["acc"] == acc


def test_yes_no_and_letters():
    assert yes_no("YES it is") == "yes" and yes_no("nope") is None
    assert choice_letter("D) Grey", ["a", "b", "c", "Grey"]) == "D"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", ["qa", "strategyqa", "mmlu"])
def test_every_method_has_fewshot_examples(method, family):
    prompt = build_prompt("Q?", method, "fewshot", "plain", family)
    assert prompt.endswith("Question: Q?\n") and "(END OF EXAMPLES)" in prompt
    if method in ("io", "cot"):
        assert "search[" not in prompt.split("(END OF EXAMPLES)")[0].split("examples.")[1]


def test_zero_shot_formats():
    assert build_prompt("Q?", shots="zeroshot") == "Q?\n"
    assert build_prompt("Q?", shots="zeroshot", fmt="chat") == "Q?"
    alpaca = build_prompt("Q?", shots="zeroshot", fmt="alpaca")
    assert alpaca.endswith("### Instruction:\nQ?\n\n### Response:\n")


def test_zero_shot_is_a_fraction_of_few_shot_cost():
    fewshot = build_prompt("Where was the founder of Velmora Observatory born?")
    zeroshot = build_prompt("Where was the founder of Velmora Observatory born?", shots="zeroshot")
    assert len(zeroshot) <= 0.2 * len(fewshot)


@pytest.mark.parametrize(("metadata", "message"), [
    ({"method": "tot"}, "valid values: io, cot, react, reflexion"),
    ({"format": "xml"}, "valid values: plain, chat, alpaca"),
    ({"family": "math"}, "no few-shot examples for method=react on math tasks"),
])
def test_bad_method_format_family(metadata, message):
    with pytest.raises(FireactError, match=message):
        RolloutSettings.from_metadata(metadata)


def test_all_tasks_and_methods_through_lm_eval(tiny_model, fireact_layout, tmp_path):
    tasks = "fireact,fireact_hotpotqa_io,fireact_bamboogle_cot,fireact_strategyqa_reflexion"
    run_lm_eval("--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks", tasks,
                "--device", "cpu", "--batch_size", "16", "--limit", "2",
                "--metadata", f"data_dir={fireact_layout}", "search=local", "shots=zeroshot",
                "max_turns=3", "reflect_at=2", "--output_path", str(tmp_path), "--log_samples")
    results = json.loads(sorted(tmp_path.glob("*/results_*.json"))[-1].read_text())["results"]
    assert {"fireact", "fireact_hotpotqa", "fireact_bamboogle", "fireact_strategyqa",
            "fireact_mmlu"} <= set(results)
    assert results["fireact_hotpotqa"]["exact_match,none"] >= 0.5  # the tiny agent's question
    assert results["fireact_mmlu"]["acc,none"] in (0.0, 0.5, 1.0)
    # each task's metrics are what its scorer declares (no YAML lists them): quality first
    from fireact_eval.scoring import multiple_choice_accuracy, qa

    for task, scorer in (("fireact_mmlu", multiple_choice_accuracy), ("fireact_hotpotqa", qa)):
        reported = [k.split(",")[0] for k in results[task] if k.endswith(",none")
                    and "_stderr" not in k]
        assert reported == list(scorer.metrics), (task, reported)
    for single_turn in ("fireact_hotpotqa_io", "fireact_bamboogle_cot"):
        assert results[single_turn]["turns,none"] == 1.0
        assert results[single_turn]["tool_calls,none"] == 0.0
    _, samples = read_outputs(tmp_path, "fireact_strategyqa_reflexion")
    for sample in samples:
        traj = Trajectory.from_json(sample["resps"][0][0])
        if traj.turns >= 2:  # unfinished after turn 1: a reflection came before turn 2
            assert traj.steps[1].kind == "reflection"


def test_variant_files_are_the_generators_output_with_full_metadata_and_tags():
    from lm_eval.tasks import TaskManager

    from fireact_eval.tasks import _generate_variants

    assert _generate_variants.main(check=True) == 0  # checked-in files == generated
    index = task_index(TaskManager(include_defaults=False, include_path=TASKS_DIR))
    assert index["fireact_noise"].tags == {
        f"fireact_{d}_noise_{n}" for d in ("hotpotqa", "demo", "world")
        for n in ("none", "random", "error", "distractor", "truncated", "distractor_permanent",
                  "mix")}
    assert index["fireact_cot"].tags == {f"fireact_{d}_cot" for d in
                                         ("hotpotqa", "bamboogle", "strategyqa", "mmlu", "world")}
    settings = {name: RolloutSettings.from_metadata(
        {**cfg["metadata"], "search": "local"}) for name, cfg in _configs(
        ["fireact_mmlu_cot", "fireact_strategyqa_reflexion", "fireact_demo_noise_none"])}
    assert settings["fireact_mmlu_cot"].family == "mmlu"  # not lost to the shallow include
    assert settings["fireact_strategyqa_reflexion"].family == "strategyqa"
    assert settings["fireact_demo_noise_none"].noise == "none"


def _configs(names):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False, include_path=TASKS_DIR)
    for name in names:
        yield name, manager._factory._load_full_config(task_index(manager)[name], None)


def test_every_dataset_has_its_scorer_in_one_place(monkeypatch):
    """ReactTask takes a task's scorer from scoring.DATASET_SCORERS (no YAML names one), and
    convert scores each try of a repeated question with the same one."""
    from lm_eval.api.task import ConfigurableTask

    from fireact_eval.catalog import DATASETS
    from fireact_eval.harness.task import ReactTask
    from fireact_eval.scoring import DATASET_SCORERS, yes_no_accuracy

    assert set(DATASET_SCORERS) == set(DATASETS)
    captured = {}  # the config ReactTask hands lm-eval (no dataset is loaded)
    monkeypatch.setattr(ConfigurableTask, "__init__", lambda self, config: captured.update(config))
    ReactTask({"task": "t", "metadata": {"dataset": "strategyqa"}})
    assert captured["process_results"] is yes_no_accuracy
    first = captured["metric_list"][0]["metric"]  # a callable named so on lm-eval 0.5
    assert getattr(first, "__name__", first) == "acc"

    def own(doc, results):  # a YAML's own scorer wins
        return {}

    ReactTask({"task": "t", "metadata": {"dataset": "strategyqa"}, "process_results": own})
    assert captured["process_results"] is own
