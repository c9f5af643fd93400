"""Teacher rollouts -> fine-tuning data: success filter, one ReAct format, trainer-readable."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from fireact_eval.convert import convert
from fireact_eval.errors import FireactError
from fireact_eval.trainers.encode import IGNORE, build_examples
from fireact_eval.trajectory import Step, Trajectory
from fireact_eval.transcript import REFLECTION_REQUEST, parse_transcript

from conftest import read_outputs, run_lm_eval

SEARCH = Step("Thought: Find X.\nAction: search[X]", "Find X.", "search", "X", "X is Y.")
FINISH = Step("Thought: So Y.\nAction: finish[Y]", "So Y.", "finish", "Y")
COT = Step("Thought: X is Y, so the answer is Y.\nAction: finish[Y]", "X is Y, so Y.", "finish",
           "Y")
REFLECT = Step("Reflection: I searched too broadly.", "I searched too broadly.",
               kind="reflection")


def record(question: str, method: str, steps: list[Step], em: float) -> dict:
    """A line as lm-eval's --log_samples writes it for a fireact task."""
    finished = bool(steps) and steps[-1].action == "finish"
    traj = Trajectory(steps=steps, answer="Y" if finished else None, finished=finished,
                      turns=sum(s.kind == "act" for s in steps))
    return {"doc_id": 0, "doc": {"question": question, "answer": "Y"}, "target": "Y",
            "arguments": {"gen_args_0": {"arg_0": "prompt", "arg_1": {},
                                         "arg_2": {"method": method, "shots": "fewshot"}}},
            "resps": [[traj.to_json()]], "filtered_resps": [traj.to_json()],
            "exact_match": em, "finished": int(finished)}


@pytest.fixture
def teacher_run(tmp_path):
    run = tmp_path / "run" / "teacher-model"
    run.mkdir(parents=True)
    rows = [
        record("Q react?", "react", [SEARCH, FINISH], 1.0),
        record("Q cot?", "cot", [COT], 1.0),
        record("Q reflexion?", "reflexion", [SEARCH, REFLECT, SEARCH, FINISH], 1.0),
        record("Q wrong?", "react", [SEARCH, FINISH], 0.0),
        record("Q unfinished?", "react", [SEARCH], 0.0),
        record("Q io?", "io", [Step("Action: finish[Y]", None, "finish", "Y")], 1.0),
        {**record("Q no steps?", "react", [], 1.0),
         "resps": [[Trajectory(answer="Y", finished=True).to_json()]]},
    ]
    path = run / "samples_fireact_hotpotqa_2026-11-25T10-00-00.000001.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "run"


def test_keeps_successful_rollouts_of_training_methods_in_one_react_format(teacher_run, tmp_path):
    report = convert([teacher_run], tmp_path / "train.json")
    rows = json.loads((tmp_path / "train.json").read_text())
    assert [r["instruction"] for r in rows] == ["Q react?", "Q cot?", "Q reflexion?"]
    assert rows[0]["output"] == ("Thought: Find X.\nAction: search[X]\nObservation: X is Y.\n"
                                 "Thought: So Y.\nAction: finish[Y]")
    assert rows[1]["output"] == COT.text  # a CoT trace is one turn ending in finish[answer]
    assert "\nReflection: I searched too broadly.\nThought: Find X." in rows[2]["output"]
    assert report.seen[("fireact_hotpotqa", "react")] == 4  # the one without steps is not kept
    assert report.kept[("fireact_hotpotqa", "react")] == 1
    assert report.kept[("fireact_hotpotqa", "io")] == 0
    # the report counts the rows as the file labels them, reflexion included
    assert Counter((r["task"], r["method"]) for r in rows) == +report.kept
    assert rows[2]["method"] == "reflexion"
    assert parse_transcript(rows[0]["output"]).answer == "Y"


def test_chat_layout_matches_what_the_engine_sends(teacher_run, tmp_path):
    convert([teacher_run], tmp_path / "train.jsonl", fmt="chat", methods=["reflexion"])
    [row] = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["user", "assistant", "user", "user", "assistant", "assistant", "user",
                     "assistant"]
    assert row["messages"][3]["content"] == REFLECTION_REQUEST
    assert row["messages"][-1]["content"] == FINISH.text  # no "Observation: None" after finish


def test_converted_data_trains_on_the_agent_turns_only(teacher_run, tmp_path, untrained_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(untrained_model)
    for fmt, name in (("alpaca", "t.json"), ("chat", "t.jsonl")):
        convert([teacher_run], tmp_path / name, fmt=fmt)
        examples, detected = build_examples(tmp_path / name, tokenizer)
        assert detected == fmt and len(examples) == 3
        ex = examples[2]  # the Reflexion rollout
        trained = tokenizer.decode([t for t, label in zip(ex["input_ids"], ex["labels"],
                                                          strict=True) if label != IGNORE])
        assert "I searched too broadly" in trained and "finish[Y]" in trained
        assert "X is Y." not in trained and "Q reflexion" not in trained


def test_bad_runs_are_one_clear_error(tmp_path, teacher_run):
    with pytest.raises(FireactError, match="not found"):
        convert([tmp_path / "missing"], tmp_path / "o.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FireactError, match="no lm-eval samples_"):
        convert([tmp_path / "empty"], tmp_path / "o.json")
    bad = tmp_path / "samples_x_2026-11-25T10-00-00.1.jsonl"
    bad.write_text('{"doc": {}}\n')
    with pytest.raises(FireactError, match="line 1: not a fireact-eval sample"):
        convert([bad], tmp_path / "o.json")
    with pytest.raises(FireactError, match="no successful rollouts"):
        convert([teacher_run], tmp_path / "o.json", methods=["nonexistent"])
    assert not (tmp_path / "o.json").exists()


def test_teacher_run_on_own_questions_to_training_file(tiny_model, tmp_path):
    """The whole data loop through lm_eval: a teacher (the tiny agent) runs on a questions=
    file, the successful rollouts become training rows, the wrong one is dropped."""
    from tiny_agent import demo_questions

    rows = [{"question": q["question"], "answer": q["answer"]} for q in demo_questions()[:4]]
    rows[3]["answer"] = "certainly not this"  # the agent's answer will not match
    questions = tmp_path / "train_questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "teacher"
    run_lm_eval("--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks",
                "fireact_demo", "--device", "cpu", "--batch_size", "4", "--metadata",
                f"questions={questions}", "shots=zeroshot", "max_turns=4", "--gen_kwargs",
                "max_gen_toks=64", "--output_path", str(out), "--log_samples")
    _, samples = read_outputs(out, "fireact_demo")
    assert [s["doc"]["question"] for s in samples] == [r["question"] for r in rows]
    report = convert([out], tmp_path / "train.json")
    converted = json.loads((tmp_path / "train.json").read_text())
    wins = [s["doc"]["question"] for s in samples if s["exact_match"] == 1.0]
    assert [r["instruction"] for r in converted] == wins and 1 <= len(wins) <= 3
    assert report.seen[("demo", "react")] == 4  # the dataset, as the rows are labelled


def test_converted_files_feed_the_replay_index(teacher_run, tmp_path):
    """Our own training files replay as search results, reflections kept out of observations."""
    from fireact_eval.data.replay_index import build_replay_index
    from fireact_eval.tools import make_search

    convert([teacher_run], tmp_path / "t.jsonl", fmt="chat", methods=["reflexion"])
    convert([teacher_run], tmp_path / "t.json", methods=["reflexion"])
    for name in ("t.jsonl", "t.json"):
        assert build_replay_index([tmp_path / name], tmp_path / f"{name}.idx") == 1
        assert make_search(f"replay:{tmp_path / f'{name}.idx'}")("X") == "X is Y."


def test_convert_drops_evaluation_questions(teacher_run, tmp_path):
    from fireact_eval.data.decontaminate import EvalIndex

    index = EvalIndex({"demo": ["Q react?"]})
    report = convert([teacher_run], tmp_path / "t.json", index=index)
    rows = json.loads((tmp_path / "t.json").read_text())
    assert [r["instruction"] for r in rows] == ["Q cot?", "Q reflexion?"]
    assert report.kept[("fireact_hotpotqa", "react")] == 0
    assert any("dropped 1 exact" in line for line in report.lines())


def repeated_run(tmp_path, tries: list[list[Step]], dataset: str = "hotpotqa",
                 identical: bool = False, em: float = 0.5):
    """One question run with repeats: its tries in one sample, as react_generate returns
    them, with the results file that records the task's dataset."""
    from fireact_eval.trajectory import tries_to_json

    run = tmp_path / "rep" / "model"
    run.mkdir(parents=True)
    trajectories = [Trajectory(steps=steps, answer=steps[-1].argument, finished=True,
                               turns=len(steps)) for steps in tries]
    response = tries_to_json(trajectories, identical=identical)
    line = {**record("Q repeated?", "react", tries[0], em), "resps": [[response]],
            "filtered_resps": [response]}
    stamp = "2026-12-01T10-00-00.000001"
    (run / f"samples_fireact_x_{stamp}.jsonl").write_text(json.dumps(line) + "\n")
    (run / f"results_{stamp}.json").write_text(json.dumps({
        "results": {"fireact_x": {}}, "configs": {"fireact_x": {"metadata": {
            "dataset": dataset}}}}))
    return tmp_path / "rep"


def test_a_repeated_run_gives_every_successful_try(tmp_path):
    """Before: only try 0 was read, kept when the mean over tries was 1 (every try right),
    so a question right in 2 of 3 tries gave nothing."""
    wrong = Step("Thought: Surely Z.\nAction: finish[Z]", "Surely Z.", "finish", "Z")
    other = Step("Thought: It is Y.\nAction: finish[Y]", "It is Y.", "finish", "Y")
    run = repeated_run(tmp_path, [[SEARCH, FINISH], [wrong], [SEARCH, other]])
    report = convert([run], tmp_path / "train.json")
    rows = json.loads((tmp_path / "train.json").read_text())
    assert [r["output"].splitlines()[-1] for r in rows] == ["Action: finish[Y]"] * 2
    assert len({r["output"] for r in rows}) == 2
    assert report.seen[("hotpotqa", "react")] == 3 and report.kept[("hotpotqa", "react")] == 2


def test_greedy_repeats_are_one_try_and_unknown_datasets_say_why(tmp_path):
    run = repeated_run(tmp_path / "a", [[SEARCH, FINISH]] * 3, identical=True, em=1.0)
    report = convert([run], tmp_path / "a.json")
    assert report.seen[("hotpotqa", "react")] == 1 and report.kept[("hotpotqa", "react")] == 1
    custom = repeated_run(tmp_path / "b", [[SEARCH, FINISH], [FINISH]], dataset="mine")
    with pytest.raises(FireactError, match="dataset 'mine' has no scorer"):
        convert([custom], tmp_path / "b.json")


def test_strict_format_drops_a_right_try_whose_action_line_runs_on(tmp_path):
    """A model's own sampled try can be right by its answer and still teach junk after
    the call (``search[X] (Thought) search[X]``): ``strict_format`` keeps it out."""
    junk = Step("Thought: Find X.\nAction: search[X] (Thought) search[X]", "Find X.",
                "search", "X] (Thought) search[X", "X is Y.")
    run = repeated_run(tmp_path, [[SEARCH, FINISH], [junk, FINISH]])
    loose = convert([run], tmp_path / "loose.json")
    strict = convert([run], tmp_path / "strict.json", strict_format=True)
    assert loose.kept[("hotpotqa", "react")] == 2 and loose.malformed is None
    assert strict.kept[("hotpotqa", "react")] == 1 and strict.malformed == 1
    assert "(Thought)" not in (tmp_path / "strict.json").read_text()
    assert any("strict format: 1 successful tries dropped" in line for line in strict.lines())
    with pytest.raises(FireactError, match="1 dropped by strict format"):
        wrong = Step("Thought: Surely Z.\nAction: finish[Z]", "Surely Z.", "finish", "Z")
        convert([repeated_run(tmp_path / "b", [[junk, FINISH], [wrong]])],
                tmp_path / "b.json", strict_format=True)
