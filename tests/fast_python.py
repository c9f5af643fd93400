"""A Python that starts in milliseconds: ``python -m lm_eval ...`` as a fork of a process that
has already imported torch, transformers, peft, TRL, lm-eval and us.

Most of the suite's time went into processes importing the same libraries again (~5-10 s
each, ~300 processes a run).  The tests still run ``fireact-eval`` and ``lm_eval`` as
processes, with their own exit status, output, signals and state, and the commands they start
(an experiment's cells, submitit's jobs, lm-eval's ``pip list``) go through the same Python;
only the imports are shared.  How:

- ``python()`` (per test worker) starts a *zygote*: ``python fast_python.py SOCKET`` imports
  the heavy libraries, then waits on a Unix socket.  It writes a *shim*, an executable
  ``python`` whose first line runs the real interpreter without ``site`` (~20 ms).
- The shim sends its arguments, environment, working folder and its stdin/stdout/stderr
  (the descriptors themselves, ``SCM_RIGHTS``) to the zygote, which forks a *waiter*, which
  forks the *runner*: the runner takes the descriptors, folder and environment, sets
  ``sys.executable`` to the shim, and runs the module, ``-c`` code or script as ``python``
  would (``__main__``, ``sys.excepthook`` on an uncaught error, ``SystemExit``'s status,
  non-daemon threads joined, ``atexit``).  The waiter reports the runner's pid, then its
  exit status (or the signal that killed it), which the shim exits with (or dies of).
- A signal to the shim (TERM, INT, HUP) is passed to the runner; if the shim dies (SIGKILL),
  the waiter kills the runner: ``Popen(...).kill()`` ends the run as it would a real one.
- A command whose environment differs from the zygote's in a variable read at start-up or
  import (``LD_PRELOAD``: ``train`` re-executing itself under tbbmalloc; ``HF_*``,
  ``PYTHON*``, ``FIREACT_EVAL_NO_AUTOLOAD``, ...) is sent to a zygote started in that
  environment the second time it is asked for (up to ``MAX_OTHER_ZYGOTES``); the first
  time, an option the shim does not know (``-X importtime``, ``-W``, ``-I``, ...) and a
  command that needs its own pid (submitit's jobs) are run by the real interpreter (the
  shim ``exec``s it).

The real interpreter is still what users run: ``.ci/wheel`` and the demo in ``.ci/run`` start
real processes, and so does a test that needs the import itself (``REAL_PYTHON``).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys

# read when a library is imported or the process starts: a fork of the zygote cannot honour
# a new value
IMPORT_TIME_ENV = ("HF_", "HUGGINGFACE", "TRANSFORMERS", "TORCH", "PYTORCH", "CUDA", "OMP_",
                   "MKL_", "OPENBLAS", "PYTHON", "LD_", "TRL_", "DATASETS", "ACCELERATE_",
                   "MALLOC_", "GLIBC_TUNABLES", "FIREACT_EVAL_NO_AUTOLOAD")
# commands that need the pid their parent started (submitit's local jobs are named by it)
OWN_PID_MODULES = ("submitit.",)
PRELOAD = ("torch", "transformers", "peft", "datasets", "accelerate", "lm_eval",
           "lm_eval.evaluator", "lm_eval.models.huggingface", "lm_eval.models.openai_completions",
           "lm_eval.tasks", "pandas", "scipy.stats", "matplotlib.pyplot", "trl", "yaml",
           "requests", "fireact_eval.cli", "fireact_eval.harness.task",
           "fireact_eval.harness.evaluate")


# --------------------------------------------------------------------------- messages

def _send(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    data = json.dumps(message).encode()
    payload = struct.pack("!I", len(data)) + data
    if fds:
        socket.send_fds(sock, [payload], list(fds))
    else:
        sock.sendall(payload)


def _recv(sock: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    fds: list[int] = []
    if with_fds:
        head, fds, _, _ = socket.recv_fds(sock, 4, with_fds)
    else:
        head = sock.recv(4)
    while head and len(head) < 4:
        more = sock.recv(4 - len(head))
        if not more:
            break
        head += more
    if len(head) < 4:
        return None, fds
    (size,) = struct.unpack("!I", head)
    data = b""
    while len(data) < size:
        more = sock.recv(size - len(data))
        if not more:
            return None, fds
        data += more
    return json.loads(data), fds


# --------------------------------------------------------------------------- the shim

def client(socket_path: str, real_python: str) -> None:
    """The shim's body: run ``sys.argv[1:]`` in a fork of a zygote, or exec the real
    interpreter when a fork cannot stand for it."""
    argv = sys.argv[1:]

    def real() -> None:
        os.execv(real_python, [real_python, *argv])

    command = _command(argv)
    if command is None or command[1].startswith(OWN_PID_MODULES):
        real()
    request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    while True:  # the zygote, or the one it sends us to for another start-up environment
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(socket_path)
            _send(sock, request, [0, 1, 2])
            reply, _ = _recv(sock)
        except OSError:  # no zygote (it was stopped): a real process
            reply = None
        if reply is None or reply.get("exec"):
            sock.close()
            real()
        if "redirect" not in reply:
            break
        sock.close()
        socket_path = reply["redirect"]
    pid = reply["pid"]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda number, _frame: os.kill(pid, number))
    while True:
        try:
            status, _ = _recv(sock)
            break
        except InterruptedError:
            continue
    if status is None:
        sys.exit(1)
    if "signal" in status:
        signal.signal(status["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), status["signal"])
    sys.exit(status["code"])


def _command(argv: list[str]) -> tuple[str, str, list[str], bool] | None:
    """``(kind, target, args, unbuffered)`` for the command lines a fork runs: ``[-u] -m
    MODULE``, ``[-u] -c CODE``, ``[-u] SCRIPT``; None for any other option."""
    unbuffered, i = False, 0
    while i < len(argv) and argv[i] == "-u":
        unbuffered, i = True, i + 1
    if i >= len(argv):
        return None
    head = argv[i]
    for flag, kind in (("-m", "module"), ("-c", "code")):
        if head == flag:
            return (kind, argv[i + 1], argv[i + 2:], unbuffered) if i + 1 < len(argv) else None
        if head.startswith(flag):
            return kind, head[2:], argv[i + 1:], unbuffered
    if head.startswith("-"):
        return None
    return "script", head, argv[i + 1:], unbuffered


# --------------------------------------------------------------------------- the zygote

MAX_OTHER_ZYGOTES = 3  # per test worker; each holds ~1 GB of imported libraries


def serve(socket_path: str, shim: str) -> None:
    """Import, then fork a waiter per request (or send it to another zygote), forever."""
    base_env = dict(os.environ)
    for name in PRELOAD:
        __import__(name)
    # what importing set (peft: TORCHINDUCTOR_CACHE_DIR, lm-eval: HF_XET_HIGH_PERFORMANCE), as
    # it would be set in a real process that imports them
    imported_env = {k: v for k, v in os.environ.items() if k not in base_env}
    base = _at_start({**base_env, **imported_env})
    log = os.environ.get("FAST_PYTHON_LOG")  # a line per command: how many, and which forked
    others: dict[tuple, str] = {}  # zygotes for other start-up environments: their sockets
    seen: dict[tuple, int] = {}  # how often each was asked for (once: the real interpreter)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # waiters are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        fds: list[int] = []
        try:
            request, fds = _recv(conn, with_fds=3)
            reply = None
            if request is None or len(fds) != 3:
                reply = {"exec": True}
            elif (wanted := _at_start({**imported_env, **request["env"]})) != base:
                seen[wanted] = seen.get(wanted, 0) + 1
                if wanted not in others and seen[wanted] > 1 and len(others) < MAX_OTHER_ZYGOTES:
                    others[wanted] = f"{socket_path}.{len(others) + 1}"  # asked for again
                    _start(others[wanted], shim, request["env"], with_parent=True)
                reply = {"redirect": others[wanted]} if wanted in others else {"exec": True}
            if log and request:
                with open(log, "a") as fh:
                    fh.write(f"{next(iter(reply)) if reply else 'fork'} {request['argv'][:3]}"
                             f" {sorted(set(wanted) ^ set(base)) if reply else ''}\n")
            if reply:
                _send(conn, reply)
            else:
                sys.stdout.flush()
                sys.stderr.flush()
                if os.fork() == 0:
                    listener.close()
                    request["env"] = {**imported_env, **request["env"]}
                    _wait_for(conn, request, fds, shim)  # never returns
        except (OSError, RuntimeError):  # a shim gone, a zygote that did not start
            pass
        for fd in fds:
            os.close(fd)
        conn.close()


def _at_start(env: dict) -> tuple:
    """The variables of ``env`` that a process reads as it starts or imports."""
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)))


def _start(socket_path: str, shim: str, env: dict | None = None, with_parent: bool = False):
    """A zygote listening on ``socket_path``, once it is ready (``with_parent``: killed when
    this process dies)."""
    import ctypes
    import subprocess

    def die_with_parent() -> None:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    zygote = subprocess.Popen([REAL_PYTHON, os.path.abspath(__file__), socket_path, shim],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                              env=env, preexec_fn=die_with_parent if with_parent else None)
    if zygote.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the zygote did not start (exit {zygote.wait()})")
    return zygote


def _wait_for(conn: socket.socket, request: dict, fds: list[int], shim: str) -> None:
    """The waiter: fork the runner, report its pid and then how it ended; kill it if the
    shim goes away first."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        pid = os.fork()
        if pid == 0:
            conn.close()
            _run(request, fds, shim)  # never returns
        for fd in fds:
            os.close(fd)
        _send(conn, {"pid": pid})
        pidfd = os.pidfd_open(pid)
        while True:
            ready, _, _ = select.select([conn, pidfd], [], [])
            if pidfd in ready:
                break
            if not conn.recv(1):  # the shim died: so does its run
                os.kill(pid, signal.SIGKILL)
                break
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            _send(conn, {"signal": os.WTERMSIG(status)})
        else:
            _send(conn, {"code": os.WEXITSTATUS(status)})
    except BaseException:  # noqa: BLE001, S110 - a waiter never returns into the zygote's loop
        pass
    os._exit(0)


def _run(request: dict, fds: list[int], shim: str) -> None:
    """The runner: become ``python ARGV`` in this already-importing process."""
    import atexit
    import runpy
    import threading
    import types

    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        kind, target, args, unbuffered = _command(request["argv"])
        if unbuffered:
            sys.stdout.reconfigure(write_through=True)
            sys.stderr.reconfigure(write_through=True)
        sys.executable = shim
        sys.orig_argv = [shim, *request["argv"]]  # what a command re-executing itself reads
        sys.argv = [target if kind == "script" else "-c", *args]
        _started["shim"] = shim  # a test helper imported here starts no zygote of its own
        try:
            if kind == "module":
                sys.path[0] = os.getcwd()
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            elif kind == "code":
                sys.path[0] = ""
                main = types.ModuleType("__main__")
                sys.modules["__main__"] = main
                exec(compile(target, "<string>", "exec"), main.__dict__)  # noqa: S102 - python -c
            else:
                sys.path[0] = os.path.dirname(os.path.abspath(target))
                runpy.run_path(target, run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = _exit_status(exit_.code)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except BaseException:  # noqa: BLE001 - what the interpreter does with it
            error_type, error, tb = sys.exc_info()
            while tb is not None and tb.tb_frame.f_code.co_filename in (__file__, runpy.__file__):
                tb = tb.tb_next  # the traceback python prints: from the user's code down
            sys.excepthook(error_type, error.with_traceback(tb), tb)
            code = 1
        threading._shutdown()  # the interpreter joins non-daemon threads, then atexit
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - a closed pipe at exit, as python ignores
                pass
        os._exit(code)


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


# --------------------------------------------------------------------------- for tests

REAL_PYTHON = sys.executable
_started: dict = {}


def python() -> str:
    """The shim's path: a zygote for this test process, started on first use and killed at
    exit.  ``FIREACT_TESTS_REAL_PYTHON=1`` gives the real interpreter instead."""
    if os.environ.get("FIREACT_TESTS_REAL_PYTHON", "") not in ("", "0"):
        return REAL_PYTHON
    if "shim" in _started:
        return _started["shim"]
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="fast-python-")  # short: a socket path has 107 bytes
    socket_path, shim = os.path.join(folder, "zygote.sock"), os.path.join(folder, "python")
    with open(shim, "w") as fh:
        fh.write(f"#!{REAL_PYTHON} -S\nimport sys\n"
                 f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
                 f"from fast_python import client\nclient({socket_path!r}, {REAL_PYTHON!r})\n")
    os.chmod(shim, 0o755)
    zygote = _start(socket_path, shim)

    def stop() -> None:  # the other zygotes die with it (PR_SET_PDEATHSIG)
        zygote.kill()
        zygote.wait()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    _started["shim"] = shim
    return shim


if __name__ == "__main__":
    sys.modules.setdefault("fast_python", sys.modules["__main__"])
    serve(sys.argv[1], sys.argv[2])
