"""Where fireact-eval keeps what it builds once and reuses (search indexes, converted models)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$FIREACT_EVAL_CACHE``, else ``$XDG_CACHE_HOME/fireact_eval``, else
    ``~/.cache/fireact_eval``."""
    if env := os.environ.get("FIREACT_EVAL_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fireact_eval"
