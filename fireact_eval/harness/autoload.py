"""Make ``lm_eval`` see our tasks with no ``--include_path``, and check them early, while
leaving lm-eval as it was for everyone who does not ask for our tasks.

Imported from ``fireact_eval-autoload.pth`` in every Python process, so it must cost
nothing: it only puts a finder on ``sys.meta_path`` that stays silent until lm-eval's
modules are imported.  Then, and only then, it changes exactly three things (listed in
docs/evaluation.md, "What the start-up hook changes"):

- ``TaskManager`` (``lm_eval.tasks.manager``): our task folder joins lm-eval's own tasks,
  i.e. only where the default index is asked for (``include_defaults=True``, lm-eval's
  default).  A manager made with ``include_defaults=False`` indexes exactly the
  ``include_path`` its caller gave, as lm-eval documents, unless ``FIREACT_EVAL_TASKS_ONLY=1``
  (our tasks in place of lm-eval's ~10k built-in files: ~15 s less per run).
- ``simple_evaluate`` (``lm_eval.evaluator``): ``fireact_eval.harness.preflight.preflight``
  reads the requested tasks before lm-eval loads the model; it checks ours and does nothing
  for a run with none of ours.
- ``sys.excepthook``: set only by a run that evaluates one of our tasks, so that our
  user-fixable errors print as one line; every other exception goes to the previous hook.

Set ``FIREACT_EVAL_NO_AUTOLOAD=1`` to switch all of it off.
"""

from __future__ import annotations

import functools
import os
import sys

TASKS_ONLY_VAR = "FIREACT_EVAL_TASKS_ONLY"
TASKS_ONLY = {TASKS_ONLY_VAR: "1"}  # the environment of a run of our tasks alone


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
        ours_only = not args and _flag(TASKS_ONLY_VAR)
        if ours_only:
            kwargs.setdefault("include_defaults", False)
        wants_defaults = kwargs.get("include_defaults", True) if not args else args[0]
        already = any(os.path.realpath(p) == os.path.realpath(TASKS_DIR) for p in paths)
        if (wants_defaults or ours_only) and not already:
            paths.insert(0, TASKS_DIR)  # first, so a user's own include_path can override
        original_init(self, verbosity, paths or None, *args, **kwargs)

    manager_cls.__init__ = __init__


def _patch_evaluator(module) -> None:
    original = module.simple_evaluate

    def simple_evaluate(*args, **kwargs):
        from fireact_eval.errors import FireactError
        from fireact_eval.harness.preflight import advice_not_for_us_dropped, preflight

        try:
            ours = preflight(kwargs.get("task_manager"), kwargs.get("tasks"),
                             kwargs.get("model_args"), kwargs.get("model"))
        except FireactError:  # raised only for one of our tasks
            _install_one_line_errors()
            raise
        if ours.names:
            _install_one_line_errors()
        with advice_not_for_us_dropped(ours):
            return original(*args, **kwargs)

    simple_evaluate.__wrapped__ = original
    simple_evaluate.__doc__ = original.__doc__
    module.simple_evaluate = simple_evaluate


def _install_one_line_errors() -> None:
    if not getattr(sys.excepthook, "fireact_eval", False):
        sys.excepthook = _one_line_errors(sys.excepthook)


def _one_line_errors(hook):
    """A user-fixable error that reaches the top of ``lm_eval`` prints as one line, not as
    a traceback through lm-eval's internals (the exit status stays 1).  Installed by a run of
    our tasks only: no other lm-eval run has its exceptions seen by us."""

    def excepthook(kind, err, tb):
        from fireact_eval.errors import FireactError

        if issubclass(kind, FireactError):
            sys.stderr.write(f"fireact-eval: error: {err}\n")
            return
        hook(kind, err, tb)

    excepthook.fireact_eval = True
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
