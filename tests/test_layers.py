"""The layers of the package, held by import-linter's contracts in ``.importlinter`` (the
docs/layout.md's drawing is their list), checked on the package as it installs: the wheel
built from this tree, unpacked, where ``tasks/``, ``trainers/`` and ``results/`` are
``fireact_eval.tasks`` / ``.trainers`` / ``.results`` and relative imports resolve."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / ".importlinter"
ENGINE = ("fireact_eval.trajectory", "fireact_eval.transcript", "fireact_eval.rollout",
          "fireact_eval.perturb", "fireact_eval.seeds", "fireact_eval.answer_match",
          "fireact_eval.outcomes", "fireact_eval.scoring", "fireact_eval.rollout_settings",
          "fireact_eval.stats", "fireact_eval.tools", "fireact_eval.tools.cache",
          "fireact_eval.tools.local_search", "fireact_eval.tools.replay",
          "fireact_eval.tools.retriever", "fireact_eval.tools.serpapi")


def lint_imports(package_root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package unpacked at ``package_root`` (not the editable tree)."""
    env = {**os.environ, "PYTHONPATH": str(package_root), "FIREACT_EVAL_NO_AUTOLOAD": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), str(CONTRACTS),
                           "--no-cache"], cwd=package_root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_installed_package_keeps_every_contract(unpacked_wheel):
    proc = lint_imports(unpacked_wheel)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout, proc.stdout[-1000:]


@pytest.mark.parametrize(("file", "line", "broken"), [
    ("harness/task.py", "from fireact_eval.results import frame",
     "fireact_eval.harness is not allowed to import fireact_eval.results"),
    ("trainers/encode.py", "from fireact_eval import cli",
     "fireact_eval.trainers is not allowed to import fireact_eval.cli"),
    ("rollout.py", "from .harness import backend",  # relative: resolved by the tool
     "fireact_eval.rollout is not allowed to import fireact_eval.harness"),
    ("data/mix.py", "from ..trainers import train",
     "fireact_eval.data is not allowed to import fireact_eval.trainers"),
    ("scoring.py", "import lm_eval", "Illegal imports of protected package lm_eval"),
    ("tools/cache.py", "import conftest", "fireact_eval.tools.cache -> conftest"),
    ("new_module.py", "", "The following modules are not listed as layers"),
])
def test_an_upward_import_or_an_unplaced_module_breaks_the_contract(unpacked_wheel, tmp_path,
                                                                    file, line, broken):
    """The three upward imports the old AST test let through (issue 33), and the rest."""
    copy = tmp_path / "site"
    shutil.copytree(unpacked_wheel, copy)
    target = copy / "fireact_eval" / file
    with target.open("a", encoding="utf-8") as handle:
        handle.write(f"\n{line}\n")
    proc = lint_imports(copy)
    assert proc.returncode == 1 and broken in proc.stdout, proc.stdout[-3000:]


def test_the_readme_drawing_lists_the_contracts_layers():
    """Every layer of the contract is in the drawing of docs/layout.md, and its file list
    names every module."""
    config = configparser.ConfigParser()
    config.read(CONTRACTS)
    layers = config["importlinter:contract:layers"]["layers"].split()
    names = {n for n in layers if n not in ("|", ":")}
    page = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    drawing = page.split("```")[1]
    drawn = set(re.findall(r"[a-z_]+", drawing))
    assert names <= drawn, sorted(names - drawn)
    listing = page.split("```")[3]
    modules = {p.name for folder in ("fireact_eval", "tasks", "trainers", "results")
               for p in (ROOT / folder).rglob("*.py") if not p.name.startswith("__")}
    assert not {m for m in modules if m not in listing}, "docs/layout.md's list omits some"


def test_the_engine_runs_without_lm_eval():
    """Each engine module, imported alone, loads no part of lm-eval (directly or through
    what it imports), so a test or another harness can drive it."""
    script = ("import importlib, sys\n"
              f"for name in {ENGINE!r}:\n"
              "    importlib.import_module(name)\n"
              "    assert not [m for m in sys.modules if m.split('.')[0] == 'lm_eval'], name\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"PATH": "", "FIREACT_EVAL_NO_AUTOLOAD": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_documented_api_is_what_the_modules_export():
    """Each module of docs/python-api.md says what it exports, and exports it."""
    import importlib

    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    for name in ("answer_match", "transcript", "rollout", "trajectory", "tools",
                 "harness.run_files", "stats", "seeds", "results.frame", "training_card",
                 "environment", "perturb", "rollout_settings", "scoring", "serve_tools",
                 "task_environment"):
        module = importlib.import_module(f"fireact_eval.{name}")
        assert module.__all__ and all(hasattr(module, n) for n in module.__all__), name
    for line in text.splitlines():
        if line.startswith("from fireact_eval."):
            module, _, names = line.split("#")[0].partition(" import ")
            exported = importlib.import_module(module.removeprefix("from ").strip()).__all__
            assert all(n.strip() in exported for n in names.split(",")), line


def test_each_shared_default_is_defined_once():
    """Facts two layers share come from one place (issue 33): the tasks' tokens per turn,
    the turn limit, the group's datasets, the training defaults the plan estimates with."""
    import yaml

    from fireact_eval.catalog import PAPERS_DATASETS, TOKENS_PER_TURN
    from fireact_eval.tasks import TASKS_DIR

    template = (Path(TASKS_DIR) / "_default_template_yaml").read_text()  # has !function tags
    assert re.findall(r"max_gen_toks: (\d+)", template) == [str(TOKENS_PER_TURN)]
    group = yaml.safe_load((Path(TASKS_DIR) / "fireact.yaml").read_text())
    assert group["task"] == [f"fireact_{d}" for d in PAPERS_DATASETS]
    from fireact_eval.catalog import DATASETS
    from fireact_eval.scoring import DATASET_SCORERS
    from fireact_eval.tasks._generate_variants import BASES

    assert tuple(BASES) == DATASETS and set(DATASET_SCORERS) == set(DATASETS)
    repeated = re.compile(r"max_turns\", 11\)|max_gen_toks\", (96|256)\)|"
                          r"get\(\"(batch_size\", 4|grad_accum\", 1|epochs\", 3)")
    for path in (ROOT / "fireact_eval").rglob("*.py"):
        assert not repeated.search(path.read_text(encoding="utf-8")), path
