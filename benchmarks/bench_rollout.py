"""Batched rollout engine vs a sequential, one-question-at-a-time loop like FireAct's.

Both paths run the harness's own ``react_generate`` on lm-eval's ``hf`` backend (or ``vllm``,
prefix caching on, with ``--backend vllm`` from the ``.venv-vllm`` that ``.ci/vllm`` builds)
with the same model, questions and greedy decoding; the sequential path simply gives it one
question at a time.  Reports wall time, speedup, answer agreement, and the harness overhead
of the batched run: 1 - (time inside generate_until) / (wall time).

    python benchmarks/bench_rollout.py            # SmolLM2-135M, 32 demo questions
    .venv-vllm/bin/python benchmarks/bench_rollout.py --backend vllm
"""

from __future__ import annotations

import argparse
import json
import time

from lm_eval.api.instance import Instance

from fireact_eval.harness.backend import react_generate
from fireact_eval.offline_model import smollm2_path
from fireact_eval.prompts import build_prompt
from fireact_eval.questions import demo
from fireact_eval.rollout_settings import RolloutRequest, RolloutSettings
from fireact_eval.trajectory import Trajectory


def load_lm(backend: str, model: str, batch_size: int, dtype: str):
    """lm-eval's backend, timing every generate_until call in ``lm.generate_seconds``."""
    if backend == "vllm":
        from lm_eval.models.vllm_causallms import VLLM

        lm = VLLM(pretrained=model, dtype=dtype, batch_size="auto", enforce_eager=True,
                  enable_prefix_caching=True, max_model_len=4096)
    else:
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=model, device="cpu", batch_size=batch_size, dtype=dtype)
    untimed = lm.generate_until

    def generate_until(requests, disable_tqdm=False):
        started = time.perf_counter()
        try:
            return untimed(requests, disable_tqdm=disable_tqdm)
        finally:
            lm.generate_seconds += time.perf_counter() - started

    lm.generate_until, lm.generate_seconds = generate_until, 0.0
    return lm


def instances(docs, settings: RolloutSettings, gen_kwargs: dict) -> list[Instance]:
    rollout = RolloutRequest(settings)
    return [
        Instance("react_generate", doc, (build_prompt(doc["question"], shots=settings.shots),
                                         gen_kwargs, rollout), idx=0)
        for doc in docs
    ]


def timed_run(lm, batches: list[list[Instance]]) -> tuple[list[Trajectory], float, float]:
    """Run ``batches`` one after another; vLLM starts from an empty prefix cache, so the
    second run does not find the first run's turns already computed."""
    if hasattr(lm.model, "reset_prefix_cache"):
        lm.model.reset_prefix_cache()
    lm.generate_seconds = 0.0
    started = time.perf_counter()
    outputs = [out for batch in batches for out in react_generate(lm, batch)]
    wall = time.perf_counter() - started
    return [Trajectory.from_json(o) for o in outputs], wall, lm.generate_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="HF folder (default: SmolLM2-135M)")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--max-gen-toks", type=int, default=96)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--shots", default="fewshot", choices=["fewshot", "zeroshot"])
    parser.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    args = parser.parse_args()

    lm = load_lm(args.backend, args.model or str(smollm2_path()), args.n, args.dtype)
    docs = list(demo()["test"])[: args.n]
    settings = RolloutSettings(max_turns=args.max_turns, search="local", shots=args.shots)
    gen_kwargs = {"until": ["\nObservation", "\nQuestion:"], "max_gen_toks": args.max_gen_toks,
                  "do_sample": False, "temperature": 0.0}
    reqs = instances(docs, settings, gen_kwargs)

    batched, b_wall, b_gen = timed_run(lm, [reqs])
    sequential, s_wall, s_gen = timed_run(lm, [[r] for r in reqs])
    same = sum(a.answer == b.answer and a.turns == b.turns for a, b in zip(batched, sequential,
                                                                           strict=True))
    report = {
        "backend": args.backend, "questions": len(reqs), "shots": args.shots,
        "max_turns": args.max_turns,
        "max_gen_toks": args.max_gen_toks, "dtype": args.dtype,
        "batched_wall_s": round(b_wall, 1), "sequential_wall_s": round(s_wall, 1),
        "speedup": round(s_wall / b_wall, 2),
        "batched_overhead": round(1 - b_gen / b_wall, 4),
        "sequential_overhead": round(1 - s_gen / s_wall, 4),
        "same_answer_and_turns": f"{same}/{len(reqs)}",
        "turns_batched": sum(t.turns for t in batched),
        "gen_tokens_batched": sum(t.gen_tokens for t in batched),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
