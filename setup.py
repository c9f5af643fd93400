"""Build hook: metadata and dependencies are declared in setup.cfg; what is computed here is
what a list by hand got wrong (issue 33: three subpackages missing from the wheel).

- The packages are *found*: ``fireact_eval`` and every subpackage under it, and the
  top-level ``tasks/``, ``trainers/`` and ``results/`` folders (and any subpackage they
  grow), which install as ``fireact_eval.tasks``, ``fireact_eval.trainers`` and
  ``fireact_eval.results``.
- Every file in a package folder that is not Python is package data (task YAMLs, prompts,
  the demo's data, templates, accelerate configs): nothing to list when one is added.
- ``fireact_eval-autoload.pth`` goes to the top of site-packages, which is how
  ``lm_eval --tasks fireact_*`` finds our tasks with no extra flag.  The .pth imports
  ``fireact_eval.harness.autoload``, which does nothing until lm-eval is imported.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PTH_NAME = "fireact_eval-autoload.pth"
PTH_LINE = "import fireact_eval.harness.autoload\n"
# top-level folders of the repository -> the package each installs as
MAPPED = {"tasks": "fireact_eval.tasks", "trainers": "fireact_eval.trainers",
          "results": "fireact_eval.results"}
SKIPPED = ("__pycache__",)


def packages() -> list[str]:
    found = find_packages(str(ROOT), include=["fireact_eval", "fireact_eval.*"])
    for folder, name in MAPPED.items():
        found += [name, *(f"{name}.{sub}" for sub in find_packages(str(ROOT / folder)))]
    return sorted(found)


def folder_of(package: str) -> Path:
    for folder, name in MAPPED.items():
        if package == name or package.startswith(name + "."):
            return ROOT / folder / package.removeprefix(name).lstrip(".").replace(".", "/")
    return ROOT / package.replace(".", "/")


def package_data(names: list[str]) -> dict[str, list[str]]:
    """Each package's non-Python files, down to the next subpackage."""
    data = {}
    for name in names:
        root = folder_of(name)
        files = []
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            in_subpackage = any((root / parent / "__init__.py").is_file()
                                for parent in relative.parents if parent != Path("."))
            if (path.is_file() and path.suffix not in (".py", ".pyc") and not in_subpackage
                    and not any(part in SKIPPED for part in relative.parts)):
                files.append(relative.as_posix())
        if files:
            data[name] = files
    return data


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        # An editable wheel is assembled from install_lib, a normal wheel from build_lib.
        if getattr(self, "editable_mode", False):
            target = self.get_finalized_command("install").install_lib
        else:
            target = self.build_lib
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / PTH_NAME).write_text(PTH_LINE)


PACKAGES = packages()
# setup.cfg's egg_info.egg_base: the metadata setuptools writes while building goes under
# build/, never the checkout root, where it would shadow the installed distribution for any
# code run from there (inspect_ai names our tasks fireact_eval/... only when it finds that)
(Path(__file__).resolve().parent / "build").mkdir(exist_ok=True)
setup(packages=PACKAGES, package_dir=dict((name, folder) for folder, name in MAPPED.items()),
      package_data=package_data(PACKAGES), cmdclass={"build_py": BuildPyWithPth})
