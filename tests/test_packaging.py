"""The package as users install it: every module and data file of the tree in the sdist and
in the wheel (built from the sdist), at the path it installs to, and nothing else; the
start-up hook at the top of site-packages.  (Issue 33: the wheel lacked three subpackages.)"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from conftest import ROOT

# repository folder -> where it installs (setup.py's MAPPED, and fireact_eval itself)
INSTALLS_AS = {"fireact_eval": "fireact_eval", "tasks": "fireact_eval/tasks",
               "trainers": "fireact_eval/trainers", "results": "fireact_eval/results"}
HOOK = "fireact_eval-autoload.pth"


def tree_files() -> dict[str, str]:
    """Each file of the package folders (source path -> installed path)."""
    found = {}
    for folder, target in INSTALLS_AS.items():
        for path in (ROOT / folder).rglob("*"):
            relative = path.relative_to(ROOT / folder)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
                found[f"{folder}/{relative.as_posix()}"] = f"{target}/{relative.as_posix()}"
    return found


def test_the_wheel_holds_exactly_the_trees_package_files(built_dists):
    with zipfile.ZipFile(next(built_dists.glob("*.whl"))) as wheel:
        names = {n for n in wheel.namelist() if ".dist-info/" not in n}
    expected = set(tree_files().values()) | {HOOK}
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    assert not names - expected, f"in the wheel, not in the tree: {sorted(names - expected)}"
    assert {"fireact_eval/cli/__init__.py", "fireact_eval/harness/autoload.py",
            "fireact_eval/experiment/runner.py", "fireact_eval/tasks/fireact_demo.yaml",
            "fireact_eval/results/report.html.j2"} <= names


def test_the_sdist_holds_every_package_file_and_the_build_hook(built_dists):
    sdist = next(built_dists.glob("*.tar.gz"))
    with tarfile.open(sdist) as tar:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in tar.getnames()}
    # .importlinter: the sdist's own tests/test_layers.py reads it (.ci/wheel runs it there)
    expected = set(tree_files()) | {"setup.py", "setup.cfg", "pyproject.toml", "README.md",
                                    ".importlinter"}
    assert not expected - names, f"missing from the sdist: {sorted(expected - names)}"


def test_the_start_up_hook_imports_a_module_the_wheel_has(built_dists):
    with zipfile.ZipFile(next(built_dists.glob("*.whl"))) as wheel:
        line = wheel.read(HOOK).decode().strip()
        module = line.removeprefix("import ").replace(".", "/") + ".py"
        assert module in wheel.namelist(), line
