"""The files a user gives us and the files we write for them: every problem (not found,
not UTF-8, not valid JSON, an output that cannot be written) is one FireactError that names
the file and the line, never a bare traceback, and never a half-written output."""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
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


def _probe(folder: Path, path: Path) -> None:
    """Whether a file can be made in ``folder`` (or, while it does not exist yet, in the
    nearest folder above it that does): a temporary file made and removed there."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FireactError(f"cannot write {path}: {existing} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".fireact-probe-"):
            pass
    except OSError as err:
        raise FireactError(f"cannot write {path} ({err.strerror or err})") from None


def output_file(value: str) -> str:
    """An output file path, checked before any work (an argparse ``type``): not a folder,
    not under a file, in a folder we may write."""
    path = Path(value)
    if path.is_dir():
        raise FireactError(f"{path} is a folder; give a file name")
    _probe(path.parent, path)
    return value


def output_folder(value: str) -> str:
    """An output folder path, checked before any work: not a file, somewhere we may write."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise FireactError(f"{path} is a file; give a folder")
    _probe(path, path)
    return value


def output_figure(value: str) -> str:
    """An output file for a matplotlib figure: ``output_file``'s checks, and a suffix
    matplotlib can write (PNG when there is none), told before any work."""
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(value).suffix.lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in formats:
        raise FireactError(f"{value}: matplotlib cannot write .{suffix} files; use one of "
                           f"{', '.join('.' + f for f in sorted(formats))}")
    return output_file(value)


def files_read(paths: Iterable[str | Path], patterns: Sequence[str] = ()) -> set[Path]:
    """Every file a command reads from ``paths``, resolved: a file itself; under a folder,
    the files that match ``patterns`` (every file when none is given)."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_file():
            found.add(path.resolve())
        elif path.is_dir():
            found.update(f.resolve() for pattern in patterns or ("*",)
                         for f in path.rglob(pattern) if f.is_file())
    return found


def refuse_overwrite(out: str | Path, reads: set[Path], force: bool) -> None:
    """Refuse, before any work, to write ``out`` over one of the command's own inputs (even
    with ``--force``: it would destroy what is being read), or over a file that exists
    unless ``--force`` says so: a slip of the shell's tab key must not cost a run."""
    path = Path(out).resolve()
    if path in reads:
        raise FireactError(f"{out} is one of this command's inputs; write the output "
                           "elsewhere")
    if path.exists() and not force:
        raise FireactError(f"{out} exists; give --force (or --overwrite) to write over it")


def refuse_foreign_folder(folder: str | Path, made_by: Sequence[str], force: bool,
                          command: str) -> None:
    """Refuse to write into a folder that holds files but none of the files (``made_by``,
    relative to it) that ``command`` leaves in a folder of its own, unless ``--force``."""
    folder = Path(folder)
    if (folder.is_dir() and any(folder.iterdir()) and not force
            and not any((folder / name).exists() for name in made_by)):
        raise FireactError(f"{folder} holds files {command} did not make; give another "
                           "folder, or --force (or --overwrite) to write into it")


def file_digest(path: str | Path) -> dict[str, object]:
    """What a marker vouches for about a file: its line count and SHA-256."""
    data = Path(path).read_bytes()
    return {"lines": data.count(b"\n"), "sha256": hashlib.sha256(data).hexdigest()}


def write_figure(fig: Any, out: str | Path) -> Path:
    """A matplotlib figure saved whole (``write_atomic``) in the format its suffix names
    (PNG without one), and closed."""
    import io

    import matplotlib.pyplot as plt

    out = Path(out)
    image = io.BytesIO()
    fig.savefig(image, dpi=120, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)
    write_atomic(out, image.getvalue())
    return out


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a file whole or not at all: a temporary file beside it, renamed into place, so
    a crash never leaves half of it behind, and a failed write leaves nothing."""
    path = Path(path)
    if path.is_dir():
        raise FireactError(f"{path} is a folder; give a file name")
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise FireactError(f"cannot write {path} ({err.strerror or err})") from None


def read_text(path: str | Path, what: str = "data file") -> str:
    """A text file as UTF-8 (a leading byte-order mark allowed); another encoding is one
    error naming the line, not a UnicodeDecodeError from deep inside a parser."""
    path = Path(path)
    if not path.is_file():
        raise FireactError(f"{what} not found: {path}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise FireactError(f"{path}, line {line}: not UTF-8 text (byte {data[err.start]:#04x}); "
                           "save it as UTF-8") from None


def read_json(path: str | Path, what: str = "data file") -> Any:
    path = Path(path)
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as err:
        raise FireactError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


def iter_jsonl(path: str | Path, what: str = "data file") -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line."""
    path = Path(path)
    for line_no, line in enumerate(read_text(path, what).split("\n"), 1):  # not splitlines:
        # it also splits at U+2028 and others, which JSON strings may hold unescaped
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as err:
            raise FireactError(f"{path}, line {line_no}: not valid JSON ({err.msg})") from None
