"""Make ``lm_eval`` see our tasks with no ``--include_path``, and check them early.

Imported from ``fireact_eval-autoload.pth`` in every Python process, so it must cost
nothing: it only puts a finder on ``sys.meta_path`` that stays silent until lm-eval's
modules are imported; then it adds our task folder to every ``TaskManager``
(``lm_eval.tasks.manager``) and runs ``fireact_eval.harness.preflight.preflight`` at the start of
``simple_evaluate`` (``lm_eval.evaluator``), before lm-eval loads the model.
Set ``FIREACT_EVAL_NO_AUTOLOAD=1`` to switch it off.  ``FIREACT_EVAL_TASKS_ONLY=1`` also
drops lm-eval's ~10k built-in task files from the index, which saves ~15 s per run.
"""

from __future__ import annotations

import functools
import os
import sys


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0")


def _patch_task_manager(module) -> None:
    from fireact_eval.tasks import TASKS_DIR

    manager_cls = module.TaskManager
    original_init = manager_cls.__init__

    @functools.wraps(original_init)  # __wrapped__: the compatibility test reads the original
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


def _patch_evaluator(module) -> None:
    original = module.simple_evaluate

    def simple_evaluate(*args, **kwargs):
        from fireact_eval.harness.preflight import advice_not_for_us_dropped, preflight

        ours = preflight(kwargs.get("task_manager"), kwargs.get("tasks"),
                         kwargs.get("model_args"))
        with advice_not_for_us_dropped(ours):
            return original(*args, **kwargs)

    simple_evaluate.__wrapped__ = original
    simple_evaluate.__doc__ = original.__doc__
    module.simple_evaluate = simple_evaluate
    sys.excepthook = _one_line_errors(sys.excepthook)


def _one_line_errors(hook):
    """A user-fixable error that reaches the top of ``lm_eval`` prints as one line, not as
    a traceback through lm-eval's internals (the exit status stays 1)."""

    def excepthook(kind, err, tb):
        from fireact_eval.errors import FireactError

        if issubclass(kind, FireactError):
            sys.stderr.write(f"fireact-eval: error: {err}\n")
            return
        hook(kind, err, tb)

    return excepthook


_PATCHES = {"lm_eval.tasks.manager": _patch_task_manager, "lm_eval.evaluator": _patch_evaluator}


class _PatchAfterImport:
    """A meta-path finder that wraps the loaders of the modules in ``pending`` and patches
    each once it has executed."""

    def __init__(self, pending: dict) -> None:
        self.pending = pending

    def find_spec(self, fullname, path=None, target=None):
        patch = self.pending.pop(fullname, None)
        if patch is None:
            return None
        sys.meta_path.remove(self)  # keeps the lookup below from recursing
        try:
            spec = next((s for f in sys.meta_path
                         if (s := f.find_spec(fullname, path, target)) is not None), None)
        finally:
            if self.pending:
                sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    if _flag("FIREACT_EVAL_NO_AUTOLOAD"):
        return
    pending = {}
    for name, patch in _PATCHES.items():
        if name in sys.modules:  # imported before us (unusual): patch in place
            patch(sys.modules[name])
        else:
            pending[name] = patch
    if pending:
        sys.meta_path.insert(0, _PatchAfterImport(pending))


install()
