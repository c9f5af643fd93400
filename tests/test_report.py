"""Outcome classes, the report's data model, its statistics, and the page in a real browser."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fast_python import python as fast_python
from hypothesis import given, settings
from hypothesis import strategies as st

from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import read_samples
from fireact_eval.outcomes import OUTCOMES, PREFIX, classify, outcome_metrics
from fireact_eval.perturb import make_perturbation
from fireact_eval.results.frame import load_runs
from fireact_eval.results.report import build_report, step_marks
from fireact_eval.results.report_page import render, write_report
from fireact_eval.results.tables import outcomes
from fireact_eval.rollout import Episode, run_episodes
from fireact_eval.scoring import qa
from fireact_eval.stats import mcnemar_exact, paired_binary, paired_bootstrap, wilson_interval
from fireact_eval.tools import ToolError
from fireact_eval.trajectory import Trajectory

from conftest import run_lm_eval

# ------------------------------------------------------------------ outcome classes


def _scripted(script: dict[str, list[str]]):
    """A batched ``generate`` that answers each prompt with its script's next turn."""
    def generate(requests):
        return [script[context.split("\n", 1)[0]][context.count("Observation:")
                                                  + context.count("Reflection:")]
                for context, _ in requests]
    return generate


class _Search:
    """A search tool: ``fail`` raises a ToolError, anything else is looked up."""

    def __call__(self, query: str) -> str:
        if query == "fail":
            raise ToolError("HTTP 500")
        return f"{query} is in Paris."


SEARCH = "Thought: look it up\nAction: search[{}]"
SCRIPTS = {  # question -> the turns the agent writes; gold answer is always "Paris"
    "q-correct": [SEARCH.format("x"), "Thought: so\nAction: finish[Paris]"],
    "q-wrong": ["Thought: guess\nAction: finish[Rome]"],
    "q-empty": ["Thought: no idea\nAction: finish[]"],
    "q-format": ["I think it's Paris"] * 3,
    "q-tool": [SEARCH.format("fail")] * 3,
    "q-turns": [SEARCH.format("y")] * 3,
    "q-context": ["never generated"],
}


def _engine_trajectories(noise: str = "off") -> dict[str, Trajectory]:
    episodes = [Episode(f"{q}\nQuestion: where?\n", {"search": _Search()}, max_turns=3,
                        context_limit=2 if q == "q-context" else None,
                        observe=make_perturbation(noise, 0.5, 0, q, ["other"]))
                for q in SCRIPTS]
    trajectories = run_episodes(episodes, _scripted(SCRIPTS),
                                count_tokens=lambda c: len(str(c).split()), progress=False)
    return dict(zip(SCRIPTS, trajectories, strict=True))


def test_every_outcome_is_reached_by_the_engine():
    trajectories = _engine_trajectories()
    got = {q: classify(t, qa({"answer": "Paris"}, [t.to_json()])["exact_match"] == 1.0)
           for q, t in trajectories.items()}
    assert got == {"q-correct": "correct", "q-wrong": "wrong_answer", "q-empty": "empty_answer",
                   "q-format": "format_failure", "q-tool": "tool_failure",
                   "q-turns": "turn_limit", "q-context": "context_limit"}
    assert set(got.values()) == set(OUTCOMES)
    stopped = trajectories["q-context"]
    assert stopped.context_exceeded and stopped.turns == 0 and stopped.prompt_tokens == 0
    assert [s.mark for s in trajectories["q-tool"].steps] == ["tool_error"] * 3
    assert [s.mark for s in trajectories["q-format"].steps] == ["invalid_action"] * 3


counters = st.integers(0, 12)


@given(turns=counters, tool_calls=counters, tool_errors=counters, invalid=counters,
       finished=st.booleans(), answer=st.one_of(st.none(), st.text(max_size=8)),
       exceeded=st.booleans(), correct=st.booleans())
def test_outcomes_partition_every_trajectory(turns, tool_calls, tool_errors, invalid, finished,
                                             answer, exceeded, correct):
    t = Trajectory(turns=turns, tool_calls=tool_calls, tool_errors=min(tool_errors, tool_calls),
                   invalid_actions=invalid, finished=finished, answer=answer,
                   context_exceeded=exceeded)
    outcome = classify(t, correct)
    assert outcome in OUTCOMES
    assert sum(outcome_metrics(outcome).values()) == 1
    assert (outcome == "correct") == correct


def _write_run(root: Path, name: str, trajectories: dict[str, Trajectory], gold: dict[str, str],
               metadata: dict | None = None, strip: bool = False, task: str = "fireact_demo"):
    """A result folder as ``lm_eval --log_samples`` writes it, scored by our own scoring;
    ``strip`` drops per-step marks and outcome metrics (a run logged before they existed)."""
    folder = root / name / "model"
    folder.mkdir(parents=True)
    metadata = {"dataset": "demo", "shots": "zeroshot", **(metadata or {})}
    lines, sums = [], {}
    for doc_id, (question, trajectory) in enumerate(trajectories.items()):
        doc = {"id": question, "question": question, "answer": gold[question]}
        record = json.loads(trajectory.to_json())
        scores = qa(doc, [trajectory.to_json()])
        if strip:
            for step in record["steps"]:
                step.pop("mark")
            scores = {k: v for k, v in scores.items() if not k.startswith(PREFIX)}
        for key, value in scores.items():
            sums[key] = sums.get(key, 0.0) + value
        lines.append(json.dumps({
            "doc_id": doc_id, "doc_hash": f"hash-{question}", "doc": doc,
            "arguments": {"gen_args_0": {"arg_0": f"PROMPT for {question}", "arg_1": {},
                                         "arg_2": metadata}},
            "resps": [[json.dumps(record)]], **scores}))
    n = len(lines)
    (folder / "results_2026-12-01T10-00-00.1.json").write_text(json.dumps({
        "results": {task: {f"{k},none": v / n for k, v in sums.items()}},
        "configs": {task: {"metadata": metadata}},
        "higher_is_better": {task: {"exact_match": True}},
        "n-samples": {task: {"effective": n}},
        "config": {"model_args": {"pretrained": name}}}))
    (folder / f"samples_{task}_2026-12-01T10-00-00.1.jsonl").write_text("\n".join(lines) + "\n")
    return str(root / name)


GOLD = {q: "Paris" for q in SCRIPTS}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(list(SCRIPTS)), min_size=1, max_size=12))
def test_outcome_shares_add_up_to_n_in_every_run(tmp_path_factory, picks):
    engine = _engine_trajectories()
    trajectories = {f"{q}#{i}": engine[q] for i, q in enumerate(picks)}
    root = tmp_path_factory.mktemp("outcomes")
    _write_run(root, "r", trajectories, {q: "Paris" for q in trajectories})
    table = outcomes(load_runs([str(root / "r")]))
    assert table["n"].iloc[0] == len(picks)
    assert table[list(OUTCOMES)].sum(axis=1).iloc[0] == pytest.approx(1.0)
    assert round(table["correct"].iloc[0] * len(picks)) == picks.count("q-correct")


def test_runs_logged_before_outcomes_and_marks_get_them_derived(tmp_path):
    """Strip the marks and outcome metrics from a noisy run: the report derives the same."""
    engine = _engine_trajectories(noise="none")
    assert any(s.mark == "perturbed" for t in engine.values() for s in t.steps)
    noisy = {"noise": "none", "noise_p": 0.5, "noise_seed": 0}
    new = _write_run(tmp_path, "new", engine, GOLD, noisy)
    old = _write_run(tmp_path, "old", engine, GOLD, noisy, strip=True)
    [new_samples] = [list(read_samples(p)) for p in Path(new).rglob("samples_*.jsonl")]
    [old_samples] = [list(read_samples(p)) for p in Path(old).rglob("samples_*.jsonl")]
    assert not any(PREFIX + "correct" in s.scores for s in old_samples)
    assert [s.outcome for s in old_samples] == [s.outcome for s in new_samples]
    assert [step_marks(s) for s in old_samples] == [step_marks(s) for s in new_samples]
    old_table = outcomes(load_runs([old]))
    assert old_table["n"].iloc[0] == len(SCRIPTS)
    assert old_table[list(OUTCOMES)].iloc[0].tolist() == pytest.approx([1 / 7] * 7)


# ------------------------------------------------------------------ statistics


def test_mcnemar_exact_against_textbook_values():
    # Agresti's presidential approval 2x2 (discordant 150 vs 86): exact p ~ 3.7e-5
    assert mcnemar_exact(150, 86) == pytest.approx(3.7e-5, rel=0.1)
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)  # 2 * P(X <= 1), X ~ Bin(10, .5)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(5, 5) == 1.0


def test_wilson_interval_known_values():
    low, high = wilson_interval(7, 12)
    assert (low, high) == pytest.approx((0.3195, 0.8067), abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and all(math.isnan(v) for v in wilson_interval(0, 0))


def test_paired_bootstrap_covers_the_true_difference():
    """On simulated paired runs (p_a = 0.5, p_b = 0.6, correlated), the 95 % interval covers
    the true +0.1 in about 95 % of 300 simulations."""
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(300):
        shared = rng.random(100)
        a = (shared < 0.5).astype(float)
        b = np.where(rng.random(100) < 0.7, shared < 0.6, rng.random(100) < 0.6).astype(float)
        low, high = paired_bootstrap(b - a, resamples=2000, seed=int(rng.integers(1 << 30)))
        covered += low <= 0.1 <= high
    assert 0.90 <= covered / 300 <= 0.99
    assert paired_bootstrap([1.0, 1.0]) == (1.0, 1.0)


def test_paired_binary_table():
    result = paired_binary([1, 1, 0, 0, 1], [1, 0, 1, 1, 1])
    assert (result.both, result.only_a, result.only_b, result.neither) == (2, 1, 2, 0)
    assert result.difference == pytest.approx(0.2) and result.n == 5


# ------------------------------------------------------------------ the report's data model


def _pair_of_runs(tmp_path):
    engine = _engine_trajectories()
    flipped = dict(engine)
    flipped["q-wrong"], flipped["q-correct"] = engine["q-correct"], engine["q-turns"]
    a = _write_run(tmp_path, "base", engine, GOLD)
    b = _write_run(tmp_path, "cand", flipped, GOLD)
    return a, b


def test_report_model_pairs_questions_by_doc_hash(tmp_path):
    a, b = _pair_of_runs(tmp_path)
    report = build_report([f"A={a}", f"B={b}"])
    assert [r.label for r in report.runs] == ["A", "B"] and len(report.questions) == 14
    [pair] = report.pairs
    t = pair.test
    assert (t.n, t.both, t.only_a, t.only_b, t.neither) == (7, 0, 1, 1, 5)
    assert t.difference == 0 and t.p_value == 1.0
    assert sum(sum(row.values()) for row in pair.transitions.values()) == 7
    assert pair.transitions["correct"]["turn_limit"] == 1
    assert pair.transitions["wrong_answer"]["correct"] == 1
    assert sorted(pair.differing) == ["hash-q-correct", "hash-q-wrong"]
    assert report.runs[0].prompt == "PROMPT for q-correct"
    assert report.runs[0].outcomes == {name: 1 for name in OUTCOMES}
    assert {t.title for t in report.tables} == {"leaderboard", "robustness", "cost", "outcomes"}
    # --baseline / --candidate swap the sides
    [swapped] = build_report([], baseline=b, candidate=a).pairs
    assert (swapped.test.only_a, swapped.test.only_b) == (1, 1)
    assert swapped.transitions["correct"]["wrong_answer"] == 1


def test_report_refuses_what_cannot_be_paired(tmp_path):
    a, _ = _pair_of_runs(tmp_path)
    other = {f"other-{q}": t for q, t in _engine_trajectories().items()}
    c = _write_run(tmp_path, "disjoint", other, {q: "Paris" for q in other})
    with pytest.raises(FireactError, match="share no question"):
        build_report([a, c])
    with pytest.raises(FireactError, match="give both --baseline and --candidate"):
        build_report([a], baseline=a)
    two = tmp_path / "two"
    _write_run(two, "x", _engine_trajectories(), GOLD)
    _write_run(two, "y", _engine_trajectories(), GOLD, {"max_turns": 2})
    with pytest.raises(FireactError, match="the candidate holds 2 runs"):
        build_report([a, str(two)])
    assert len(build_report([str(two)]).runs) == 2  # one folder, no pairing asked: fine
    noisy = _write_run(tmp_path, "noisy", _engine_trajectories(), GOLD, {"noise": "none"})
    assert "differ in their environment (noise: baseline off, candidate none)" in (
        build_report([a, noisy]).notes[0])  # paired anyway, and said


def test_page_is_self_contained_and_escapes_model_text(tmp_path):
    engine = _engine_trajectories()
    engine["q-wrong"].steps[0].thought = "</script><script>alert(1)</script><!--"
    a = _write_run(tmp_path, "a", engine, GOLD)
    page = render(build_report([a]))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert "<script>alert(1)" not in page
    payload = re.search(r'<script id="report-data" type="application/json">(.*?)</script>',
                        page, re.S)[1]
    data = json.loads(payload)
    assert data["questions"][1]["steps"][0]["thought"].startswith("</script>")


def test_cli_report_and_outcomes_table(tmp_path):
    a, b = _pair_of_runs(tmp_path)
    out = tmp_path / "r.html"
    proc = subprocess.run([fast_python(), "-m", "fireact_eval.cli", "report", a, b, "--out",
                           str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "1 paired tasks" in proc.stdout and out.read_text().startswith("<!doctype html>")
    proc = subprocess.run([fast_python(), "-m", "fireact_eval.cli", "results", "table", a,
                           "--shape", "outcomes"], capture_output=True, text=True)
    assert proc.returncode == 0 and "format_failure" in proc.stdout, proc.stderr
    proc = subprocess.run([fast_python(), "-m", "fireact_eval.cli", "report", a,
                           str(tmp_path / "nothing")], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("fireact-eval: error:")


# ------------------------------------------------------------------ real runs, real browser


def test_lm_eval_runs_record_outcomes(runs):
    results = json.loads(next((runs / "trained").rglob("results_*.json")).read_text())
    for task, values in results["results"].items():
        shares = [values[f"{PREFIX}{name},none"] for name in OUTCOMES]
        assert sum(shares) == pytest.approx(1.0), task
        assert values[f"{PREFIX}correct,none"] == pytest.approx(values["exact_match,none"])
    assert results["higher_is_better"]["fireact_demo"][f"{PREFIX}turn_limit"] is False


def test_a_prompt_longer_than_the_model_stops_as_context_limit(untrained_model, tmp_path):
    """hf with max_length=300 cannot take the few-shot prompt (~1,500 tokens) with 64 new
    tokens: every rollout stops before generating, as ``context_limit``."""
    run_lm_eval("--model", "hf", "--model_args", f"pretrained={untrained_model},max_length=300",
                "--tasks", "fireact_demo", "--device", "cpu", "--batch_size", "4", "--limit",
                "2", "--gen_kwargs", "max_gen_toks=64", "--output_path", str(tmp_path),
                "--log_samples")
    [row] = load_runs([str(tmp_path)]).itertuples()
    assert getattr(row, f"{PREFIX}context_limit") == 1.0 and row.turns == 0


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no system Chromium (Debian: apt install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


def test_report_in_a_real_browser(runs, browser, tmp_path):
    """Open the report of two real lm_eval runs from file://, filter, read a trajectory
    from the DOM, open the paired view and its side-by-side trajectories."""
    out = write_report(build_report([f"untrained={runs / 'untrained'}",
                                     f"trained={runs / 'trained'}"]), tmp_path / "report.html")
    shots = Path(os.environ.get("FIREACT_REPORT_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(out.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#runs-table tr").count() == 1 + 3  # header + 3 (run, task) rows
    page.screenshot(path=str(shots / "report-overview.png"), full_page=True)

    page.click("nav button[data-view='questions']")
    assert page.inner_text("#q-count") == "24 of 24 rollouts"
    page.select_option("#f-run", label="trained · fireact_demo")
    page.select_option("#f-correct", "1")
    count = int(page.inner_text("#q-count").split()[0])
    samples = [json.loads(line) for p in (runs / "trained").rglob("samples_fireact_demo_2*")
               for line in p.read_text().splitlines()]
    assert count == sum(s["exact_match"] == 1.0 for s in samples) > 0
    page.click("#q-list .row >> nth=0")
    detail = page.text_content("#q-detail")
    assert "Turn 1" in detail and "Action: search[" in detail and "correct" in detail
    first = next(s for s in samples if s["exact_match"] == 1.0)
    assert first["doc"]["question"] in detail
    page.screenshot(path=str(shots / "report-trajectory.png"))
    page.select_option("#f-run", label="trained · fireact_demo_noise_random")
    page.select_option("#f-correct", "")
    page.select_option("#f-perturbed", "1")
    assert int(page.inner_text("#q-count").split()[0]) > 0
    page.click("#q-list .row >> nth=0")  # a faulted step is marked and coloured by its kind
    assert "perturbed: random" in page.text_content("#q-detail")
    assert page.locator("#q-detail .step.f-random .mark.fault-random").count() > 0
    page.select_option("#f-perturbed", "")
    page.fill("#f-text", "zzz-no-such-text")
    assert page.inner_text("#q-count") == "0 of 24 rollouts"

    page.click("nav button[data-view='paired']")
    assert "McNemar exact p" in page.inner_text("#pair-0")
    rows = page.locator("#p-list .row")
    if rows.count():
        rows.first.click()
        sides = page.inner_text("#p-detail")
        assert "A: untrained" in sides and "B: trained" in sides
    page.screenshot(path=str(shots / "report-paired.png"))
    assert not errors, errors
    assert all(url.startswith("file://") for url in requests), requests


def test_convert_labels_rows_with_the_dataset_not_the_lm_eval_task(runs, tmp_path):
    """Rows from ``fireact_demo`` / ``fireact_demo_noise_random`` are ``demo``, so ``data mix
    demo:react=...`` finds them (they were labelled ``fireact_demo``)."""
    from fireact_eval.convert import convert
    from fireact_eval.jsonio import read_json

    out = tmp_path / "train.json"
    report = convert([runs / "trained"], out, keep_failed=True)
    rows = read_json(out, "training data")
    assert rows and {row["task"] for row in rows} == {"demo"}
    assert all(task == "demo" for task, _ in report.seen)  # the report says what the file has


# ------------------------------------------------------------------ repeated tries


def _repeated_run(folder: Path, label: str, answers: list[list[str]], **settings) -> str:
    """A run of ``fireact_demo`` with repeats: question i's tries answer ``answers[i]``
    (gold: Paris), written in lm-eval's layout and scored by the task's own scorer."""
    from fireact_eval.harness.run_files import sample_record, write_run
    from fireact_eval.trajectory import Step, tries_to_json

    metadata = {"dataset": "demo", "repeats": len(answers[0]), **settings}
    samples = []
    for i, tries in enumerate(answers):
        trajectories = [Trajectory([Step(f"Action: finish[{a}]", None, "finish", a)], a, True,
                                   turns=1) for a in tries]
        response = tries_to_json(trajectories)
        doc = {"id": f"q{i}", "question": f"Where is thing {i}?", "answer": "Paris"}
        samples.append(sample_record(i, doc, doc["question"], metadata, response,
                                     qa(doc, [response])))
    write_run(folder / label, "fireact_demo", metadata, samples, label,
              "2026-12-01T10-00-00.000001")
    return f"{label}={folder / label}"


def test_the_report_shows_every_try_and_pairs_on_question_means(tmp_path):
    """Before: each question's first try alone was shown, and the paired view's McNemar
    test ran on first tries, as if a question run 3 times were run once."""
    a = _repeated_run(tmp_path, "a", [["Paris", "Rome", "Rome"], ["Rome"] * 3,
                                      ["Paris"] * 3, ["Rome", "Paris", "Paris"]])
    b = _repeated_run(tmp_path, "b", [["Paris"] * 3, ["Rome", "Paris", "Rome"],
                                      ["Paris"] * 3, ["Paris"] * 3])
    report = build_report([a, b])
    assert len(report.questions) == 24 and [r.n for r in report.runs] == [4, 4]
    first = [q for q in report.questions if q.run == 0 and q.key == report.questions[0].key]
    assert [(q.attempt, q.tries, q.correct) for q in first] == [(0, 3, True), (1, 3, False),
                                                                (2, 3, False)]
    assert [q.outcome for q in first] == ["correct", "wrong_answer", "wrong_answer"]
    [pair] = report.pairs
    # per-question means: a = 1/3, 0, 1, 2/3; b = 1, 1/3, 1, 1
    assert pair.test.difference == pytest.approx((2 / 3 + 1 / 3 + 0 + 1 / 3) / 4)
    assert pair.test.both is None and math.isnan(pair.test.p_value)
    assert pair.test.low <= pair.test.difference <= pair.test.high
    html = render(report, "t")
    assert "no McNemar test" in html and "Who got it right" not in html


def test_a_repeated_report_in_a_real_browser(browser, tmp_path):
    a = _repeated_run(tmp_path, "a", [["Paris", "Rome", "Rome"], ["Rome"] * 3])
    b = _repeated_run(tmp_path, "b", [["Paris"] * 3, ["Rome", "Paris", "Rome"]])
    out = write_report(build_report([a, b]), tmp_path / "report.html")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(out.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.click("nav button[data-view='questions']")
    assert page.inner_text("#q-count") == "12 of 12 rollouts"
    assert "a · try 2/3" in page.inner_text("#q-list")
    page.click("#q-list .row >> nth=1")
    assert "2 of 3" in page.text_content("#q-detail")
    page.click("nav button[data-view='paired']")
    assert "no McNemar test" in page.inner_text("#pair-0")
    page.click("#p-list .row >> nth=0")
    assert "A: a" in page.inner_text("#p-detail")
    assert not errors, errors


def test_a_tools_run_shows_its_actions_as_tool_calls_in_a_real_browser(browser, tmp_path):
    run = _repeated_run(tmp_path, "tools", [["Paris"]], format="tools")
    report = build_report([run])
    [view] = report.questions
    assert view.steps[0].call == 'finish({"answer": "Paris"})'
    out = write_report(report, tmp_path / "report.html")
    page = browser.new_page()
    page.goto(out.resolve().as_uri())
    page.wait_for_selector("body[data-ready='1']")
    page.click("nav button[data-view='questions']")
    page.click("#q-list .row >> nth=0")
    assert 'Call: finish({"answer": "Paris"})' in page.inner_text("#q-detail")
