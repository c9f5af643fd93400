"""lm-eval task configs for fireact-eval (installed as ``fireact_eval.tasks``).

``TASKS_DIR`` is what ``fireact-eval tasks-dir`` prints for ``lm_eval --include_path``.
"""

from pathlib import Path

TASKS_DIR = str(Path(__file__).resolve().parent)
