"""API backends: trajectories advance on their own replies, with bounded concurrency, to
the same greedy trajectories as the step-synchronous engine; the hf batch-size trap."""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, replace
from pathlib import Path

from lm_eval.api.instance import Instance

from fireact_eval.harness.backend import react_generate
from fireact_eval.prompts import build_prompt
from fireact_eval.questions import demo
from fireact_eval.rollout import run_concurrently
from fireact_eval.rollout_settings import RolloutRequest, RolloutSettings
from fireact_eval.trajectory import Trajectory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_async import scripted_agent  # noqa: E402


def _requests(settings: RolloutSettings, n: int) -> list[Instance]:
    gen_kwargs = {"until": ["\nObservation"], "max_gen_toks": 64, "do_sample": False}
    docs = list(demo()["test"])[:n]
    return [Instance("react_generate", doc, (build_prompt(doc["question"], shots="zeroshot"),
                                             gen_kwargs, RolloutRequest(settings)),
                     task_name="fireact_demo", idx=0, doc_id=i) for i, doc in enumerate(docs)]


def test_concurrent_rollouts_equal_step_synchronous_ones(monkeypatch):
    import lm_eval.models  # noqa: F401
    from lm_eval.api.registry import get_model

    from fireact_eval.harness import backend as harness

    from openai_server import CompletionServer

    used = []
    monkeypatch.setattr(harness, "run_concurrently", lambda *a, **k: used.append(k) or
                        run_concurrently(*a, **k))
    server = CompletionServer(None, latency=(0.02, 0.2), respond=scripted_agent)
    try:
        lm = get_model("local-completions").create_from_arg_string(
            f"base_url={server.base_url},model=s,tokenized_requests=False,tokenizer_backend=None,"
            "num_concurrent=8,max_retries=1", {"batch_size": 1})
        base = RolloutSettings(search="local", shots="zeroshot", max_turns=8, noise="random")
        synced = react_generate(lm, _requests(replace(base, concurrency=1), 12))
        requests_before = server.requests
        concurrent = react_generate(lm, _requests(base, 12))  # 0: lm-eval's num_concurrent
    finally:
        server.close()

    def comparable(output):
        return {**Trajectory.from_json(output).__dict__, "seconds": 0, "steps": [
            asdict(s) for s in Trajectory.from_json(output).steps]}

    assert [comparable(o) for o in concurrent] == [comparable(o) for o in synced]
    assert server.requests - requests_before == sum(
        Trajectory.from_json(o).turns for o in concurrent)  # one request per reply
    assert lm._concurrent == 8  # restored
    assert [k["concurrency"] for k in used] == [8]  # only the second run, at num_concurrent


def test_batch_size_one_on_a_local_backend_is_named_once(caplog):
    from fireact_eval.harness import backend as harness

    class OneAtATime:
        batch_size = 1

    harness._WARNED.clear()
    with caplog.at_level(logging.WARNING, logger="fireact_eval.harness.backend"):
        harness._warn_one_at_a_time(OneAtATime(), live=36)
        harness._warn_one_at_a_time(OneAtATime(), live=36)
        harness._warn_one_at_a_time(OneAtATime(), live=1)
    [record] = caplog.records
    assert "--batch_size auto or --batch_size 36" in record.getMessage()
