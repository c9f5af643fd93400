"""Nothing a command reads, and nothing it did not make, is written over (issue 35): every
command that writes refuses an output that is one of its inputs (even with --force), and one
that exists without --force / --overwrite; each refusal is one line, before any work, with
the file as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fireact_eval.errors import FireactError
from fireact_eval.trainers.train import TrainConfig

from conftest import cli, cli_in_process

RESULTS = "results_2026-12-03T10-00-00.000001.json"
SAMPLES = "samples_fireact_demo_2026-12-03T10-00-00.000001.jsonl"


@pytest.fixture
def run(tmp_path) -> Path:
    """A run folder as ``lm_eval --output_path RUN --log_samples`` lays it out (the contents
    are never read: every refusal comes first)."""
    folder = tmp_path / "run" / "model"
    folder.mkdir(parents=True)
    (folder / RESULTS).write_text('{"results": {}}')
    (folder / SAMPLES).write_text('{"doc_id": 0}\n')
    return tmp_path / "run"


def refused(proc, said: str) -> None:
    assert proc.returncode != 0, proc.stdout
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and said in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [
    ("report", "{run}", "--out", "{results}"),
    ("report", "prompted={run}", "--out", "{results}", "--force"),
    ("results", "table", "{run}", "--out", "{results}", "--force"),
    ("convert", "{run}", "--out", "{samples}", "--no-decontaminate", "--force"),
    ("gate", "--baseline", "{run}", "--candidate", "{run}", "--report", "{results}",
     "--force"),
    ("index", "build", "{samples}", "--out", "{samples}", "--force"),
    ("data", "mix", "{samples}", "--mix", "demo:react=1", "--out", "{samples}", "--force"),
])
def test_no_command_writes_over_its_own_input(run, command):
    """``report RUN --out RUN/model/results_<date>.json`` (a tab-key slip) once wrote the
    page over the results file it had just read, exit 0."""
    files = {"run": str(run), "results": str(run / "model" / RESULTS),
             "samples": str(run / "model" / SAMPLES)}
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    refused(cli_in_process(*(a.format(**files) for a in command)),
            "is one of this command's inputs")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_an_existing_output_needs_force_and_force_writes_it(tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"instruction": "q", "input": "", "output":
                                 "Thought: t\nAction: finish[a]", "task": "demo",
                                 "method": "react"}]))
    out = tmp_path / "mixed.json"
    out.write_text("mine")
    refused(cli_in_process("data", "mix", str(rows), "--mix", "demo:react=1", "--out",
                           str(out)), "exists; give --force (or --overwrite)")
    assert out.read_text() == "mine"
    for flag in ("--force", "--overwrite"):
        assert cli_in_process("data", "mix", str(rows), "--mix", "demo:react=1", "--out",
                              str(out), flag).returncode == 0
        assert json.loads(out.read_text())[0]["instruction"] == "q"


def test_results_table_and_report_refuse_an_existing_file(run, tmp_path):
    page = tmp_path / "report.html"
    page.write_text("someone's page")
    refused(cli_in_process("report", str(run), "--out", str(page)), "exists")
    table = tmp_path / "table.md"
    table.write_text("notes")
    refused(cli_in_process("results", "table", str(run), "--out", str(table)), "exists")
    assert page.read_text() == "someone's page" and table.read_text() == "notes"


def test_import_fireact_refuses_to_write_over_the_release(tmp_path):
    """It keeps each file's layout folder and name: --out the release's parent folder would
    import each file onto itself."""
    release = tmp_path / "alpaca_format"
    release.mkdir()
    (release / "hotpotqa.json").write_text("[]")
    refused(cli_in_process("data", "import-fireact", str(release / "hotpotqa.json"), "--out",
                           str(tmp_path), "--no-decontaminate", "--force"),
            "is one of this command's inputs")
    assert (release / "hotpotqa.json").read_text() == "[]"


@pytest.mark.parametrize("command", [
    ("results", "plot", "{run}", "--out", "{tmp}/out.xyz"),
    ("data", "stats", "{tmp}/rows.json", "--png", "{tmp}/hist.xyz"),
])
def test_a_figure_suffix_matplotlib_cannot_write_is_one_line(run, tmp_path, command):
    """Once matplotlib's ValueError traceback, after the tables were built."""
    proc = cli_in_process(*(a.format(run=run, tmp=tmp_path) for a in command))
    assert proc.returncode == 2 and "matplotlib cannot write .xyz files" in proc.stderr
    assert ".png" in proc.stderr and ".svg" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- train --out, train --base

def _model_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def test_train_refuses_a_trained_model_a_base_and_a_stranger_folder(tmp_path):
    """Through ``check_paths()`` (before anything loads)."""
    base = _model_folder(tmp_path / "base")
    trained = tmp_path / "adapter"
    trained.mkdir()
    (trained / "fireact_eval.json").write_text("{}")  # the card of a finished run
    stranger = tmp_path / "documents"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    for out, said in ((trained, "already holds a trained model"),
                      (base, "is the --base folder"),
                      (stranger, "holds files train did not make")):
        with pytest.raises(FireactError, match=said):
            TrainConfig(base=str(base), data="d", out=str(out)).check_paths()
    TrainConfig(base=str(base), data="d", out=str(trained), force=True).check_paths()
    TrainConfig(base=str(base), data="d", out=str(trained), resume=True).check_paths()
    with pytest.raises(FireactError, match="is the --base folder"):  # never, even forced
        TrainConfig(base=str(base), data="d", out=str(base), force=True).check_paths()
    with pytest.raises(FireactError, match="is not a model folder"):
        TrainConfig(base=str(stranger), data="d", out=str(tmp_path / "o")).check_paths()


def test_train_over_a_trained_model_needs_force_and_replaces_it(untrained_model, train_file,
                                                                tmp_path):
    """Once it trained over the old adapter and card, exit 0, no warning."""
    out = tmp_path / "adapter"
    args = ("train", "--base", str(untrained_model), "--data", str(train_file), "--out",
            str(out), "--max-steps", "1", "--save-steps", "1", "--batch-size", "2")
    assert cli(*args).returncode == 0
    card = (out / "fireact_eval.json").read_text()
    refused(cli(*args, "--max-steps", "2"), "already holds a trained model")
    assert (out / "fireact_eval.json").read_text() == card
    assert cli(*args, "--max-steps", "2", "--force").returncode == 0
    assert json.loads((out / "fireact_eval.json").read_text())["global_step"] == 2
    # the old run's checkpoints went with it: a later --resume cannot pick one up
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-1", "checkpoint-2"]


def test_a_lora_target_the_model_lacks_is_one_line_naming_those_it_has(untrained_model,
                                                                       train_file, tmp_path):
    """Once peft's NoMatchingPeftModuleError traceback, after the model had loaded."""
    proc = cli("train", "--base", str(untrained_model), "--data", str(train_file), "--out",
               str(tmp_path / "o"), "--lora-target", "nosuchmodule", "--max-steps", "1")
    refused(proc, "--target-modules: nosuchmodule names no module of")
    assert "q_proj" in proc.stderr and "all-linear" in proc.stderr


def test_a_base_folder_that_is_not_a_model_is_one_line(tmp_path, train_file):
    """Once a tokenizers traceback about sentencepiece."""
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    refused(cli_in_process("train", "--base", str(folder), "--data", str(train_file), "--out",
                           str(tmp_path / "o")), "is not a model folder (no config.json)")
