"""A command as a user would type it: one home for the ``ENV=value argv`` lines the demo prints
and the experiment runner logs, quoted so that a reader can paste them into a shell."""
from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence


def shell_line(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """``argv`` with its extra environment in front, each word quoted for a POSIX shell."""
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()),
                     *(shlex.quote(str(a)) for a in argv)])


def lm_eval_metadata(values: Mapping[str, object]) -> str:
    """``lm_eval --metadata``'s value as a JSON object: the form every supported lm-eval
    parses (0.4.13 also takes ``key=value``, 0.5 does not)."""
    return json.dumps(dict(values), ensure_ascii=False)
