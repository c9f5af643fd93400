"""results/: tables in the paper's shapes, plots, and the regression gate, on real runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fireact_eval.errors import FireactError
from fireact_eval.results.frame import load_runs
from fireact_eval.results.gate import gate
from fireact_eval.results.tables import cost, leaderboard, robustness
from fireact_eval.trajectory import Trajectory

from conftest import cli


def test_tables_in_the_papers_shapes(runs):
    frame = load_runs([f"trained={runs / 'trained'}", f"untrained={runs / 'untrained'}"])
    board = leaderboard(frame)
    assert list(board.index) == [("trained", "react", "zeroshot"),
                                 ("untrained", "react", "zeroshot")]  # best first
    results = json.loads(next((runs / "trained").rglob("results_*.json")).read_text())
    assert board.loc[("trained", "react", "zeroshot"), "demo"] == pytest.approx(
        results["results"]["fireact_demo"]["exact_match,none"])
    assert board["demo"].iloc[0] > board["demo"].iloc[1]
    noisy = robustness(frame).loc[("trained", "react", "demo")]
    assert noisy["drop_random"] == pytest.approx(noisy["off"] - noisy["random"])
    costs = cost(frame)
    assert {"turns", "gen_tokens", "seconds", "finished"} <= set(costs.columns)
    assert (costs["turns"] >= 1).all()


def test_cli_table_and_plot(runs, tmp_path):
    proc = cli("results", "table", f"trained={runs / 'trained'}", f"base={runs / 'untrained'}")
    assert proc.returncode == 0 and "| trained" in proc.stdout and "| base" in proc.stdout
    proc = cli("results", "table", str(runs), "--shape", "cost", "--out", str(tmp_path / "c.csv"))
    assert proc.returncode == 0 and "turns" in (tmp_path / "c.csv").read_text()
    proc = cli("results", "plot", str(runs), "--shape", "robustness", "--out",
               str(tmp_path / "fig.png"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gate_fails_a_worse_checkpoint_and_passes_an_equal_one(runs, tmp_path):
    worse = cli("gate", "--baseline", str(runs / "trained"), "--candidate",
                str(runs / "untrained"), "--report", str(tmp_path / "gate.json"))
    assert worse.returncode == 1 and "REGRESSED" in worse.stdout
    [verdict] = json.loads((tmp_path / "gate.json").read_text())
    assert verdict["paired"] == 8 and verdict["regressed"] and verdict["delta"] < 0
    same = cli("gate", "--baseline", str(runs / "trained"), "--candidate", str(runs / "trained"))
    assert same.returncode == 0 and "no regression" in same.stdout
    better = cli("gate", "--baseline", str(runs / "untrained"), "--candidate",
                 str(runs / "trained"), "--metrics", "exact_match,turns")
    assert better.returncode == 0, better.stdout


def write_run(root, name: str, scores: list[float], samples: bool = True, model: str = "model",
              metadata: dict | None = None, first: int = 0, turns: list[int] | None = None,
              task: str = "fireact_demo", config: dict | None = None,
              metrics: dict | None = None):
    """An lm-eval result folder for one task (by default fireact_demo) with these
    per-question EMs (and turns) for questions ``first``, ``first + 1``, ..., as lm-eval
    writes them (results, higher_is_better, samples with doc, arguments and resps), and
    the means of any other ``metrics``."""
    folder = root / name / Path(model).name
    folder.mkdir(parents=True)
    turns = turns or [2] * len(scores)
    n, mean = len(scores), sum(scores) / len(scores)
    stderr = (sum((s - mean) ** 2 for s in scores) / (n - 1) / n) ** 0.5
    metadata = {"dataset": "demo", "shots": "zeroshot", **(metadata or {})}
    (folder / "results_2026-11-25T10-00-00.1.json").write_text(json.dumps({
        "results": {task: {"exact_match,none": mean, "exact_match_stderr,none": stderr,
                           "turns,none": sum(turns) / n,
                           **{f"{k},none": v for k, v in (metrics or {}).items()}}},
        "configs": {task: {"metadata": metadata}},
        "higher_is_better": {task: {"exact_match": True, "turns": False}},
        "n-samples": {task: {"effective": n}},
        "config": {"model_args": {"pretrained": model}, **(config or {})},
    }))
    if samples:
        trajectory = Trajectory(finished=True, answer="x").to_json()
        (folder / f"samples_{task}_2026-11-25T10-00-00.1.jsonl").write_text("".join(
            json.dumps({"doc_id": i, "doc_hash": f"h{first + i}",
                        "doc": {"question": f"q{first + i}", "answer": "x"},
                        "arguments": {"gen_args_0": {"arg_0": "Q", "arg_1": {},
                                                     "arg_2": metadata}},
                        "resps": [[trajectory]], "filtered_resps": [trajectory],
                        "exact_match": s, "turns": t}) + "\n"
            for i, (s, t) in enumerate(zip(scores, turns, strict=True))))
    return str(root / name)


def test_gate_noise_is_paired_per_question(tmp_path):
    base = write_run(tmp_path, "base", [1.0] * 6 + [0.0] * 2)
    one_flip = write_run(tmp_path, "flip", [0.0] + [1.0] * 5 + [0.0] * 2)
    [v] = gate(base, one_flip)
    assert v.paired == 8 and v.delta == pytest.approx(-0.125) and not v.regressed
    assert v.test == "McNemar exact" and v.p_value == 1.0 and v.low < v.delta <= v.high
    big_drop = write_run(tmp_path, "drop", [0.0] * 6 + [0.0] * 2)
    [v] = gate(base, big_drop)
    # 6 discordant questions, all lost: p = 2 / 2**6
    assert v.regressed and v.delta == pytest.approx(-0.75)
    assert v.p_value == pytest.approx(2 / 64) and v.high < 0
    assert "p=0.0312 (McNemar exact, paired n=8 of 8)  REGRESSED" in v.line()
    [v] = gate(base, big_drop, tolerance=0.8)
    assert not v.regressed
    [v] = gate(base, big_drop, level=0.99)  # p = 0.031 is not below 0.01
    assert not v.regressed
    unpaired = write_run(tmp_path, "nosamples", [0.0] + [1.0] * 5 + [0.0] * 2, samples=False)
    [v] = gate(base, unpaired)
    # wider without pairing
    assert v.paired == 0 and v.test == "unpaired normal" and v.high - v.low > 0.6
    assert not v.regressed


def test_gate_on_five_lost_and_none_won_is_mcnemars_not_a_z_tests(tmp_path):
    """5 of 40 questions lost, none won: the paired z-test said REGRESSED (mean -0.125, se
    0.053, z = 2.4); McNemar's exact p is 2 / 32 = 0.0625, not significant at 0.95."""
    base = write_run(tmp_path, "base", [1.0] * 20 + [0.0] * 20)
    cand = write_run(tmp_path, "cand", [0.0] * 5 + [1.0] * 15 + [0.0] * 20)
    [v] = gate(base, cand)
    assert v.p_value == pytest.approx(0.0625) and not v.regressed
    six = write_run(tmp_path, "six", [0.0] * 6 + [1.0] * 14 + [0.0] * 20)
    [v] = gate(base, six)
    assert v.p_value == pytest.approx(2 / 64) and v.regressed


def test_gate_on_graded_scores_uses_the_paired_bootstrap(tmp_path):
    """Turns (lower is better) are not 0/1: the bootstrap interval of the paired difference
    decides, and the direction comes from the file."""
    base = write_run(tmp_path, "base", [1.0] * 10, turns=[2] * 10)
    slower = write_run(tmp_path, "slower", [1.0] * 10, turns=[3, 4] * 5)
    [v] = gate(base, slower, metrics=["turns"])
    assert v.test == "paired bootstrap" and math.isnan(v.p_value)
    assert v.delta == pytest.approx(-1.5) and v.high < 0 and v.regressed
    noisy = write_run(tmp_path, "noisy", [1.0] * 10, turns=[1, 3] * 5)
    [v] = gate(base, noisy, metrics=["turns"])
    assert v.low < 0 < v.high and not v.regressed


def test_bad_result_paths_are_clear_errors(tmp_path):
    with pytest.raises(FireactError, match="not found"):
        load_runs([str(tmp_path / "missing")])
    with pytest.raises(FireactError, match="no lm-eval results_"):
        load_runs([str(tmp_path)])
    write_run(tmp_path, "a", [1.0, 0.0])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results_x.json").write_text(json.dumps({
        "results": {"fireact_mmlu": {"acc,none": 0.5}},
        "configs": {"fireact_mmlu": {"metadata": {}}}}))
    with pytest.raises(FireactError, match="no task in common"):
        gate(str(tmp_path / "a"), str(tmp_path / "b"))


def test_dataset_and_settings_come_from_the_recorded_metadata_not_the_task_name(tmp_path):
    write_run(tmp_path, "r", [1.0, 0.0], task="my_hotpotqa_copy",
              metadata={"dataset": "hotpotqa", "method": "cot"})
    [row] = load_runs([str(tmp_path / "r")]).itertuples()
    assert (row.task, row.dataset, row.method) == ("my_hotpotqa_copy", "hotpotqa", "cot")


def test_gate_takes_each_metrics_direction_from_the_file(tmp_path):
    """turns: lower is better, as lm-eval's higher_is_better in the results file says."""
    base = write_run(tmp_path, "base", [1.0] * 8, turns=[2] * 8)
    slower = write_run(tmp_path, "slower", [1.0] * 8, turns=[5] * 8)
    faster = write_run(tmp_path, "faster", [1.0] * 8, turns=[1] * 8)
    [v] = gate(base, slower, metrics=["turns"])
    assert v.regressed and v.delta == pytest.approx(-3.0)
    [v] = gate(base, faster, metrics=["turns"])
    assert not v.regressed and v.delta == pytest.approx(1.0)


def test_different_runs_are_different_rows_never_a_mean(tmp_path):
    """n=8 at EM 1.0 and n=16 at EM 0.5 of one model: two rows, not 0.75."""
    write_run(tmp_path / "runs", "a", [1.0] * 8)
    write_run(tmp_path / "runs", "b", [1.0] * 8 + [0.0] * 8)
    board = leaderboard(load_runs([str(tmp_path / "runs")]))
    assert sorted(board["demo"]) == [0.5, 1.0] and "n" in board.index.names
    write_run(tmp_path / "s", "wiki", [1.0] * 4, metadata={"search": "wiki"})
    write_run(tmp_path / "s", "local", [0.0] * 4, metadata={"search": "local"})
    board = leaderboard(load_runs([str(tmp_path / "s")]))
    assert dict(zip(board.index.get_level_values("search"), board["demo"], strict=True)) == {
        "wiki": 1.0, "local": 0.0}


def test_a_nan_score_is_a_nan_cell_and_no_mean(tmp_path):
    """A task whose EM is NaN was dropped from the table (exit 0); the row's mean was then
    taken over the other datasets."""
    write_run(tmp_path / "runs", "a", [1.0, 0.0])
    nan_run = Path(write_run(tmp_path / "runs", "b", [1.0, 1.0], task="fireact_bamboogle",
                             metadata={"dataset": "bamboogle"}))
    results = next(nan_run.rglob("results_*.json"))
    record = json.loads(results.read_text())
    record["results"]["fireact_bamboogle"]["exact_match,none"] = float("nan")
    results.write_text(json.dumps(record))
    board = leaderboard(load_runs([str(tmp_path / "runs")]))
    assert list(board.columns) == ["bamboogle", "bamboogle_low", "bamboogle_high", "demo",
                                   "demo_low", "demo_high", "mean"]
    [row] = board.itertuples()
    assert row.demo == 0.5 and pd.isna(row.bamboogle) and pd.isna(row.mean)
    proc = cli("results", "table", str(tmp_path / "runs"))
    assert proc.returncode == 0 and "bamboogle" in proc.stdout and "nan" in proc.stdout


def test_the_same_run_twice_is_an_error_not_a_mean(tmp_path):
    write_run(tmp_path / "runs", "a", [1.0] * 8)
    write_run(tmp_path / "runs", "copy", [1.0] * 8)
    with pytest.raises(FireactError, match="the same run is there more than once"):
        load_runs([str(tmp_path / "runs")])


def test_robustness_drop_is_over_the_questions_both_runs_answered(tmp_path):
    write_run(tmp_path / "r", "clean", [1.0, 1.0, 0.0, 0.0, 1.0])
    write_run(tmp_path / "r", "noisy", [0.0, 1.0, 0.0], metadata={"noise": "random"})
    [row] = robustness(load_runs([str(tmp_path / "r")])).itertuples()
    assert row.n_random == 3 and row.drop_random == pytest.approx(1 / 3)  # not 0.6 - 0.333


def test_gate_refuses_runs_of_different_environments_and_bad_thresholds(tmp_path):
    """Clean vs noise=none of one task read as "REGRESSED -0.50" (and swapped, "ok")."""
    clean = write_run(tmp_path, "clean", [1.0] * 8)
    noisy = write_run(tmp_path, "noisy", [1.0, 0.0] * 4, metadata={"noise": "none"})
    short = write_run(tmp_path, "short", [1.0] * 8, metadata={"max_turns": 2})
    with pytest.raises(FireactError, match="noise: baseline off, candidate none"):
        gate(clean, noisy)
    with pytest.raises(FireactError, match="max_turns: baseline 11, candidate 2"):
        gate(clean, short)
    [v] = gate(clean, noisy, allow_different_settings=True)
    assert v.delta == -0.5 and v.p_value == pytest.approx(2 / 16)  # 4 lost of 8: not enough
    fewshot = write_run(tmp_path, "fewshot", [0.0] * 8, metadata={"shots": "fewshot"})
    [v] = gate(fewshot, clean)  # the agent's own settings may differ: that is the comparison
    assert v.delta == 1.0
    for bad in ({"level": float("nan")}, {"level": 1.0}, {"level": 95.0}, {"min_overlap": -1.0},
                {"tolerance": float("nan")}):
        with pytest.raises(FireactError, match="must be"):
            gate(clean, clean, **bad)


def test_robustness_never_keeps_the_first_of_two_runs(tmp_path):
    """Two noisy runs at different p are two columns, in either argument order; two runs in
    one cell (clean, n=8 and n=16) are an error, not whichever came first."""
    clean = write_run(tmp_path / "r", "clean", [1.0] * 6)
    half = write_run(tmp_path / "r", "half", [0.0] * 6, metadata={"noise": "none"})
    low = write_run(tmp_path / "r", "low", [1.0] * 3 + [0.0] * 3,
                    metadata={"noise": "none", "noise_p": 0.1})
    tables = [robustness(load_runs(order)) for order in ([clean, half, low], [clean, low, half])]
    for table in tables:
        row = table.iloc[0]
        assert row["none p=0.5 seed=0"] == 0.0 and row["none p=0.1 seed=0"] == 0.5
        assert row["drop_none p=0.1 seed=0"] == pytest.approx(0.5)
    assert list(tables[0].iloc[0]) == list(tables[1].iloc[0])
    more = write_run(tmp_path / "r", "more", [0.0] * 16)
    with pytest.raises(FireactError, match="2 runs fall in one table cell"):
        robustness(load_runs([clean, more]))


def test_gate_reports_overlap_and_refuses_a_partial_or_mixed_run(tmp_path):
    base = write_run(tmp_path, "base", [1.0] * 16)
    part = write_run(tmp_path, "part", [1.0] * 4)
    with pytest.raises(FireactError, match="answered 4 of the baseline's 16 questions"):
        gate(base, part)
    [v] = gate(base, part, min_overlap=0.25)
    assert v.paired == 4 and "paired n=4 of 16" in v.line()
    write_run(tmp_path / "two", "x", [1.0] * 16, model="m1")
    write_run(tmp_path / "two", "y", [0.0] * 16, model="m2")
    with pytest.raises(FireactError, match="the candidate holds 2 runs"):
        gate(base, str(tmp_path / "two"))


def test_fireact_dumps_import_as_runs_scored_by_our_parser(tmp_path):
    """Both traj forms; EM recomputed (the dump's own em is wrong on purpose); questions
    absent from the dump count as unfinished, out of the 500 asked."""
    from fireact_eval.questions import fireact_subset, hotpotqa
    from fireact_eval.results.fireact_dumps import import_dump

    rows = [{"question": f"Where is thing {i}?", "answer": f"Place {i}"} for i in range(600)]
    (tmp_path / "hotpotqa").mkdir()
    (tmp_path / "hotpotqa" / "dev.json").write_text(json.dumps(rows))
    asked = fireact_subset(rows)
    text = ("Below is an instruction...\n### Response:\nThought: look\nAction: search[thing]\n"
            "Observation: It is in Place {i}.\nThought: found\nAction: finish[Place {i}]\n"
            "Observation: Episode finished, reward = True\n")
    chat = [{"role": "user", "content": "Where?"},
            {"role": "assistant", "content": "Thought: guess\nAction: finish[Nowhere]"},
            {"role": "user", "content": "Observation: Episode finished, reward = False"}]
    dump = {str(asked[0]): {"traj": text.format(i=asked[0]), "em": "False", "f1": "0"},
            str(asked[1]): {"traj": repr(chat), "em": "True", "f1": "1"}}
    path = tmp_path / "hotpotqa_dev_0_500_my-model_0.0_2023-09-21-16-19-51.json"
    path.write_text(json.dumps(dump))
    docs = hotpotqa(data_dir=str(tmp_path))["test"].to_list()
    folder = import_dump(path, tmp_path / "runs", docs)
    assert folder.name == "my-model_0.0"
    [row] = load_runs([str(tmp_path / "runs")]).itertuples()
    assert row.n == 500 and row.score == pytest.approx(1 / 500)
    assert row.finished == pytest.approx(2 / 500) and row.tool_calls == pytest.approx(1 / 500)
    assert "absent from the dump, counted unfinished" in row.data
    [verdict] = gate(str(tmp_path / "runs"), str(tmp_path / "runs"))
    assert verdict.paired == 500 and not verdict.regressed
    bad = tmp_path / "hotpotqa_dev_0_500_bad.json"
    bad.write_text(json.dumps({str(asked[2]): {"em": "True"}, **dump}))
    [row] = load_runs([str(import_dump(bad, tmp_path / "runs2", docs))]).itertuples()
    assert row.score == pytest.approx(1 / 500) and "1 malformed entries, counted" in row.data


def seeded(seed: int, **config) -> dict:
    return {"random_seed": seed, "numpy_seed": 1234, "torch_seed": seed, "fewshot_seed": 1234,
            **config}


def test_runs_differing_only_in_seed_are_pooled_as_mean_and_spread(tmp_path):
    """Three seeds of one recipe were "the same run there more than once" (an error), and a
    run at another temperature the same; now the seeds pool into one row that says so, and
    the other temperature stays its own row."""
    from fireact_eval.results.frame import pool_seeds
    from fireact_eval.results.tables import readable

    root = tmp_path / "runs"
    scores = {0: [1.0] * 6 + [0.0] * 4, 1: [1.0] * 4 + [0.0] * 6, 2: [1.0] * 5 + [0.0] * 5}
    for seed, row in scores.items():
        write_run(root, f"s{seed}", row, config=seeded(seed, gen_kwargs="temperature=0.7,"
                                                       "do_sample=True"))
    write_run(root, "hot", [0.0] * 10, config=seeded(0, gen_kwargs="do_sample=True,"
                                                     "temperature=1.5"))
    frame = load_runs([str(root)])
    assert len(frame) == 4 and set(frame["decoding"]) == {
        "do_sample=True,temperature=0.7", "do_sample=True,temperature=1.5"}
    pooled = pool_seeds(frame).set_index("decoding")
    three = pooled.loc["do_sample=True,temperature=0.7"]
    assert three["runs"] == 3 and three["score"] == pytest.approx(0.5)
    assert three["score_spread"] == pytest.approx(0.1)  # sd of 0.6, 0.4, 0.5
    assert three["seed"] == "; ".join(f"run={s},1234,{s},1234" for s in range(3))
    assert three["interval"] == "question bootstrap over 3 runs"
    assert three["score_low"] < 0.5 < three["score_high"]
    hot = pooled.loc["do_sample=True,temperature=1.5"]
    assert hot["runs"] == 1 and pd.isna(hot["score_spread"]) and hot["interval"] == "wilson"
    board = leaderboard(pool_seeds(frame))
    # the identity columns say what was pooled and what differs
    assert {"decoding", "seed", "runs"} <= set(board.index.names) and "demo_sd" in board.columns
    [cell] = readable(board).xs("do_sample=True,temperature=0.7", level="decoding")["demo"]
    assert cell.startswith("0.500 ± 0.100 [")
    proc = cli("results", "table", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "0.500 ± 0.100 [" in proc.stdout and "standard deviation of the score over the " \
        "runs pooled" in proc.stdout and "bootstrap over questions, each with its score in " \
        "all 3 runs" in proc.stdout


def test_adapters_of_one_recipe_pool_by_their_cards_and_other_recipes_never(tmp_path):
    """Adapters trained with seeds 0 and 1, labelled alike, pool (their cards say only the
    seed differs); one trained at another learning rate stays its own row."""
    from fireact_eval.results.frame import pool_seeds

    def adapter(name: str, seed: int, lr: float) -> str:
        folder = tmp_path / "adapters" / name
        folder.mkdir(parents=True)
        (folder / "fireact_eval.json").write_text(json.dumps({
            "base_model": "base", "data_sha256": "abc", "method": "lora",
            "hyperparameters": {"seed": seed, "lr": lr}}))
        return str(folder)

    specs = []
    for name, seed, lr, row in (("a0", 0, 1e-4, [1.0] * 4), ("a1", 1, 1e-4, [1.0, 0.0] * 2),
                                ("b0", 0, 3e-4, [0.0] * 4)):
        write_run(tmp_path / "runs", name, row, model=adapter(name, seed, lr))
        specs.append(f"lora={tmp_path / 'runs' / name}")
    frame = pool_seeds(load_runs(specs))
    assert sorted(frame["runs"]) == [1, 2]
    pair = frame[frame["runs"] == 2].iloc[0]
    assert pair["score"] == pytest.approx(0.75) and pair["seed"] == "train=0; train=1"
    assert frame["training"].nunique() == 2
    assert "training" in leaderboard(frame).index.names


def test_every_table_shape_carries_intervals(tmp_path):
    from fireact_eval.results.tables import readable
    from fireact_eval.stats import wilson_interval

    clean = write_run(tmp_path / "r", "clean", [1.0] * 8 + [0.0] * 2)
    noisy = write_run(tmp_path / "r", "noisy", [1.0] * 3 + [0.0] * 7, metadata={"noise": "none"})
    frame = load_runs([clean, noisy])
    [row] = leaderboard(frame).itertuples()
    assert (row.demo_low, row.demo_high) == pytest.approx(wilson_interval(8, 10))
    robust = robustness(frame).iloc[0]
    assert robust["drop_none"] == pytest.approx(0.5) and robust["n_none"] == 10
    assert 0 < robust["drop_none_low"] < 0.5 < robust["drop_none_high"] <= 1
    assert (robust["none_low"], robust["none_high"]) == pytest.approx(wilson_interval(3, 10))
    costs = cost(frame)
    assert {"score_low", "score_high"} <= set(costs.columns)
    text = readable(robustness(frame)).iloc[0]
    assert text["drop_none"].startswith("0.500 [") and text["off"].startswith("0.800 [")


def test_the_training_card_round_trips_and_reads_older_and_newer_cards(tmp_path):
    """One typed reader for the card the trainers write and the harness and the experiment
    runner read: a card before ``adapter`` reads as a LoRA unless full, a newer key is kept,
    and the recipe digest ignores the seed only."""
    from fireact_eval.errors import FireactError
    from fireact_eval.training_card import CARD_FILE, TrainingCard

    card = TrainingCard(base_model="b", method="lora", adapter=True, data="d.json",
                        hyperparameters={"seed": 1, "lr": 1e-4, "batch_size": 2,
                                         "grad_accum": 3, "limit": 5}, global_step=4)
    card.write(tmp_path)
    back = TrainingCard.read(tmp_path)
    assert back == card and back.rows_trained == 24 and back.limit == 5
    reseeded = TrainingCard(**{**card.__dict__, "hyperparameters": {
        **card.hyperparameters, "seed": 2}})
    assert reseeded.recipe_digest() == card.recipe_digest()
    relr = TrainingCard(**{**card.__dict__, "hyperparameters": {
        **card.hyperparameters, "lr": 2e-4}})
    assert relr.recipe_digest() != card.recipe_digest()
    (tmp_path / CARD_FILE).write_text('{"base_model": "b", "method": "full", "new_key": 1}')
    old = TrainingCard.read(tmp_path)
    assert old.adapter is False and old.extra == {"new_key": 1}
    assert old.to_json()["new_key"] == 1
    (tmp_path / CARD_FILE).write_text('{"method": "lora"}')
    with pytest.raises(FireactError, match="not a training card"):
        TrainingCard.read(tmp_path)


def test_unlabelled_runs_are_named_by_what_tells_their_models_apart(tmp_path):
    """Two adapters saved as ``adapter`` in their runs' folders read ``sft/adapter`` and
    ``grpo/adapter`` (a Hub id its name), a label as given; the whole path stays in
    ``model_path``, which the report lists among a run's settings."""
    write_run(tmp_path / "r", "a", [1.0] * 4, model=str(tmp_path / "runs/sft/adapter"))
    write_run(tmp_path / "r", "b", [0.0] * 4, model=str(tmp_path / "runs/grpo/adapter"))
    write_run(tmp_path / "r", "c", [0.0] * 4, model="HuggingFaceTB/SmolLM2-135M-Instruct")
    write_run(tmp_path / "l", "d", [1.0] * 2, model="/elsewhere/adapter")
    runs = load_runs([str(tmp_path / "r"), f"mine={tmp_path / 'l'}"])
    assert dict(zip(runs["model"], runs["model_path"], strict=True)) == {
        "sft/adapter": str(tmp_path / "runs/sft/adapter"),
        "grpo/adapter": str(tmp_path / "runs/grpo/adapter"),
        "SmolLM2-135M-Instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "mine": "/elsewhere/adapter"}
    from fireact_eval.results.report import RUN_SETTINGS

    assert "model_path" in RUN_SETTINGS


@given(st.lists(st.lists(st.sampled_from(["a", "b", "adapter", "x.y", "run-1"]), min_size=1,
                         max_size=4).map("/".join), max_size=6),
       st.sets(st.sampled_from(["a", "adapter", "b/a"]), max_size=2))
def test_short_names_keep_every_model_apart(paths, taken):
    """Whatever the paths: one short name per path, each the path's own tail, none a
    label's, so no two runs are ever read as one."""
    from fireact_eval.results.frame import short_names

    short = short_names(paths, taken)
    assert set(short) == set(paths)
    assert len(set(short.values())) == len(short)
    for path, name in short.items():
        assert path == name or path.endswith("/" + name)
        assert name not in taken or name == path
