"""Shared fixtures: the tiny trained agent, its untrained twin, and an ``lm_eval`` runner."""

from __future__ import annotations

import csv
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fast_python import python  # noqa: E402 - from the folder just put on the path

# Offline before any test module is imported: ``datasets`` and ``huggingface_hub`` read these
# once, at import (set in a fixture, they came too late for modules imported at collection,
# and a Hub lookup in the unit lane waited 23 s for the network)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# One worker per core (``-n auto``): each worker's torch gets its share of the cores; two
# processes each spinning two OpenMP threads on two cores made training ~3x slower
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(
        1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIREACT_DATA = SHARED / "data" / "fireact"


# A test is end-to-end (``e2e``) when it uses a model or a built package, or starts a process
# (through these helpers or subprocess); every other test is ``unit``.
E2E_FIXTURES = {"tiny_model", "untrained_model", "runs", "built_dists", "unpacked_wheel",
                "tokenizer"}
_STARTS_A_PROCESS = re.compile(r"\b(cli|run_lm_eval|fireact_eval|python|lint_imports|demo_eval|"
                               r"assert_better_agent|lm_eval_on_serpapi)\(|subprocess\.|Popen")


# modules whose tests run for a minute or more (--durations): started first, so that with
# one worker per core the last minutes are not one long test on one core
LONG_FIRST = ("test_experiment", "test_trainers", "test_crash", "test_noise", "test_grpo",
              "test_generate", "test_convert")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.module.__name__ if getattr(item, "module", None) else ""
        return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)  # stable: the order within a module is kept
    for item in items:
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function else ""
        except (OSError, TypeError):
            source = ""
        e2e = (E2E_FIXTURES & set(getattr(item, "fixturenames", ()))
               or _STARTS_A_PROCESS.search(source) or item.get_closest_marker("slow"))
        item.add_marker(pytest.mark.e2e if e2e else pytest.mark.unit)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Search indexes are built into a fresh cache, so the tests also exercise building."""
    cache = tmp_path_factory.mktemp("fireact_cache")
    old = os.environ.get("FIREACT_EVAL_CACHE")
    os.environ["FIREACT_EVAL_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("FIREACT_EVAL_CACHE", None)
    else:
        os.environ["FIREACT_EVAL_CACHE"] = old


def shared(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)`` once per test session, whatever the number of xdist workers: the
    first worker to ask makes it under a lock, the others wait and read the same folder
    (read only; pytest-xdist's documented recipe for session data)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's base temp is in
    folder = root / f"shared-{name}"
    with FileLock(str(folder) + ".lock"):
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".made").touch()
    return folder


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory) -> Path:
    from tiny_agent import build_untrained

    return shared(tmp_path_factory, "tiny_untrained", build_untrained)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Llama trained until it searches and finishes on the first 8 demo questions."""
    from tiny_agent import build_untrained, train

    def make(folder: Path) -> None:
        build_untrained(folder)
        losses = train(folder, steps=150)
        assert losses[-1] < 0.2 * losses[0]

    return shared(tmp_path_factory, "tiny_trained", make)


@pytest.fixture(scope="session")
def runs(tiny_model, untrained_model, tmp_path_factory):
    """The trained tiny agent (clean and noisy search) and its untrained twin, 8 questions,
    as ``lm_eval --output_path ... --log_samples`` wrote them."""
    def make(root: Path) -> None:
        for name, model, tasks in (
                ("trained", tiny_model, "fireact_demo,fireact_demo_noise_random"),
                ("untrained", untrained_model, "fireact_demo")):
            run_lm_eval("--model", "hf", "--model_args", f"pretrained={model}", "--tasks",
                        tasks, "--device", "cpu", "--batch_size", "8", "--limit", "8",
                        "--metadata", "shots=zeroshot", "max_turns=4", "--gen_kwargs",
                        "max_gen_toks=64", "--output_path", str(root / name), "--log_samples")

    return shared(tmp_path_factory, "runs", make)


@pytest.fixture(scope="session")
def built_dists(tmp_path_factory) -> Path:
    """The sdist and the wheel of this tree, built as a user's ``python -m build`` builds
    them (the wheel from the sdist), without fetching a build environment. Built once for all
    xdist workers: two builds at once race on the checkout's egg-info."""
    def make(out: Path) -> None:
        proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                               str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    return shared(tmp_path_factory, "dist", make)


@pytest.fixture(scope="session")
def unpacked_wheel(built_dists, tmp_path_factory) -> Path:
    """The wheel's files as pip lays them out in site-packages."""
    import zipfile

    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(next(built_dists.glob("*.whl"))) as wheel:
        wheel.extractall(site)
    return site


@pytest.fixture(scope="session")
def train_file(tmp_path_factory) -> Path:
    """Alpaca rows: gold trajectories for the tiny agent's 8 demo questions (read only)."""
    from tiny_agent import demo_questions, gold_trajectory

    path = tmp_path_factory.mktemp("data") / "train.json"
    path.write_text(json.dumps([{"instruction": q["question"], "input": "",
                                 "output": gold_trajectory(q)} for q in demo_questions()]))
    return path


def cli(*args: str, env: dict | None = None, timeout: float = 900,
        check: bool = False) -> subprocess.CompletedProcess:
    """``fireact-eval ARGS`` as a user runs it, in a subprocess: for what only a process
    shows (its exit status, what it prints, a run that really trains)."""
    proc = subprocess.run([python(), "-m", "fireact_eval.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"fireact-eval {args[0]} failed ({proc.returncode}):\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """``fireact-eval ARGS`` through the real parser and ``main`` in this process: for an
    argument or settings error, which must come before any heavy import or model load
    (a subprocess would pay ~2 s of imports to show the same line)."""
    import contextlib
    import io

    from fireact_eval.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exit_:
            if isinstance(exit_.code, str):  # main's one line
                err.write(exit_.code + "\n")
                code = 1
            else:
                code = exit_.code or 0
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def _typed(value: str):
    """A ``k=v`` value as lm-eval 0.4.13 typed it (``handle_arg_string``)."""
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def as_json_metadata(args: tuple[str, ...]) -> list[str]:
    """``--metadata k=v,k=v ...`` (the items after the flag, up to the next flag) as the
    JSON object every supported lm-eval parses (0.5 takes no ``k=v``): the form the docs
    give; ``test_lm_eval_e2e`` keeps one run in the ``k=v`` form where 0.4.13 takes it."""
    out: list[str] = []
    items: list[str] | None = None  # the k=v items of a --metadata being read
    for arg in args:
        if items is not None and not arg.startswith("-"):
            if arg.startswith("{"):  # JSON already
                out.append(arg)
                items = None
            else:
                items += [item for item in arg.split(",") if item]
            continue
        if items:
            out.append(json.dumps({k: _typed(v) for k, v in (i.split("=", 1) for i in items)}))
        items = [] if arg == "--metadata" else None
        out.append(arg)
    if items:
        out.append(json.dumps({k: _typed(v) for k, v in (i.split("=", 1) for i in items)}))
    return out


def run_lm_eval(*args: str, check: bool = True, metadata_as_given: bool = False
                ) -> subprocess.CompletedProcess:
    """``lm_eval`` as a user runs it, in a subprocess; only our tasks are indexed (15 s less).
    ``--metadata`` goes as JSON (``as_json_metadata``) unless ``metadata_as_given``."""
    args = tuple(args) if metadata_as_given else tuple(as_json_metadata(args))
    proc = subprocess.run(
        [python(), "-m", "lm_eval", *args], capture_output=True, text=True, timeout=600,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "FIREACT_EVAL_TASKS_ONLY": "1"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lm_eval failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def read_outputs(output_path: Path, task: str) -> tuple[dict, list[dict]]:
    """The results JSON and the sample lines lm-eval wrote for ``task``."""
    results = sorted(output_path.glob("*/results_*.json"))[-1]
    samples = sorted(output_path.glob(f"*/samples_{task}_*.jsonl"))[-1]
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    return json.loads(results.read_text())["results"][task], lines


@pytest.fixture
def fireact_layout(tmp_path):
    """A few rows of each task in FireAct's file layout."""
    (tmp_path / "hotpotqa").mkdir()
    trained_on = [  # two of the tiny agent's questions (tests/tiny_agent.py)
        ("In which village was the founder of Velmora Observatory born?", "Kettwick"),
        ("Who is the governor of the province whose capital is Saltmere?", "Alda Korvin"),
    ]
    (tmp_path / "hotpotqa" / "dev.json").write_text(
        json.dumps([{"question": q, "answer": a} for q, a in trained_on]))
    (tmp_path / "bamboogle").mkdir()
    with (tmp_path / "bamboogle" / "test.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["Question", "Answer"],
                                  ["Which village was Ilse Brandauer born in?", "Kettwick"],
                                  ["Who founded Velmora Observatory?", "Ilse Brandauer"]])
    (tmp_path / "strategyqa").mkdir()
    (tmp_path / "strategyqa" / "strategyqa_dev.json").write_text(json.dumps(
        [{"qid": "s1", "question": "Is Mount Tessel higher than Mount Ashgrave?", "answer": False},
         {"qid": "s2", "question": "Was Ida Sorel born in Pellow?", "answer": True}]))
    (tmp_path / "mmlu" / "test").mkdir(parents=True)
    with (tmp_path / "mmlu" / "test" / "geography_test.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["Which river flows through Brannock?", "Orrin", "Lisk",
                                   "Amber", "Grey", "B"],
                                  ["Where is Kettwick?", "Orrin Valley", "Grey Coast", "Serrin",
                                   "Westmarch", "A"]])
    return tmp_path
