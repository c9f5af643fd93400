"""Make ``lm_eval`` see our tasks with no ``--include_path``.

Imported from ``fireact_eval-autoload.pth`` in every Python process, so it must cost
nothing: it only puts a finder on ``sys.meta_path`` that stays silent until
``lm_eval.tasks.manager`` is imported, then adds our task folder to every ``TaskManager``.
Set ``FIREACT_EVAL_NO_AUTOLOAD=1`` to switch it off.  ``FIREACT_EVAL_TASKS_ONLY=1`` also
drops lm-eval's ~10k built-in task files from the index, which saves ~15 s per run.
"""

from __future__ import annotations

import os
import sys

_TARGET = "lm_eval.tasks.manager"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0")


def _patch_task_manager(module) -> None:
    from fireact_eval.tasks import TASKS_DIR

    manager_cls = module.TaskManager
    original_init = manager_cls.__init__

    def __init__(self, verbosity=None, include_path=None, *args, **kwargs):
        paths = [] if include_path is None else list(
            include_path if isinstance(include_path, (list, tuple)) else [include_path]
        )
        if not any(os.path.realpath(p) == os.path.realpath(TASKS_DIR) for p in paths):
            paths.insert(0, TASKS_DIR)  # first, so a user's own include_path can override
        if not args and _flag("FIREACT_EVAL_TASKS_ONLY"):
            kwargs.setdefault("include_defaults", False)
        original_init(self, verbosity, paths, *args, **kwargs)

    manager_cls.__init__ = __init__


class _PatchAfterImport:
    """A meta-path finder that wraps one module's loader and patches it once executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing
        spec = next(
            (s for f in sys.meta_path if (s := f.find_spec(fullname, path, target)) is not None),
            None,
        )
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch_task_manager(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    if _flag("FIREACT_EVAL_NO_AUTOLOAD"):
        return
    if _TARGET in sys.modules:  # imported before us (unusual): patch in place
        _patch_task_manager(sys.modules[_TARGET])
        return
    sys.meta_path.insert(0, _PatchAfterImport())


install()
