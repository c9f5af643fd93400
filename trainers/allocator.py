"""The host memory allocator a training process runs under.

A CPU training step allocates and frees hundreds of 1-30 MB activation buffers of shifting
sizes.  glibc's malloc serves them from a heap that fragments and stays resident (LoRA on
SmolLM2: 7 GB for a step that needs 2); making glibc map and unmap them instead
(``mallopt(M_MMAP_THRESHOLD)``) returns the memory but pays a page fault for every fresh page
(26 M faults in two steps, 40 % slower).  Intel's TBB scalable allocator (``tbbmalloc``,
from the ``tbb`` wheel) keeps size-class caches that neither fragment nor fault: 2.1 GB at
glibc's heap speed (README, Performance).

A process can only change its malloc before it starts, through ``LD_PRELOAD``; so the
``train`` command re-executes itself once with the library preloaded, the way PyTorch's
``torch.backends.xeon.run_cpu --enable-jemalloc`` and Intel's ``ipexrun`` launch CPU jobs.
"""

from __future__ import annotations

import ctypes
import os
import sys
from importlib import metadata
from pathlib import Path

from fireact_eval.errors import FireactError

TBB_LIBS = ("libtbbmalloc.so.2", "libtbbmalloc_proxy.so.2")  # the proxy needs the first
ALLOCATORS = ("auto", "tbb", "glibc")
_TRIED = "FIREACT_EVAL_ALLOCATOR_TRIED"  # set across the re-exec: never loop


def tbb_libraries() -> list[Path] | None:
    """tbbmalloc and its malloc-replacing proxy from the installed ``tbb`` wheel (Linux)."""
    try:
        files = metadata.files("tbb") or []
    except metadata.PackageNotFoundError:
        return None
    found = {f.name: Path(f.locate()).resolve() for f in files if f.name in TBB_LIBS}
    libs = [found.get(name) for name in TBB_LIBS]
    return libs if all(lib is not None and lib.is_file() for lib in libs) else None


def active() -> str:
    """The allocator serving this process's malloc: ``tbb`` or ``glibc`` (``other`` off
    Linux, where /proc/self/maps does not exist)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "other"
    return "tbb" if "libtbbmalloc_proxy" in maps else "glibc"


def _uses_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def run_under(choice: str, argv: list[str]) -> None:
    """Replace this process with ``argv`` run under ``choice``'s allocator when it is not
    the one serving it already.  ``auto``: tbbmalloc when the ``tbb`` package is installed
    and no GPU is in use (on a GPU the activations are not in host memory; tbbmalloc with the
    CUDA libraries is not measured here), else glibc.  Returns when nothing is to be done."""
    if choice not in ALLOCATORS:
        raise FireactError(f"unknown allocator {choice!r}; valid: {', '.join(ALLOCATORS)}")
    if choice == "glibc" or active() != "glibc":
        return
    libs = tbb_libraries()
    if libs is None:
        if choice == "tbb":
            raise FireactError("--allocator tbb: the tbb package is not installed "
                               "(pip install tbb; Linux x86-64)")
        return
    if os.environ.get(_TRIED):
        print("fireact-eval: warning: tbbmalloc did not load through LD_PRELOAD; training "
              "with glibc's allocator", file=sys.stderr)
        return
    if choice == "auto" and _uses_gpu():
        return
    preload = [str(lib) for lib in libs] + os.environ.get("LD_PRELOAD", "").split()
    env = {**os.environ, "LD_PRELOAD": " ".join(preload), _TRIED: "1"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)


def return_freed_memory(threshold_kb: int) -> bool:
    """Under glibc's malloc: serve every allocation of ``threshold_kb`` or more with its own
    mapping, returned to the OS when freed.  By default glibc raises its mapping threshold to
    the largest block freed so far (up to 32 MB), so the step's activations come from the
    heap, whose free space fragments and stays resident.  The price is a page fault per
    fresh page.  No effect (False) under another allocator, off glibc, or with 0."""
    if threshold_kb <= 0 or active() != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold = -3  # <malloc.h>; setting it also stops glibc's own adjustment
    return bool(libc.mallopt(m_mmap_threshold, threshold_kb * 1024))
