"""The README's and docs' commands, read as a newcomer copies them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands(prefix: str) -> list[tuple[str, str]]:
    """(page, command) for every command in the pages' bash blocks that starts with
    ``prefix``, its continuation lines joined."""
    found = []
    for page in PAGES:
        blocks = re.findall(r"```bash\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
        for block in blocks:
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith(prefix):
                    found.append((page.name, line))
    return found


def test_every_local_lm_eval_command_sets_a_batch_size():
    """lm-eval's default batch size 1 makes hf and vllm generate a turn's live trajectories
    one at a time (4-5x slower); the README's first command did that."""
    local = [(p, c) for p, c in commands("lm_eval") if re.search(r"--model (hf|vllm)\b", c)]
    assert local, "no hf / vllm command found in the README or docs"
    for page, command in local:
        assert "--batch_size" in command, (page, command)


def test_every_fireact_eval_command_in_the_docs_parses(tmp_path, monkeypatch):
    """Each documented ``fireact-eval`` command names a real command and real flags, with
    the values they take (the parser of the installed CLI decides)."""
    from fireact_eval.cli import build_parser

    monkeypatch.chdir(tmp_path)  # relative output paths are checked against a writable place
    documented = [(p, c) for p, c in commands("fireact-eval ") if "$(" not in c]
    assert len(documented) >= 10
    for page, command in documented:
        argv = shlex.split(command)[1:]
        try:
            build_parser().parse_args(argv)
        except SystemExit as err:
            pytest.fail(f"{page}: `{command}` does not parse (exit {err.code})")


def test_every_number_the_readme_states_was_measured_in_a_docs_page():
    """The README's results (its demo line and headline table) are copied from the docs
    page that measured them, with machine and date: each decimal number it states appears
    in some page of docs/, so none is left without its measurement."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = readme.split("## Two commands", 1)[1].split("## Docs", 1)[0]
    docs = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    numbers = set(re.findall(r"(?<![\w.])[-+]?\d+\.\d+(?![\d.])", stated))
    assert len(numbers) >= 15, sorted(numbers)
    assert not {n for n in numbers if n not in docs}, sorted(n for n in numbers if n not in docs)
