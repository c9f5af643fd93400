"""The tests' zygote Python behaves as ``python`` does where the suite relies on it: exit
status, output, tracebacks, signals, a killed caller, ``sys.executable``, the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from fast_python import REAL_PYTHON, python


def run(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([python(), *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_a_command_runs_as_python_runs_it(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import os, sys; print(sys.argv[1:], os.getcwd(), os.environ['X']);"
                      "sys.exit(3)")
    proc = subprocess.run([python(), str(script), "a", "b"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "X": "y"}, timeout=120)
    assert proc.returncode == 3 and proc.stdout.split() == ["['a',", "'b']", str(tmp_path), "y"]
    proc = run("-c", "import sys; print(sys.executable); sys.exit('bad')")
    assert proc.returncode == 1 and proc.stderr == "bad\n"
    assert proc.stdout.strip() == python()  # what a command starts goes the same way
    proc = run("-c", "raise ValueError('boom')")
    assert proc.returncode == 1 and proc.stderr.startswith("Traceback (most recent call last):")
    assert "fast_python" not in proc.stderr and proc.stderr.endswith("ValueError: boom\n")
    assert run("-m", "fireact_eval.cli", "--help").stdout.startswith("usage: ")


def test_signals_reach_the_run_and_a_killed_caller_ends_it(tmp_path):
    proc = run("-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert proc.returncode == -signal.SIGTERM
    marker = tmp_path / "alive"
    code = (f"import time, pathlib\nwhile True: pathlib.Path({str(marker)!r}).touch(); "
            "time.sleep(0.05)")
    caller = subprocess.Popen([python(), "-c", code])
    deadline = time.time() + 60
    while not marker.exists():
        assert time.time() < deadline
        time.sleep(0.05)
    caller.kill()
    caller.wait()
    time.sleep(0.5)
    marker.unlink()
    time.sleep(0.5)
    assert not marker.exists(), "the run outlived its killed caller"


@pytest.mark.parametrize("argv, env", [
    (["-X", "importtime", "-c", "import sys; print(sys.executable)"], {}),
    # read at start-up, and new: the first use of an environment is a real process
    (["-c", "import sys; print(sys.executable)"], {"PYTHONFASTTEST": str(time.time_ns())}),
])
def test_what_a_fork_cannot_honour_runs_in_the_real_interpreter(argv, env):
    proc = run(*argv, **env)
    assert proc.returncode == 0 and proc.stdout.strip() == REAL_PYTHON, proc.stderr
    assert sys.executable == REAL_PYTHON
