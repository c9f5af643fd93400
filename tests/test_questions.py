import json
import random

import pytest

from fireact_eval.errors import FireactError
from fireact_eval.questions import bamboogle, demo, fireact_subset, hotpotqa, mmlu, strategyqa

from conftest import FIREACT_DATA


def test_demo_docs():
    docs = demo()["test"]
    assert len(docs) == 36
    assert set(docs.features) == {"id", "question", "answer"}
    assert docs[0]["answer"] == "Kettwick"


def test_fireact_subset_is_the_seeded_shuffle():
    indices = list(range(7405))
    random.Random(233).shuffle(indices)
    assert fireact_subset(list(range(7405))) == indices[:500]


def _write_dev(tmp_path, rows) -> None:
    (tmp_path / "hotpotqa").mkdir()
    (tmp_path / "hotpotqa" / "dev.json").write_text(json.dumps(rows))


def test_local_hotpotqa_layout(tmp_path):
    _write_dev(tmp_path, [{"question": f"q{i}?", "answer": f"a{i}"} for i in range(600)])
    docs = hotpotqa(data_dir=str(tmp_path), pretrained="ignored")["test"]  # metadata kwargs pass
    order = fireact_subset(list(range(600)))
    assert len(docs) == 500
    assert docs[0]["question"] == f"q{order[0]}?" and docs[0]["id"] == f"hotpotqa-{order[0]}"


def test_malformed_row_names_file_and_row(tmp_path):
    rows = [{"question": "q?", "answer": "a"} for _ in range(3)] + [{"question": "no answer"}]
    _write_dev(tmp_path, rows)
    with pytest.raises(FireactError, match=r"dev\.json, row 3: expected an object"):
        hotpotqa(data_dir=str(tmp_path))


def test_malformed_json_names_file(tmp_path):
    (tmp_path / "hotpotqa").mkdir()
    (tmp_path / "hotpotqa" / "dev.json").write_text("[{]")
    with pytest.raises(FireactError, match=r"dev\.json: not valid JSON"):
        hotpotqa(data_dir=str(tmp_path))


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_fireact_hotpotqa_files():
    rows = json.loads((FIREACT_DATA / "hotpotqa" / "dev.json").read_text())
    docs = hotpotqa(data_dir=str(FIREACT_DATA))["test"]
    assert len(rows) == 7405 and len(docs) == 500
    first = rows[fireact_subset(rows)[0]]
    assert (docs[0]["question"], docs[0]["answer"]) == (first["question"], first["answer"])


def test_own_questions_replace_any_tasks_docs(tmp_path):
    """--metadata questions=PATH: the docs take the shape the task's scorer expects."""
    from fireact_eval.questions import mmlu, strategyqa

    path = tmp_path / "q.json"
    path.write_text(json.dumps([{"question": "Is ice cold?", "answer": True}]))
    [doc] = strategyqa(questions=str(path))["test"].to_list()
    assert doc["answer"] == "yes" and doc["id"] == "q-0"
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"question": "2+2?", "choices": ["1", "2", "3", "4"],
                                "answer": "D"}) + "\n")
    [doc] = mmlu(questions=str(path), data_dir="/nonexistent")["test"].to_list()
    assert doc["question"].endswith("D. 4") and doc["answer"] == "D"
    path.write_text(json.dumps({"question": "2+2?", "choices": ["4"], "answer": "A"}) + "\n")
    with pytest.raises(FireactError, match="row 0: 'choices' needs 4 options"):
        mmlu(questions=str(path))
    with pytest.raises(FireactError, match="questions file not found"):
        mmlu(questions=str(tmp_path / "nope.json"))


def test_an_empty_gold_answer_is_refused_with_its_row(tmp_path):
    from fireact_eval.questions import accepts_question_file

    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "A?", "answer": "a"}\n{"question": "B?", "answer": "  "}\n')
    with pytest.raises(FireactError, match=r"q\.jsonl, row 1: the gold 'answer' is empty"):
        accepts_question_file(demo)(questions=str(path))


def test_training_split_draws_are_seeded_and_nested(tmp_path):
    """split=train reads the training file; n draws a seeded sample whose prefix is every
    smaller draw (so --limit k and n=k agree, and n=500 extends n=100)."""
    (tmp_path / "hotpotqa").mkdir()
    (tmp_path / "hotpotqa" / "train.json").write_text(json.dumps(
        [{"question": f"t{i}?", "answer": f"a{i}"} for i in range(300)]))
    everything = hotpotqa(data_dir=str(tmp_path), split="train")["test"]
    assert len(everything) == 300 and everything[0]["question"] == "t0?"
    small = hotpotqa(data_dir=str(tmp_path), split="train", n=20, sample_seed=1)["test"]
    large = hotpotqa(data_dir=str(tmp_path), split="train", n="100", sample_seed="1")["test"]
    assert large["question"][:20] == small["question"] and len(set(large["question"])) == 100
    other = hotpotqa(data_dir=str(tmp_path), split="train", n=20, sample_seed=2)["test"]
    assert other["question"] != small["question"]
    with pytest.raises(FireactError, match="unknown split='dev'; valid values: test, train"):
        hotpotqa(data_dir=str(tmp_path), split="dev")
    with pytest.raises(FireactError, match="held-out task: it has no training split"):
        bamboogle(data_dir=str(tmp_path), split="train")


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_fireact_training_splits():
    assert len(strategyqa(data_dir=str(FIREACT_DATA), split="train")["test"]) == 2821
    docs = mmlu(data_dir=str(FIREACT_DATA), split="train", n=10)["test"]
    assert len(docs) == 10 and all(d["answer"] in "ABCD" for d in docs)
    assert len(mmlu(data_dir=str(FIREACT_DATA), split="train")["test"]) == 1816
