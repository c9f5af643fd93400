"""lm-eval's own task-manager, group and registry tests, with our start-up hook on and off:
the outcomes must be the same test by test (issue 33: the hook changed lm-eval for users who
never asked for our tasks).

The tests come from lm-eval's sdist on the package registry, of the version installed here;
some of them need fixture files the sdist lacks (``tests/test_configs``) and fail either
way: what is compared is each test's outcome with and without the hook, not a pass count.

    python .ci/lm_eval_upstream.py            # prints the counts; exit 1 on any difference
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

TEST_FILES = ("tests/test_task_manager.py", "tests/test_group.py", "tests/test_registry.py")
_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)")


def fetch_tests(into: Path) -> Path:
    wanted = version("lm_eval")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                    ":all:", f"lm_eval=={wanted}", "-d", str(into)], check=True)
    sdist = next(into.glob("lm_eval-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/tests/" in m.name]
        tar.extractall(into, members=members, filter="data")
    # the tests run beside the installed lm_eval, not the sdist's copy of it
    return next(into.glob("lm_eval-*/tests")).parent


def outcomes(root: Path, hook_on: bool) -> dict[str, str]:
    env = {**os.environ, "FIREACT_EVAL_NO_AUTOLOAD": "0" if hook_on else "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("FIREACT_EVAL_TASKS_ONLY", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           "-o", "addopts=", *TEST_FILES], cwd=root, env=env,
                          capture_output=True, text=True)
    found = {m[2]: m[1] for line in proc.stdout.splitlines() if (m := _OUTCOME.match(line))}
    if not found:
        raise SystemExit(f"no test outcomes read (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    return found


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = fetch_tests(Path(tmp))
        with ThreadPoolExecutor(2) as pool:  # the two runs at once: one core each
            on, off = pool.map(lambda hook: outcomes(root, hook), (True, False))
    count = {name: sum(v == "PASSED" for v in runs.values()) for name, runs in
             (("on", on), ("off", off))}
    print(f"lm-eval {version('lm_eval')}'s own tests ({', '.join(TEST_FILES)}): "
          f"{len(off)} run; passed with our hook on {count['on']}, off {count['off']}")
    differ = sorted(t for t in set(on) | set(off) if on.get(t) != off.get(t))
    for test in differ:
        print(f"  {test}: hook on {on.get(test, 'absent')}, off {off.get(test, 'absent')}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
