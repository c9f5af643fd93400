"""Build hook: everything else is declared in setup.cfg.

The only thing setup.cfg cannot say is "put this .pth file at the top of site-packages",
which is how ``lm_eval --tasks fireact_*`` finds our tasks with no extra flag.  The .pth
imports ``fireact_eval.harness.autoload``, which does nothing until ``lm_eval.tasks`` is imported.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "fireact_eval-autoload.pth"
PTH_LINE = "import fireact_eval.harness.autoload\n"


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


setup(cmdclass={"build_py": BuildPyWithPth})
