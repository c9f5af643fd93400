"""The layers of the package, as the README's layout section draws them: the engine never
imports lm-eval, only ``fireact_eval.harness`` does, the data layer never imports the
trainers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ("fireact_eval.trajectory", "fireact_eval.transcript", "fireact_eval.rollout",
          "fireact_eval.perturb", "fireact_eval.seeds", "fireact_eval.answer_match",
          "fireact_eval.outcomes",
          "fireact_eval.stats", "fireact_eval.tools", "fireact_eval.tools.cache",
          "fireact_eval.tools.local_search", "fireact_eval.tools.replay",
          "fireact_eval.tools.retriever", "fireact_eval.tools.serpapi")


def imports(folder: Path) -> dict[Path, set[str]]:
    """The modules each file under ``folder`` imports (at any depth of its code)."""
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path] = names
    return found


def test_the_data_layer_never_imports_the_trainers():
    """``data stats`` imported ``trainers.data``, which imports ``data``: a hidden cycle."""
    for path, names in imports(ROOT / "fireact_eval" / "data").items():
        assert not [n for n in names if n.startswith("fireact_eval.trainers")], path


ENGINE_FILES = [*(ROOT / "fireact_eval" / f"{m.split('.')[-1]}.py" for m in ENGINE
                  if m.count(".") == 1 and m != "fireact_eval.tools"),
                *(ROOT / "fireact_eval" / f for f in ("catalog.py", "prompts.py", "questions.py",
                                                      "rollout_settings.py", "scoring.py",
                                                      "answer_match.py")),
                *(ROOT / "fireact_eval" / "tools").glob("*.py")]
ABOVE_THE_ENGINE = ("fireact_eval.harness", "fireact_eval.data", "fireact_eval.results",
                    "fireact_eval.trainers", "fireact_eval.cli", "fireact_eval.generate",
                    "fireact_eval.convert", "fireact_eval.demo", "fireact_eval.experiment")


def test_the_engine_imports_nothing_above_it():
    """The engine (rollout, grammar, tools, scoring, ...) never reaches up into the harness,
    the data layer, results, trainers or the commands."""
    for path in ENGINE_FILES:
        names = imports(path.parent)[path] if path.is_file() else set()
        assert path.is_file(), path
        assert not [n for n in names if n.startswith(ABOVE_THE_ENGINE)], (path, names)


def test_only_the_harness_package_imports_lm_eval():
    """lm-eval's API, private parts included, is touched from one package, so an lm-eval
    upgrade is a change there (and ``test_lm_eval_compat.py`` says where)."""
    package = [ROOT / "fireact_eval", ROOT / "results", ROOT / "trainers"]
    for folder in package:
        for path, names in imports(folder).items():
            if (ROOT / "fireact_eval" / "harness") in path.parents:
                continue
            assert not [n for n in names if n.split(".")[0] == "lm_eval"], path


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
                 "harness.run_files", "stats", "seeds", "results.frame"):
        module = importlib.import_module(f"fireact_eval.{name}")
        assert module.__all__ and all(hasattr(module, n) for n in module.__all__), name
    for line in text.splitlines():
        if line.startswith("from fireact_eval."):
            module, _, names = line.split("#")[0].partition(" import ")
            exported = importlib.import_module(module.removeprefix("from ").strip()).__all__
            assert all(n.strip() in exported for n in names.split(",")), line
