"""FireAct's data stage: import, decontamination, mixing, the report."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fireact_eval.data.decontaminate import EvalIndex, decontaminate
from fireact_eval.data.examples import Example, read_examples, to_row
from fireact_eval.data.fireact_release import RELEASED, import_release
from fireact_eval.data.mix import mix
from fireact_eval.data.summary import p95
from fireact_eval.errors import FireactError
from fireact_eval.transcript import parse_step, parse_transcript, to_text

from conftest import FIREACT_DATA, cli

REACT = ("Thought: I need to search X.\nAction: search[X]\nObservation: X is in Paris.\n"
         "Thought: So Paris.\nAction: finish[Paris]\nObservation: Episode finished, reward = 1\n")
MMLU = ("A. red\nB. green\nC. blue\nD. black\nThought: Grass is green, so the answer is B.\n"
        "Action: finish[B]\nObservation: Episode finished, reward = 1\n")
COT = "Thought: Penguins cannot fly, so no.\nAction: finish[no]\nObservation: Episode finished"


def release(tmp_path):
    """A small release in FireAct's layout: a HotpotQA file and a multi-task file."""
    root = tmp_path / "FireAct" / "data" / "finetune" / "alpaca_format"
    root.mkdir(parents=True)
    (root / "hotpotqa.json").write_text(json.dumps([
        {"instruction": "Where is X?", "input": "", "output": REACT},
        {"instruction": "Is X bigger than Y?", "input": "",
         "output": "Thought: Yes.\nAction: finish[yes]\nObservation: Episode finished"}]))
    (root / "multitask.json").write_text(json.dumps([
        {"instruction": "Where is X?", "input": "", "output": REACT},
        {"instruction": "Is X bigger than Y?", "input": "",
         "output": "Thought: Yes.\nAction: finish[yes]\nObservation: Episode finished"},
        {"instruction": "Question: What colour is grass?", "input": "", "output": MMLU},
        {"instruction": "Can penguins fly to the moon and back home?", "input": "",
         "output": COT},
        {"instruction": "broken", "input": "", "output": "no turns at all"},
        "not even a row",
    ]))
    return tmp_path / "FireAct"


def test_import_parses_repairs_labels_and_reports(tmp_path, caplog):
    reports = import_release(release(tmp_path), tmp_path / "out", index=None)
    multi = next(r for r in reports if r.path.name == "multitask.json")
    assert (multi.rows, multi.imported, multi.options_moved) == (6, 4, 1)
    assert len(multi.skipped) == 2 and "row 4: no Thought/Action turn" in multi.skipped[0]
    assert "row 5: neither chat" in multi.skipped[1]
    examples, skipped = read_examples(tmp_path / "out" / "alpaca_format" / "multitask.json")
    assert not skipped
    labels = {e.question.split("\n")[0]: (e.task, e.method) for e in examples}
    assert labels == {"Where is X?": ("hotpotqa", "react"),
                      "Is X bigger than Y?": ("hotpotqa", "cot"),  # in the HotpotQA file
                      "What colour is grass?": ("mmlu", "cot"),
                      "Can penguins fly to the moon and back home?": ("strategyqa", "cot")}
    grass = next(e for e in examples if e.task == "mmlu")
    assert grass.question == "What colour is grass?\nA. red\nB. green\nC. blue\nD. black"
    row = to_row(grass, "alpaca")
    assert row["output"] == "Thought: Grass is green, so the answer is B.\nAction: finish[B]"
    assert "Episode finished" not in json.dumps(to_row(examples[0], "chat"))


def test_a_multitask_file_alone_is_labelled_from_the_hotpotqa_file_beside_it(tmp_path):
    """Given alone, multitask_multimethod.json labelled its 733 HotpotQA rows strategyqa."""
    src = release(tmp_path) / "data" / "finetune" / "alpaca_format" / "multitask.json"
    [report] = import_release(src, tmp_path / "out", index=None)
    assert report.by_task_method[("hotpotqa", "react")] == 1
    assert report.by_task_method[("hotpotqa", "cot")] == 1
    alone = tmp_path / "alone" / "multitask.json"
    alone.parent.mkdir()
    alone.write_bytes(src.read_bytes())
    with pytest.raises(FireactError, match="hotpotqa.*none is given or beside it"):
        import_release(alone, tmp_path / "out2", index=None)


def test_decontamination_finds_exact_and_near_duplicates():
    index = EvalIndex({"strategyqa": ["Can penguins fly to the moon and back home?"],
                       "hotpotqa": ["Which magazine was started first, Arthur's Magazine or "
                                    "First for Women?"]})
    step = parse_step("Thought: t\nAction: finish[no]")
    examples = [Example("Question: can penguins fly to the Moon, and back home", [step]),
                Example("Which magazine was started first: Arthur's Magazine or First for "
                        "Women?!", [step]),
                Example("Which magazine was started earlier, Arthur's Magazine or First "
                        "for Women?", [step]),  # one word changed: near
                Example("Which river is longer, the Nile or the Amazon?", [step])]
    kept, report = decontaminate(examples, index)
    assert [e.question for e in kept] == ["Which river is longer, the Nile or the Amazon?"]
    assert report.counts() == {"strategyqa": {"exact": 1},
                               "hotpotqa": {"exact": 1, "near": 1}}
    assert "dropped 1 exact and 1 near-duplicate questions of hotpotqa" in report.lines()[0]


def _examples(task, method, n):
    steps = parse_transcript(REACT).steps
    return [Example(f"{task} {method} {i}?", steps, task, method) for i in range(n)]


@given(st.lists(st.integers(1, 5000), min_size=1, max_size=60))
def test_p95_lies_within_the_data(lengths):
    """``data stats`` printed a p95 above the max (statistics' exclusive method)."""
    assert min(lengths) <= p95(lengths) <= max(lengths)


def test_mix_counts_shares_presets_dedup_and_errors():
    pool = (_examples("hotpotqa", "react", 10) + _examples("hotpotqa", "cot", 4)
            + _examples("mmlu", "react", 6) + _examples("hotpotqa", "react", 10))  # dups
    chosen = mix(pool, "hotpotqa:react=5,hotpotqa:cot=0.5,mmlu:*=1", seed=3)
    counts = {(t, m): sum(1 for e in chosen if (e.task, e.method) == (t, m))
              for t, m in [("hotpotqa", "react"), ("hotpotqa", "cot"), ("mmlu", "react")]}
    assert counts == {("hotpotqa", "react"): 5, ("hotpotqa", "cot"): 2, ("mmlu", "react"): 6}
    assert mix(pool, "hotpotqa:react=5,hotpotqa:cot=0.5,mmlu:*=1", seed=3) == chosen
    assert len(mix(pool, "single-task")) == 10  # duplicates dropped
    with pytest.raises(FireactError, match="asks for 11 hotpotqa:react rows; the data has 10"):
        mix(pool, "hotpotqa:react=11")
    with pytest.raises(FireactError, match="no strategyqa:react rows"):
        mix(pool, "multi-task")
    with pytest.raises(FireactError, match="bad mix item"):
        mix(pool, "hotpotqa=5")


@pytest.mark.parametrize("spec", ["hotpotqa:react=5,hotpotqa:react=5",
                                  "hotpotqa:*=1.0,hotpotqa:react=1.0"])
def test_mix_refuses_a_pair_asked_for_twice(spec):
    """Two items drawing from one pair used to repeat its rows (20 rows, 11 unique)."""
    with pytest.raises(FireactError, match="hotpotqa:react is asked for twice"):
        mix(_examples("hotpotqa", "react", 10) + _examples("hotpotqa", "cot", 4), spec)


@pytest.mark.parametrize("amount", ["nan", "inf", "-1"])
def test_mix_refuses_amounts_that_are_not_numbers_of_rows(amount):
    with pytest.raises(FireactError, match="bad mix item"):
        mix(_examples("hotpotqa", "react", 10), f"hotpotqa:react={amount}")


def test_cli_import_mix_stats(tmp_path, untrained_model):
    src = release(tmp_path)

    proc = cli("data", "import-fireact", str(src), "--out", str(tmp_path / "imp"),
               "--no-decontaminate")
    assert proc.returncode == 0, proc.stderr
    assert "multitask.json: 6 rows, 4 imported" in proc.stdout
    imported = tmp_path / "imp" / "alpaca_format" / "multitask.json"
    proc = cli("data", "mix", str(imported), "--mix", "hotpotqa:*=1,mmlu:cot=1", "--out",
               str(tmp_path / "mix.jsonl"))
    assert proc.returncode == 0 and "3 rows" in proc.stdout, proc.stderr
    assert all("messages" in json.loads(line)
               for line in (tmp_path / "mix.jsonl").read_text().splitlines())
    proc = cli("data", "stats", str(imported), "--tokenizer", str(untrained_model), "--png",
               str(tmp_path / "h.png"))
    assert proc.returncode == 0, proc.stderr
    assert "| mmlu | cot | 1 | 1.00 |" in proc.stdout and "over the cutoff (512" in proc.stdout
    assert (tmp_path / "h.png").stat().st_size > 1000


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_fireact_release_imports_whole_and_decontaminated(tmp_path):
    """Every released row parses and renders back; the StrategyQA dev questions FireAct's
    multi-task files hold are found (37 in multitask, at least 55 in multitask_multimethod)."""
    from fireact_eval.data.decontaminate import shipped_eval_sets

    index = EvalIndex(shipped_eval_sets(str(FIREACT_DATA)))
    reports = {f"{r.path.parent.name}/{r.path.name}": r
               for r in import_release(FIREACT_DATA, tmp_path, index)}
    assert set(reports) == set(RELEASED)
    for name, report in reports.items():
        assert not report.skipped, (name, report.skipped[:3])
        assert report.rows == RELEASED[name] - (name == "gpt_format/hotpotqa_multimethod.jsonl")
        dropped = report.decontamination.counts().get("strategyqa", {})
        if "multitask" in name:
            assert dropped["exact"] >= (55 if "multimethod" in name else 37)
        assert report.imported == report.rows - len(report.decontamination.matches)
    alpaca = reports["alpaca_format/multitask.json"]
    assert alpaca.options_moved == 456
    examples, _ = read_examples(tmp_path / "alpaca_format" / "multitask.json")
    for example in examples:
        row = to_row(example, "alpaca")
        assert to_text(parse_transcript(row["output"]).steps) == row["output"]


def test_github_fetch_at_the_pinned_commit(tmp_path, monkeypatch):
    """``import-fireact github`` downloads each released file once, through the same path
    a user's online run takes (here from a file:// mirror of raw.githubusercontent.com)."""
    from fireact_eval.data.fireact_release import FIREACT_COMMIT, FIREACT_REPO, release_files

    mirror = tmp_path / "mirror" / FIREACT_REPO / FIREACT_COMMIT / "data" / "finetune"
    for name in RELEASED:
        (mirror / name).parent.mkdir(parents=True, exist_ok=True)
        (mirror / name).write_text("[]" if name.endswith(".json") else "")
    monkeypatch.setenv("FIREACT_GITHUB_RAW", (tmp_path / "mirror").as_uri())
    monkeypatch.setenv("FIREACT_EVAL_CACHE", str(tmp_path / "cache"))
    files = release_files("github")
    assert len(files) == len(RELEASED) and all(f.is_file() for f in files)
    assert str(tmp_path / "cache" / "fireact" / FIREACT_COMMIT) in str(files[0])
    monkeypatch.setenv("FIREACT_GITHUB_RAW", (tmp_path / "nowhere").as_uri())
    assert release_files("github") == files  # cached: no second download
