"""``fireact-eval generate``: a teacher through lm-eval on training questions, killed and
resumed without regenerating, then converted and decontaminated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from fast_python import python as fast_python

from fireact_eval.data.decontaminate import EvalIndex
from fireact_eval.generate import GenerateConfig, generate


def _training_questions(root):
    """The tiny agent's demo questions as HotpotQA's training split, in FireAct's layout."""
    from tiny_agent import demo_questions

    (root / "hotpotqa").mkdir(parents=True)
    rows = [{"question": q["question"], "answer": q["answer"]} for q in demo_questions()]
    (root / "hotpotqa" / "train.json").write_text(json.dumps(rows))
    return rows


def test_generate_resumes_after_a_kill_and_converts(tiny_model, tmp_path):
    from openai_server import CompletionServer

    rows = _training_questions(tmp_path / "data")
    server = CompletionServer(str(tiny_model), latency=1.0)
    out = tmp_path / "gen"
    args = [fast_python(), "-m", "fireact_eval.cli", "generate", "--model",
            "local-completions", "--model_args",
            f"base_url={server.base_url},model=tiny,tokenizer_backend=huggingface,"
            f"tokenizer={tiny_model},tokenized_requests=False,max_retries=1",
            "--batch_size", "8", "--tasks", "hotpotqa", "--methods", "react,cot", "--n", "8",
            "--data_dir", str(tmp_path / "data"), "--metadata",
            "search=local,shots=zeroshot,max_turns=4", "--keep-contaminated", "--out", str(out)]
    env = {**os.environ, "FIREACT_EVAL_TASKS_ONLY": "1", "TOKENIZERS_PARALLELISM": "false"}
    try:
        killed = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        react = out / "runs" / "hotpotqa_react"
        while not (react / "pair.json").is_file():  # its marker, written after its files
            assert killed.poll() is None and time.time() < deadline, "react pair never ended"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)  # the cot pair in flight
        killed.wait()
        server.settle()  # the request the kill left in flight
        before = server.prompts
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        resumed = server.prompts - before
        assert resumed <= 8  # only the cot pair's one turn for 8 questions, react not rerun
        assert "1 done before" in proc.stdout
        train = json.loads((out / "train.json").read_text())

        # a pair killed while its files were written (results whole, samples cut short) is
        # not done: it runs again, from the turn cache, and the training file is whole again
        (react / "pair.json").unlink()
        samples = next(react.rglob("samples_*.jsonl"))
        samples.write_bytes(samples.read_bytes()[: samples.stat().st_size // 2])
        before = server.prompts
        again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        assert server.prompts == before  # every turn came from the cache
        assert "unfinished" in again.stderr and "1 done before" in again.stdout
        assert json.loads((out / "train.json").read_text()) == train

        # a finished pair whose samples file was cut later (its marker intact) is not read
        # as done: it no longer matches the line count and hash the marker vouches for
        samples = next(react.rglob("samples_*.jsonl"))
        samples.write_text("".join(samples.read_text().splitlines(keepends=True)[:3]))
        cut = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert cut.returncode == 0, cut.stderr[-3000:]
        assert server.prompts == before and "changed after it finished" in cut.stdout
        assert json.loads((out / "train.json").read_text()) == train

        # the same folder with other settings: refused before the teacher loads
        changed = [a.replace("max_turns=4", "max_turns=2") for a in args]
        refused = subprocess.run(changed, env=env, capture_output=True, text=True, timeout=600)
        assert refused.returncode != 0 and server.prompts == before
        error = refused.stderr.strip().splitlines()[-1]
        assert "other settings" in error and "max_turns" in error, refused.stderr[-2000:]
        assert json.loads((out / "generate.json").read_text())["metadata"] == [
            "search=local", "shots=zeroshot", "max_turns=4"]
    finally:
        server.close()
    assert {r["method"] for r in train} <= {"react", "cot"} and train
    assert {r["instruction"] for r in train} <= {r["question"] for r in rows}
    settings = json.loads((out / "generate.json").read_text())
    assert settings["n"] == 8 and settings["methods"] == ["react", "cot"]
    results = json.loads(next(react.rglob("results_*.json")).read_text())
    meta = results["configs"]["fireact_hotpotqa"]["metadata"]
    assert (meta["split"], meta["n"], meta["method"]) == ("train", 8, "react")

    # converting again with an evaluation set that holds one of the questions drops it
    index = EvalIndex({"hotpotqa": [train[0]["instruction"]]})
    cfg = GenerateConfig(out=str(out), model="local-completions", model_args=args[7],
                         tasks=["hotpotqa"], methods=["react", "cot"], n=8,
                         data_dir=str(tmp_path / "data"),
                         metadata=["search=local", "shots=zeroshot", "max_turns=4"])
    report = generate(cfg, index)  # every pair done: nothing runs, nothing loads
    again = json.loads((out / "train.json").read_text())
    assert len(again) == len(train) - 1
    assert any("dropped 1 exact" in line for line in report.lines())

    # the same runs as tools rows (messages + schemas), read back to the same turns
    from dataclasses import replace

    from fireact_eval.data.examples import read_examples
    from fireact_eval.data.segments import read_layout

    generate(replace(cfg, format="tools"), index)
    assert read_layout(out / "train.jsonl")[1] == "tools"
    tools_rows, skipped = read_examples(out / "train.jsonl")
    assert not skipped and len(tools_rows) == len(again)
    assert {e.question for e in tools_rows} == {r["instruction"] for r in again}


def test_each_generate_run_indexes_our_task_folder_alone(tmp_path, monkeypatch):
    """lm-eval's ~10k task files cost ~12 s per task x method run to index; every task
    ``generate`` runs is ours."""
    import lm_eval.evaluator

    from fireact_eval.harness.evaluate import run_and_save

    seen = {}
    monkeypatch.setattr(lm_eval.evaluator, "simple_evaluate",
                        lambda **kwargs: seen.update(kwargs))  # None: "not the main process"
    run_and_save(None, "fireact_demo", {"shots": "zeroshot"}, tmp_path / "out",
                 tmp_path / "cache" / "turns")
    names = seen["task_manager"].all_tasks
    assert "fireact_demo" in names and all(n.startswith("fireact") for n in names)


def test_generate_refuses_a_folder_it_did_not_make_without_force(tmp_path):
    """Checked before the evaluation sets or the teacher load: a folder holding someone
    else's files is not written into; one generate made (its generate.json) is resumed."""
    import pytest

    from fireact_eval.errors import FireactError

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FireactError, match="holds files generate did not make"):
        GenerateConfig(out=str(tmp_path)).check_out()
    GenerateConfig(out=str(tmp_path), force=True).check_out()
    (tmp_path / "generate.json").write_text("{}")
    GenerateConfig(out=str(tmp_path)).check_out()
    GenerateConfig(out=str(tmp_path / "new")).check_out()
