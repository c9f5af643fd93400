"""Reading JSON and JSONL files a user gives us: every problem is one FireactError that
names the file and the line, never a bare traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError


def find_files(path: str | Path, pattern: str, hint: str = "") -> list[Path]:
    """A file given directly, or every ``pattern`` file under a folder (sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FireactError(f"not found: {path}")
    found = sorted(p for p in path.rglob(pattern) if p.is_file())
    if not found:
        raise FireactError(f"no lm-eval {pattern} files under {path}{hint}")
    return found


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a file whole or not at all: a temporary file beside it, renamed into place, so
    a crash never leaves half of it behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    tmp.replace(path)


def read_json(path: str | Path, what: str = "data file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise FireactError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise FireactError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


def iter_jsonl(path: str | Path, what: str = "data file") -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line."""
    path = Path(path)
    if not path.is_file():
        raise FireactError(f"{what} not found: {path}")
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as err:
                raise FireactError(
                    f"{path}, line {line_no}: not valid JSON ({err.msg})"
                ) from None
