"""Where lm-eval 0.4.13 and 0.5 differ in what we use, each difference named once (with
the version it was written against), so the rest of the glue has one code path.
``tests/test_lm_eval_compat.py`` checks each against the installed lm-eval."""

from __future__ import annotations

from typing import Any

import lm_eval
from lm_eval.api.instance import Instance

__all__ = ["task_index", "new_instance", "metric_entry", "METRICS_BY_CALLABLE"]


def task_index(manager: Any) -> dict:
    """The TaskManager's index of task names (0.4.13: ``task_index``; 0.5.0.dev1:
    ``_task_index``)."""
    index = getattr(manager, "task_index", None)
    return index if index is not None else manager._task_index


def new_instance(task_name: str, doc_id: int, **fields: Any) -> Instance:
    """An ``Instance`` on either version: 0.5.0.dev1 requires ``task_name`` and a keyword
    ``doc_id``; 0.4.13 takes them as optional fields (and sets them from ``metadata``)."""
    return Instance(task_name=task_name, doc_id=doc_id, **fields)


# 0.5.0.dev1 looks a metric name up in its registry and refuses one registered for another
# output type (``f1`` for multiple choice, ``acc`` for loglikelihood), and warns for every
# name it does not know; a callable is taken as the metric it names.  0.4.13 keys a
# ``process_results`` task's metrics by the entry itself, so there they stay names.
METRICS_BY_CALLABLE = not lm_eval.__version__.startswith("0.4.")


def metric_entry(name: str) -> Any:
    """A ``metric_list`` entry's ``metric`` for a value our ``process_results`` computes."""
    if not METRICS_BY_CALLABLE:
        return name

    def from_process_results(*args: Any, **kwargs: Any) -> float:
        raise RuntimeError(f"{name} is computed by the task's process_results")

    from_process_results.__name__ = from_process_results.__qualname__ = name
    return from_process_results
