"""What a hostile user gives the commands around the engine: files in another encoding,
outputs that cannot be written.  Each is one line naming the file, before any work, with
nothing half-written left behind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import read_json, write_atomic
from fireact_eval.questions import _user_questions

from conftest import cli, run_lm_eval

LATIN1 = "Où est la Tour Eiffel ?".encode("latin-1")


def one_line_error(proc: subprocess.CompletedProcess, said: str) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines()
              if re.match(r"fireact-eval[\w\- ]*: error: ", line)]  # ours, or argparse's
    assert len(errors) == 1 and said in errors[0], proc.stderr[-2000:]


@pytest.fixture
def latin1_files(tmp_path):
    """The same content in Latin-1 as each input kind: alpaca JSON, JSONL, a samples file."""
    row = b'[{"instruction": "' + LATIN1 + b'", "input": "", "output": "Thought: x\\nAction: ' \
          b'finish[y]"}]'
    files = {"train.json": row, "hotpotqa.jsonl": row[1:-1] + b"\n",
             "samples_fireact_demo_2026-11-25T10-00-00.1.jsonl": b'{"doc": "' + LATIN1 + b'"}\n'}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def test_text_in_another_encoding_is_one_error_naming_the_line(latin1_files, tmp_path,
                                                               untrained_model):
    out = tmp_path / "out.json"
    for args in (("convert", str(latin1_files / "samples_fireact_demo_2026-11-25T10-00-00.1.jsonl"),
                  "--out", str(out), "--no-decontaminate"),
                 ("data", "mix", str(latin1_files / "train.json"), "--mix", "demo:react=1",
                  "--out", str(out)),
                 ("data", "import-fireact", str(latin1_files / "hotpotqa.jsonl"), "--out",
                  str(tmp_path / "imp"), "--no-decontaminate"),
                 ("data", "stats", str(latin1_files / "train.json"), "--tokenizer",
                  str(untrained_model))):
        one_line_error(cli(*args), "line 1: not UTF-8 text (byte 0xf9)")
    assert not out.exists()
    one_line_error(cli("data", "stats", str(latin1_files / "train.json"), "--tokenizer",
                       str(tmp_path / "none")), "tokenizer")
    questions = tmp_path / "q.jsonl"
    questions.write_bytes(b'{"question": "' + LATIN1 + b'", "answer": "Paris"}\n')
    with pytest.raises(FireactError, match="q.jsonl, line 1: not UTF-8"):
        _user_questions(str(questions))  # what questions=PATH reads


def test_a_byte_order_mark_is_utf8_still(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode())
    assert read_json(path) == {"a": 1}


@pytest.mark.parametrize(("where", "said"), [
    ("folder", "is a folder; give a file name"),
    ("under_file", "is a file, not a folder"),
    ("proc", "cannot write /proc/fireact/out.json"),
])
def test_an_output_that_cannot_be_written_fails_before_any_work(tmp_path, where, said):
    (tmp_path / "plain").write_text("")
    out = {"folder": str(tmp_path), "under_file": str(tmp_path / "plain" / "out.json"),
           "proc": "/proc/fireact/out.json"}[where]
    samples = tmp_path / "missing-but-never-read"
    for args in (("convert", str(samples), "--out", out),
                 ("data", "mix", str(samples), "--mix", "demo:react=1", "--out", out),
                 ("report", str(samples), "--out", out),
                 ("results", "table", str(samples), "--out", out),
                 ("gate", "--baseline", str(samples), "--candidate", str(samples), "--report",
                  out)):
        one_line_error(cli(*args), said)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    (tmp_path / "plain").write_text("")
    with pytest.raises(FireactError, match="cannot write"):
        write_atomic(tmp_path / "plain" / "x.json", "{}")
    with pytest.raises(FireactError, match="is a folder"):
        write_atomic(tmp_path, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_train_and_generate_refuse_an_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "plain").write_text("")
    one_line_error(cli("train", "--base", str(tmp_path), "--data", str(tmp_path / "d.json"),
                       "--out", str(tmp_path / "plain")), "is a file; give a folder")
    one_line_error(cli("generate", "--out", str(tmp_path / "plain"), "--tasks", "hotpotqa"),
                   "is a file; give a folder")


@pytest.mark.parametrize(("broken", "said"), [
    ({"status": 500}, "HTTPError: 500 Server Error"),
    ({"body": {"choices": []}}, "fewer completions than prompts"),
])
@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_model_server_that_keeps_failing_is_one_line(tmp_path, broken, said, concurrency):
    """Past lm-eval's retries, a 500 or a reply without choices was a traceback through
    lm-eval's reorderer or requests."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_async import scripted_agent

    from openai_server import CompletionServer

    server = CompletionServer(None, respond=scripted_agent)
    for key, value in broken.items():
        setattr(server, key, value)
    try:
        proc = run_lm_eval(
            "--model", "local-completions", "--model_args",
            f"base_url={server.base_url},model=s,tokenized_requests=False,"
            f"tokenizer_backend=None,max_retries=2,num_concurrent={concurrency}",
            "--tasks", "fireact_demo", "--limit", "2", "--metadata",
            f"shots=zeroshot,max_turns=2,concurrency={concurrency}",
            "--output_path", str(tmp_path / "out"), check=False)
    finally:
        server.close()
    one_line_error(proc, "gave no usable reply after lm-eval's 2 tries")
    assert said in proc.stderr
