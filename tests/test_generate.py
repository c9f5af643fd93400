"""``fireact-eval generate``: a teacher through lm-eval on training questions, killed and
resumed without regenerating, then converted and decontaminated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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
    args = [sys.executable, "-m", "fireact_eval.cli", "generate", "--model",
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
        while not list(react.rglob("results_*.json")):
            assert killed.poll() is None and time.time() < deadline, "react pair never ended"
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)  # the cot pair in flight
        killed.wait()
        time.sleep(server.latency + 1)
        before = server.prompts
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        resumed = server.prompts - before
    finally:
        server.close()
    assert resumed <= 8  # only the cot pair's one turn for 8 questions, react not rerun
    assert "1 done before" in proc.stdout
    train = json.loads((out / "train.json").read_text())
    assert train and {r["method"] for r in train} <= {"react", "cot"}
    assert {r["instruction"] for r in train} <= {r["question"] for r in rows}
    settings = json.loads((out / "generate.json").read_text())
    assert settings["n"] == 8 and settings["methods"] == ["react", "cot"]
    results = json.loads(next(react.rglob("results_*.json")).read_text())
    meta = results["configs"]["fireact_hotpotqa"]["metadata"]
    assert (meta["split"], meta["n"], meta["method"]) == ("train", 8, "react")

    # converting again with an evaluation set that holds one of the questions drops it
    index = EvalIndex({"hotpotqa": [train[0]["instruction"]]})
    cfg = GenerateConfig(out=str(out), model="local-completions", tasks=["hotpotqa"],
                         methods=["react", "cot"], n=8)
    report = generate(cfg, index)  # every pair done: nothing runs, nothing loads
    again = json.loads((out / "train.json").read_text())
    assert len(again) == len(train) - 1
    assert any("dropped 1 exact" in line for line in report.lines())
