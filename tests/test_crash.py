"""kill -9 half way through an ``lm_eval --use_cache`` run, then rerun: the turns it had
generated are not generated again, the results equal an uninterrupted run's, and the killed
run left no result file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from fast_python import python as fast_python

from conftest import read_outputs, run_lm_eval


def _trajectories(folder):
    _, samples = read_outputs(folder, "fireact_demo")
    return [{**json.loads(s["resps"][0][0]), "seconds": 0} for s in samples]


def test_a_killed_run_resumes_without_regenerating(tiny_model, tmp_path):
    from openai_server import CompletionServer

    server = CompletionServer(str(tiny_model), latency=1.5)
    args = ["--model", "local-completions", "--model_args",
            f"base_url={server.base_url},model=tiny,tokenizer_backend=huggingface,"
            f"tokenizer={tiny_model},tokenized_requests=False,max_retries=1",
            "--tasks", "fireact_demo", "--limit", "8", "--batch_size", "8",
            "--metadata", "shots=zeroshot", "max_turns=4", "--log_samples"]
    try:
        run_lm_eval(*args, "--use_cache", str(tmp_path / "clean"),
                    "--output_path", str(tmp_path / "clean_out"))
        total, server.prompts = server.prompts, 0

        killed = subprocess.Popen(
            [fast_python(), "-m", "lm_eval", *args, "--use_cache", str(tmp_path / "c"),
             "--output_path", str(tmp_path / "killed_out")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "FIREACT_EVAL_TASKS_ONLY": "1", "TOKENIZERS_PARALLELISM": "false"})
        deadline, started = time.time() + 300, server.started
        while server.started < started + 2 and killed.poll() is None:
            assert time.time() < deadline, "the run never reached its second turn"
            time.sleep(0.05)
        # half way: turn 1 cached, turn 2 received by the server, which holds every request
        # for its latency (1.5 s), so the kill lands while turn 2 is in flight
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert server.requests < server.started, "turn 2 was answered before the kill"
        server.settle()  # the server finishes the orphaned request
        before_kill, server.prompts = server.prompts, 0

        run_lm_eval(*args, "--use_cache", str(tmp_path / "c"),
                    "--output_path", str(tmp_path / "resumed_out"))
        resumed = server.prompts
    finally:
        server.close()
    assert not list((tmp_path / "killed_out").rglob("results_*.json"))
    assert 0 < before_kill < total and 0 < resumed < total
    # what the killed run generated and cached is not generated again; only the batch in
    # flight when it died (8 prompts) is
    assert before_kill + resumed == total + 8
    assert _trajectories(tmp_path / "resumed_out") == _trajectories(tmp_path / "clean_out")
