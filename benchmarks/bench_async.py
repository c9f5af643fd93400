"""Concurrent (each trajectory on its own reply) vs step-synchronous rollouts on an API
backend: lm-eval's ``local-completions`` against a loopback OpenAI-compatible server that
adds a random 50-500 ms to every request and answers with a scripted agent (no model, so the
time measured is the harness's and the network's).  Same questions, same greedy answers.

    python benchmarks/bench_async.py            # 64 questions, 64 requests in flight
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

from lm_eval.api.instance import Instance

from fireact_eval.harness.backend import react_generate
from fireact_eval.prompts import build_prompt
from fireact_eval.questions import demo
from fireact_eval.rollout_settings import RolloutRequest, RolloutSettings
from fireact_eval.trajectory import Trajectory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from openai_server import CompletionServer  # noqa: E402


def scripted_agent(prompt: str) -> str:
    """Searches 1-5 times (fixed per question), then answers: a deterministic policy."""
    question = prompt.split("\n", 1)[0]
    done = prompt.count("\nObservation:")
    if done < 1 + zlib.crc32(question.encode()) % 5:
        words = re.findall(r"[A-Z][a-z]+", question) or ["thing"]
        return f"Thought: look up more.\nAction: search[{words[done % len(words)]}]"
    return "Thought: I know it.\nAction: finish[Kettwick]"


def run(lm, docs, settings: RolloutSettings) -> tuple[list[Trajectory], float]:
    gen_kwargs = {"until": ["\nObservation"], "max_gen_toks": 64, "do_sample": False}
    rollout = RolloutRequest(settings)
    reqs = [Instance("react_generate", {**doc, "id": f"{doc['id']}-{i}"},
                     (build_prompt(doc["question"], shots="zeroshot"), gen_kwargs, rollout),
                     idx=0, doc_id=i) for i, doc in enumerate(docs)]
    started = time.perf_counter()
    outputs = react_generate(lm, reqs)
    return [Trajectory.from_json(o) for o in outputs], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, nargs=2, default=(0.05, 0.5))
    args = parser.parse_args()

    import lm_eval.models  # noqa: F401  (registers the backends)
    from lm_eval.api.registry import get_model

    server = CompletionServer(None, latency=tuple(args.latency), respond=scripted_agent)
    try:
        lm = get_model("local-completions").create_from_arg_string(
            f"base_url={server.base_url},model=scripted,tokenized_requests=False,"
            "tokenizer_backend=None,"
            f"num_concurrent={args.concurrency},max_retries=1", {"batch_size": 1})
        questions = list(demo()["test"])
        docs = [questions[i % len(questions)] for i in range(args.n)]
        base = RolloutSettings(search="local", shots="zeroshot", max_turns=8)
        synced, sync_s = run(lm, docs, replace(base, concurrency=1))
        concurrent, conc_s = run(lm, docs, replace(base, concurrency=args.concurrency))
    finally:
        server.close()
    same = sum(a.answer == b.answer and [s.text for s in a.steps] == [s.text for s in b.steps]
               for a, b in zip(synced, concurrent, strict=True))
    print(json.dumps({
        "questions": args.n, "concurrency": args.concurrency,
        "latency_s": list(args.latency), "turns": sum(t.turns for t in synced),
        "step_synchronous_s": round(sync_s, 2), "concurrent_s": round(conc_s, 2),
        "speedup": round(sync_s / conc_s, 2), "same_trajectories": f"{same}/{args.n}",
    }, indent=2))


if __name__ == "__main__":
    main()
