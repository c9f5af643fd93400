"""``fireact-eval experiment``: a YAML grid of train x evaluate cells, checked before it runs,
run to the end with failures recorded, resumed without recomputing what is finished, read
back as the paper's tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fireact_eval.errors import FireactError
from fireact_eval.experiment.config import load
from fireact_eval.experiment.plan import cells

from conftest import cli


def grid(tmp_path: Path, base: str, train_file: Path, **changes) -> Path:
    config = {
        "axes": {"base": [base], "data": ["gold"], "size": [4, 8]},
        "data": {"gold": {"file": str(train_file)}},
        "train": {"method": "full", "epochs": 40, "learning_rate": 3e-3, "batch_size": 8,
                  "warmup": 0, "save_steps": 1000},
        "evaluate": {"tasks": ["fireact_demo"], "noise": ["off"], "limit": 4,
                     "batch_size": 8, "metadata": {"max_turns": 3},
                     "gen_kwargs": {"max_gen_toks": 48}},
        "prompted": {"shots": "zeroshot"},
        "finetuned": {"shots": "zeroshot", "format": "alpaca"},
    }
    for key, value in changes.items():
        section, _, name = key.partition(".")
        if name:
            config[section][name] = value
        elif value is None:
            config.pop(section)
        else:
            config[section] = value
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"axes.colour": ["red"]}, "axes.colour: unknown axis"),
    ({"evaluate.taskz": ["x"]}, "evaluate.taskz: unknown key"),
    ({"data": {"gold": {"mix": "no-such-preset", "files": []}}}, "data.gold.files"),
    ({"data": {"gold": {"file": "/no/such.json"}}}, "data.gold.file: no such file"),
    ({"axes.data": ["silver"]}, "axes.data[0]: no data named 'silver'"),
    ({"axes.size": [-1]}, "axes.size[0]"),
    ({"evaluate.tasks": ["fireact_nope"]}, "no task fireact_nope"),
    ({"evaluate.noise": [False]}, "evaluate.noise[0]: expected a string, got bool False"),
    ({"evaluate.noise": ["loud"]}, "evaluate.noise[0]: one of off, none, random, error, "
                                   "distractor, truncated, distractor_permanent, mix"),
    ({"train.epochs": 0}, "train: --epochs 0 trains nothing"),
    ({"train.limit": 3}, "train.limit: set by the grid"),
    ({"axes.base": ["/no/such/model"]}, "axes.base[0]: no model folder"),
    ({"axes.data": [], "prompted": None}, "a grid of zero cells"),
    ({"evaluate.metadata": {"search": "replay"}}, "needs a replay: section"),
    ({"data": {"gold": {"file": "${NO_SUCH_VAR}/x.json"}}}, "${NO_SUCH_VAR} is not set"),
])
def test_bad_yaml_is_one_line_naming_the_file_and_key(tmp_path, train_file, changes, message):
    path = grid(tmp_path, "smollm2", train_file, **changes)
    with pytest.raises(FireactError, match=None) as err:
        load(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_a_mix_preset_that_does_not_exist_is_named(tmp_path, train_file):
    path = grid(tmp_path, "smollm2", train_file,
                data={"gold": {"mix": "multi-everything", "files": [str(train_file)]}})
    with pytest.raises(FireactError, match="data.gold.mix: bad mix item 'multi-everything'"):
        load(path)


def test_a_mix_of_fireacts_imported_file_keeps_the_methods_it_names(tmp_path, train_file,
                                                                    fireact_layout):
    """``import_fireact`` + ``mix``: FireAct's multi-method file imported (decontaminated,
    labelled by method from each transcript's shape), then mixed: ``hotpotqa:cot=1.0`` keeps
    only the one-turn CoT rows; its hash differs from the unmixed import's."""
    from fireact_eval.data.examples import read_examples
    from fireact_eval.experiment.plan import data_identity
    from fireact_eval.experiment.runner import plan_lines, prepared_data

    gold = json.loads(train_file.read_text())  # the demo's own questions: evaluation ones
    react = [{**r, "instruction": f"Training question {i} of the multi-method file?"}
             for i, r in enumerate(gold)]
    cot = [{"instruction": f"A question a CoT teacher answered, number {i}?", "input": "",
            "output": "Thought: I know it.\nAction: finish[x]"} for i in range(3)]
    released = tmp_path / "hotpotqa_multimethod.json"
    released.write_text(json.dumps(react + cot + gold[:1]))
    data = {name: {"import_fireact": str(released), "data_dir": str(fireact_layout), **mix}
            for name, mix in (("cot", {"mix": "hotpotqa:cot=1.0"}), ("all", {}))}
    ex = load(grid(tmp_path, "smollm2", train_file, data=data, **{"axes.data": ["cot", "all"]}))
    assert data_identity(ex, "cot") != data_identity(ex, "all")
    # before the mix is made its size is a bound (8 + 3 + 1 source rows); after, counted
    before = plan_lines(ex, tmp_path / "out")
    assert "data=cot size=4" in before[1] and "train <=" in before[1]
    mixed, _ = read_examples(prepared_data(ex, tmp_path / "out", "cot"))
    after = plan_lines(ex, tmp_path / "out")
    assert "train 40 steps" in after[1] and "<=" not in after[1]  # 3 rows, 40 epochs, batch 8
    whole, _ = read_examples(prepared_data(ex, tmp_path / "out", "all"))
    assert {e.method for e in mixed} == {"cot"}
    assert sorted(e.question for e in mixed) == sorted(e.question for e in whole
                                                       if e.method == "cot")
    assert len(mixed) == 3 and {e.method for e in whole} == {"cot", "react"}
    assert len(whole) == len(react) + 3  # decontaminated: the demo's own question dropped


def test_the_demos_oracle_is_a_data_source(tmp_path, train_file):
    """``oracle: demo``: the demo's oracle teacher writes one trajectory per training
    question (32), named by the questions and the corpus it searched."""
    from fireact_eval.data.examples import read_examples
    from fireact_eval.experiment.plan import data_identity
    from fireact_eval.experiment.runner import plan_lines, prepared_data

    ex = load(grid(tmp_path, "smollm2", train_file, data={"gold": {"oracle": "demo"}},
                   **{"axes.size": [0]}))
    assert set(data_identity(ex, "gold")) == {"oracle", "questions", "corpus"}
    assert "train 160 steps" in plan_lines(ex, tmp_path / "out")[1]  # 32 rows, 40 epochs, 8
    made, _ = read_examples(prepared_data(ex, tmp_path / "out", "gold"))
    assert len(made) == 32 and all(e.steps[-1].action == "finish" for e in made)
    with pytest.raises(FireactError, match="data.gold.oracle: one of demo, world"):
        load(grid(tmp_path, "smollm2", train_file, data={"gold": {"oracle": "gpt-4"}}))


def test_the_worlds_oracle_under_noise_searches_again_and_is_its_own_data(tmp_path,
                                                                          train_file):
    """``oracle: world, oracle_noise: none``: the world's oracle through the noisy tool,
    searching again after ``None``; named apart from the clean oracle's data, and counted
    as at most its questions (a question whose searches kept failing is left out)."""
    from fireact_eval.data.examples import read_examples
    from fireact_eval.experiment.plan import data_identity
    from fireact_eval.experiment.runner import plan_lines, prepared_data

    data = {"clean": {"oracle": "world"}, "noisy": {"oracle": "world", "oracle_noise": "none"}}
    ex = load(grid(tmp_path, "smollm2", train_file, data=data, **{
        "axes.data": ["clean", "noisy"], "axes.size": [0], "prompted": None}))
    assert data_identity(ex, "noisy") == {**data_identity(ex, "clean"), "noise": "none"}
    clean, noisy = plan_lines(ex, tmp_path / "out")[:2]
    assert "train <=" not in clean and "train <=" in noisy
    rows, _ = read_examples(prepared_data(ex, tmp_path / "out", "noisy"))
    retried = [e for e in rows if any(s.observation == "None" for s in e.steps)]
    assert len(retried) > len(rows) / 3 and all(e.steps[-1].action == "finish" for e in rows)
    with pytest.raises(FireactError, match="data.gold.oracle_noise: .* give oracle"):
        load(grid(tmp_path, "smollm2", train_file,
                  data={"gold": {"file": str(train_file), "oracle_noise": "none"}}))


def test_cells_are_named_by_what_changes_them(tmp_path, train_file):
    """An evaluation setting changes the evaluation folders only: the trained checkpoints
    are reused; a training setting changes both."""
    ex = load(grid(tmp_path, "smollm2", train_file))
    grid_cells = cells(ex)
    assert [c.name for c in grid_cells] == ["prompted base=smollm2",
                                            "finetuned base=smollm2 data=gold size=4",
                                            "finetuned base=smollm2 data=gold size=8"]
    longer = cells(load(grid(tmp_path, "smollm2", train_file, **{"evaluate.limit": 8})))
    assert [c.train_hash for c in longer] == [c.train_hash for c in grid_cells]
    assert all(a.eval_hash != b.eval_hash for a, b in zip(longer, grid_cells, strict=True))
    slower = cells(load(grid(tmp_path, "smollm2", train_file, **{"train.learning_rate": 1e-3})))
    assert slower[0].eval_hash == grid_cells[0].eval_hash  # the prompted cell trains nothing
    assert all(a.train_hash != b.train_hash for a, b in zip(slower[1:], grid_cells[1:],
                                                             strict=True))
    assert cells(load(grid(tmp_path, "smollm2", train_file))) == grid_cells  # stable


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, train_file):
    proc = cli("experiment", str(grid(tmp_path, "smollm2", train_file)), "--out",
               str(tmp_path / "x"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if "data=gold size=8 " in x]
    assert "to run" in line and "train 40 steps (to run), 4 rollouts" in line
    assert "3 cells; ~" in proc.stdout and "min left" in proc.stdout
    assert not (tmp_path / "x" / "eval").exists() and not (tmp_path / "x" / "train").exists()


@pytest.mark.parametrize("limit, n, questions", [(4, 0, 4), (0, 30, 30), (4, 30, 4),
                                                (0, 0, 500)])
def test_the_plan_counts_the_questions_a_task_runs(tmp_path, train_file, limit, n, questions):
    """--limit's first N of the task's draw (``metadata.n``); neither: 500 assumed."""
    from fireact_eval.experiment.plan import estimate

    ex = load(grid(tmp_path, "smollm2", train_file, **{
        "evaluate.limit": limit, "evaluate.noise": ["off", "none"],
        "evaluate.metadata": {"max_turns": 3, **({"n": n} if n else {})}}))
    assert {estimate(ex, cell).rollouts for cell in cells(ex)} == {2 * questions}


def test_the_plan_prints_minutes_only_from_rates_measured_for_that_base_and_backend(
        tmp_path, train_file):
    """A 7B on vLLM was once estimated at the rates of SmolLM2-135M on a 2-core CPU
    (~12,000 min); a rate that cannot apply is worse than none."""
    import json

    from fireact_eval.experiment.config import load
    from fireact_eval.experiment.plan import cells
    from fireact_eval.experiment.runner import plan_lines

    config = grid(tmp_path, "org/big-7b", train_file, **{"evaluate.model": "vllm",
                                                          "evaluate.device": "cuda"})
    ex = load(config)
    root = tmp_path / "x"
    lines = plan_lines(ex, root)
    assert all(line.count("? min") == 1 for line in lines[:-1]), lines
    assert "min left" not in lines[-1]
    assert ("no minutes for org/big-7b on vllm@cuda (rollouts), org/big-7b@cuda (training)"
            in lines[-1]), lines[-1]

    # one finished cell of that kind gives its rates to the rest
    [prompted, *tuned] = cells(ex)
    finished = {**tuned[0].record(), "status": "done", "train_seconds": 80.0,
                "train_rows": 160, "eval_seconds": 24.0, "rollouts": 4}
    tuned[0].record_path(root).parent.mkdir(parents=True)
    tuned[0].record_path(root).write_text(json.dumps(finished))
    lines = plan_lines(ex, root)
    # 4 rollouts x 3 turns at 2 s a turn, and 320 rows (8 x 40 epochs) at 0.5 s a row
    assert "4 rollouts, ~0 min" in lines[0] and "~3 min" in lines[2], lines
    assert "measured by 1 finished cells" in lines[-1] and "no minutes" not in lines[-1]

    # re-evaluated from its turn cache, a cell took no model time: its seconds are no rate
    tuned[0].record_path(root).write_text(json.dumps({**finished, "eval_replayed": True}))
    lines = plan_lines(ex, root)
    assert "no minutes for org/big-7b on vllm@cuda (rollouts):" in lines[-1], lines[-1]

    # the offline base on hf and the CPU: the shipped rates, said to be so
    lines = plan_lines(load(grid(tmp_path, "smollm2", train_file)), tmp_path / "y")
    assert "shipped, measured on a 2-core CPU" in lines[-1] and "? min" not in "".join(lines)


def test_the_plan_charges_training_by_the_length_of_its_rows(tmp_path, train_file):
    """Rows of twice the length cost twice the time (a retry oracle's rows are longer than
    a clean one's: charged alike, a plan said 43 minutes for cells that took 75); a
    finished cell says what it took."""
    import json

    from fireact_eval.experiment.runner import plan_lines

    rows = json.loads(train_file.read_text())
    long_file = tmp_path / "long.json"  # each row's text twice as long
    long_file.write_text(json.dumps([{**r, "input": r["instruction"] + r["output"]}
                                     for r in rows]))
    config = grid(tmp_path, "org/big-7b", train_file, **{
        "axes.data": ["gold", "long"], "axes.size": [8], "prompted": None,
        "data": {"gold": {"file": str(train_file)}, "long": {"file": str(long_file)}}})
    ex = load(config)
    short, long = cells(ex)
    root = tmp_path / "x"
    short_chars = 320 * sum(len(json.dumps(r)) for r in rows[:8]) / 8  # 8 rows x 40 epochs
    finished = {**short.record(), "status": "done", "train_seconds": 600.0, "seconds": 660.0,
                "train_rows": 320, "train_chars": round(short_chars), "eval_seconds": 60.0,
                "rollouts": 4}
    short.record_path(root).parent.mkdir(parents=True)
    short.record_path(root).write_text(json.dumps(finished))
    done, to_run = plan_lines(ex, root)[:2]
    assert "took 11 min" in done and "~" not in done.split("rollouts")[1]
    ratio = (sum(len(json.dumps({**r, "input": r["instruction"] + r["output"]}))
                 for r in rows[:8]) / sum(len(json.dumps(r)) for r in rows[:8]))
    assert f"~{(600 * ratio + 60) / 60:.0f} min" in to_run, (to_run, ratio)


def _logged_commands(root: Path) -> int:
    return sum(p.read_text().count("\n$ ") for p in root.rglob("log.txt"))


def test_a_grid_runs_resumes_and_reads_back_as_the_papers_shapes(tmp_path, untrained_model,
                                                                 train_file):
    """Three cells of the tiny model: run, rerun (nothing recomputed), a changed evaluation
    setting (re-evaluated, not retrained), a broken base (recorded failed, the rest done,
    the table says what is missing)."""
    root = tmp_path / "exp"
    quick = {"train.epochs": 2}  # what is checked is the grid, not what the cells learn
    config = grid(tmp_path, str(untrained_model), train_file, **quick)
    proc = cli("experiment", str(config), "--out", str(root), "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 cells done" in proc.stdout
    assert proc.stdout.count("started finetuned ") == 2 and "done prompted " in proc.stdout
    records = [json.loads(p.read_text()) for p in root.glob("eval/*/cell.json")]
    assert sorted(r["status"] for r in records) == ["done"] * 3
    assert all(r["rollouts"] == 4 and r["eval_replayed"] is False for r in records)
    commands = _logged_commands(root)  # 2 trainings + 3 evaluations
    assert commands == 5
    evaluations = [line for p in root.rglob("log.txt") for line in p.read_text().splitlines()
                   if " -m lm_eval " in line]  # our task folder alone is indexed, and said
    assert len(evaluations) == 3 and all(e.startswith("$ FIREACT_EVAL_TASKS_ONLY=1 ")
                                         for e in evaluations)

    again = cli("experiment", str(config), "--out", str(root))
    assert again.returncode == 0 and _logged_commands(root) == commands  # nothing rerun
    assert again.stdout.count(" done ") >= 3

    table = cli("results", "table", str(root), "--shape", "figure3")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0]
    assert "| 0 " in header and "| 4 " in header and "| 8 " in header  # prompted = size 0
    gains = cli("results", "table", str(root), "--shape", "table2", "--out",
                str(tmp_path / "t2.csv"))
    assert gains.returncode == 0, gains.stderr
    t2 = (tmp_path / "t2.csv").read_text()
    assert "gain_low" in t2 and "relative_gain" in t2 and "n_paired" in t2

    shorter = grid(tmp_path, str(untrained_model), train_file, **quick, **{"evaluate.limit": 2})
    proc = cli("experiment", str(shorter), "--out", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _logged_commands(root) == commands + 3  # three evaluations, no training
    assert len(list(root.glob("train/*/model/fireact_eval.json"))) == 2

    broken = tmp_path / "not-a-model"  # passes the check (a config.json), fails to load
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    two = grid(tmp_path, str(untrained_model), train_file, **quick,
               **{"axes.base": [str(untrained_model), str(broken)]})
    proc = cli("experiment", str(two), "--out", str(root))
    assert proc.returncode == 1
    assert proc.stdout.count("FAILED") == 3 and "3 of 6 cells done" in proc.stdout
    table = cli("results", "table", str(root), "--shape", "figure3")
    assert table.returncode == 0 and table.stdout.count("missing cell") == 3
    assert "failed" in table.stdout and "log.txt" in table.stdout


def test_self_improvement_rounds_train_on_the_models_own_successes(tmp_path, tiny_model,
                                                                  train_file):
    """A round: the fine-tuned cell's checkpoint samples 2 tries per training question
    (``generate``), its successful ones (and only those) are added to the rows it was
    trained on, the base is fine-tuned again and evaluated; the card says where the data
    came from, and ``--shape rounds`` has the round beside the SFT cell."""
    from fireact_eval.data.examples import read_examples
    from fireact_eval.transcript import to_text

    questions = tmp_path / "questions.json"  # the questions the SFT cell learned to answer
    questions.write_text(json.dumps([{"question": r["instruction"], "answer": r["output"]
                                      .rsplit("finish[", 1)[1].rstrip("]")}
                                     for r in json.loads(train_file.read_text())]))
    improve = {"rounds": 1, "tasks": ["demo"], "n": 0, "repeats": 2,
               "gen_kwargs": "do_sample=True,temperature=0.5",
               "metadata": {"questions": str(questions)}, "keep_contaminated": True}
    # the tiny agent that answers them, in its own prompt; a learning rate that keeps it so
    config = grid(tmp_path, str(tiny_model), train_file, improve=improve,
                  finetuned={"shots": "zeroshot"}, **{
                      "axes.size": [8], "prompted": None, "train.learning_rate": 1e-6,
                      "train.epochs": 1, "evaluate.metadata": {"max_turns": 4}})
    root = tmp_path / "exp"
    proc = cli("experiment", str(config), "--out", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 of 2 cells done" in proc.stdout and "round=1" in proc.stdout

    [made] = root.glob("train/*/data.json")
    rows, _ = read_examples(made)
    sft = json.loads(train_file.read_text())
    assert [to_text(e.steps) for e in rows[:len(sft)]] == [r["output"] for r in sft]
    from fireact_eval.convert import as_example
    from fireact_eval.harness.run_files import read_samples, samples_files

    tries = [(as_example(logged, trajectory), right)
             for path in samples_files(made.parent / "generated" / "runs")
             for logged in read_samples(path) for trajectory, right in logged.scored_tries()]
    assert len(tries) == 2 * len(sft)  # two sampled tries of each question
    own = {(e.question, to_text(e.steps)) for e, right in tries if right}
    new = rows[len(sft):]
    assert new, "the tiny agent answers some of the questions it was trained on"
    assert all((e.question, to_text(e.steps)) in own for e in new)
    [card] = [json.loads(p.read_text()) for p in made.parent.glob("model/fireact_eval.json")]
    assert card["data_origin"].startswith("round 1: ") and "2 per question" in card[
        "data_origin"]
    table = cli("results", "table", str(root), "--shape", "rounds")
    assert table.returncode == 0, table.stderr
    assert "round 0" in table.stdout and "round 1" in table.stdout


def test_after_names_the_sft_cells_grpo_and_rounds_continue(tmp_path, train_file):
    """``after:`` picks which SFT cells GRPO and the rounds continue (two data, one each),
    without renaming the cells it keeps; a name not on the data axis is one line."""
    grpo = {"dataset": "demo", "max_steps": 2}
    improve = {"tasks": ["demo"], "n": 4, "repeats": 2}
    lora = {"method": "lora", "epochs": 1, "learning_rate": 1e-4, "batch_size": 8,
            "warmup": 0, "save_steps": 1000}

    def grid_cells(**sections) -> dict[tuple, str]:
        """(data, grpo, round) -> eval hash, of every cell of a two-data grid."""
        config = grid(tmp_path, "smollm2", train_file, train=lora,
                      data={"gold": {"file": str(train_file)},
                            "silver": {"file": str(train_file)}},
                      **{"axes.data": ["gold", "silver"], "axes.size": [4],
                         "prompted": None}, **sections)
        return {(c.axes["data"], bool(c.axes.get("grpo")), c.round): c.eval_hash
                for c in cells(load(config))}

    every = grid_cells(grpo=grpo, improve=improve)
    assert sorted(every) == [(data, grpo_cell, number) for data in ("gold", "silver")
                             for grpo_cell, number in ((False, 0), (False, 1), (True, 0))]
    picked = grid_cells(grpo={**grpo, "after": ["gold"]},
                        improve={**improve, "after": ["silver"]})
    assert sorted(picked) == [("gold", False, 0), ("gold", True, 0), ("silver", False, 0),
                              ("silver", False, 1)]
    assert picked.items() <= every.items()  # the cells it keeps keep their names
    with pytest.raises(FireactError, match=r"grpo.after\[0\]: no data 'bronze' in axes.data"):
        grid_cells(grpo={**grpo, "after": ["bronze"]})


def test_grpo_loops_make_a_cell_each_and_the_first_keeps_its_name(tmp_path, train_file):
    """``grpo.loops``: a GRPO cell per loop after each SFT cell; the rollout_func cell is the
    cell a grid without loops had (same hash), the other is named by its loop; a loop that
    cannot apply to the cells' layout, or a loop twice, is one line."""
    lora = {"method": "lora", "epochs": 1, "learning_rate": 1e-4, "batch_size": 8,
            "warmup": 0, "save_steps": 1000}
    tools = {"shots": "zeroshot", "format": "tools", "tool_template": "hermes"}

    def grpo_cells(grpo, finetuned=tools):
        config = grid(tmp_path, "smollm2", train_file, train=lora, grpo=grpo,
                      finetuned=finetuned, data={"gold": {"oracle": "demo"}},
                      **{"axes.size": [4], "prompted": None})
        return [c for c in cells(load(config)) if c.axes.get("grpo")]

    [before] = grpo_cells({"dataset": "demo", "max_steps": 2})
    ours, trls = grpo_cells({"dataset": "demo", "max_steps": 2,
                             "loops": ["rollout_func", "environment_factory"]})
    assert ours.eval_hash == before.eval_hash and ours.name == before.name
    assert trls.name == before.name + " loop=environment_factory"
    assert trls.continues == ours.continues and trls.train_hash != ours.train_hash
    with pytest.raises(FireactError, match="grpo.loops: --loop environment_factory is TRL's"):
        grpo_cells({"dataset": "demo", "loops": ["rollout_func", "environment_factory"]},
                   finetuned={"shots": "zeroshot", "format": "alpaca"})
    with pytest.raises(FireactError, match="grpo.loops: one or more loops, each once"):
        grpo_cells({"dataset": "demo", "loops": ["rollout_func", "rollout_func"]})


def test_a_grpo_cell_continues_its_sft_cell_in_the_plan_and_in_a_run(tmp_path, tiny_model,
                                                                     train_file):
    """``grpo:``: after the SFT cell, GRPO from its adapter (``--init-adapter``) under the
    section's rollout settings, named by them, in the dry-run plan with the GRPO rate, run
    after the cell it continues, and evaluated like every cell."""
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps([{"question": r["instruction"], "answer": r["output"]
                                      .rsplit("finish[", 1)[1].rstrip("]")}
                                     for r in json.loads(train_file.read_text())][:2]))
    grpo = {"dataset": "demo", "group_size": 2, "batch_size": 2, "max_steps": 1,
            "max_turns": 2, "metadata": {"questions": str(questions), "noise": "none"}}
    lora = {"method": "lora", "epochs": 1, "learning_rate": 1e-6, "batch_size": 8,
            "warmup": 0, "save_steps": 1000, "gradient_checkpointing": False}
    config = grid(tmp_path, str(tiny_model), train_file, grpo=grpo, train=lora,
                  finetuned={"shots": "zeroshot", "format": "alpaca"},
                  **{"axes.size": [8], "prompted": None, "evaluate.limit": 2,
                     "evaluate.metadata": {"max_turns": 2}})
    ex = load(config)
    sft, tuned = cells(ex)
    assert tuned.name.endswith(" grpo") and tuned.continues == sft.train_hash
    assert tuned.wave == 1 and sft.wave == 0
    (tmp_path / "other").mkdir()
    other = load(grid(tmp_path / "other", str(tiny_model), train_file,
                      grpo={**grpo, "kl": 0.1}, train=lora,
                      finetuned={"shots": "zeroshot", "format": "alpaca"},
                      **{"axes.size": [8], "prompted": None}))
    assert cells(other)[1].train_hash != tuned.train_hash  # named by its settings
    root = tmp_path / "exp"
    plan = cli("experiment", str(config), "--out", str(root), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    [line] = [x for x in plan.stdout.splitlines() if " grpo " in x]
    assert "train 1 steps" in line and "2 rollouts" in line
    proc = cli("experiment", str(config), "--out", str(root))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 of 2 cells done" in proc.stdout
    card = json.loads((tuned.model_dir(root) / "fireact_eval.json").read_text())
    assert card["method"] == "grpo" and card["global_step"] == 1
    assert card["hyperparameters"]["init_adapter"] == str(sft.model_dir(root))
    assert card["rollout_settings"]["noise"] == "none"
    record = json.loads(tuned.record_path(root).read_text())
    assert record["status"] == "done" and record["rollouts"] == 2
    sft_record = json.loads(sft.record_path(root).read_text())
    assert record["train_methods"] == sft_record["train_methods"]  # the SFT rows' methods


def test_cells_run_as_submitit_jobs(tmp_path, untrained_model, train_file):
    """submitit's local executor runs each cell as its own process, as SLURM would."""
    pytest.importorskip("submitit")
    root = tmp_path / "exp"
    config = grid(tmp_path, str(untrained_model), train_file, **{"axes.data": []})
    proc = cli("experiment", str(config), "--out", str(root), "--launcher", "submitit-local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 of 1 cells done" in proc.stdout
    assert list((root / "submitit").glob("*_result.pkl"))  # the job's own record


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "fireact"


@pytest.mark.parametrize("config", sorted((Path(__file__).resolve().parents[1] / "experiments")
                                          .glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_load_and_plan(config, monkeypatch, tmp_path):
    """Every shipped grid loads and plans; those on FireAct's data only where it is here."""
    if "${FIREACT_DATA}" in config.read_text() and not SHARED.is_dir():
        pytest.skip("FireAct's released data (../shared/data/fireact) is not here")
    monkeypatch.setenv("FIREACT_DATA", str(SHARED))
    ex = load(config)
    grid_cells = cells(ex)
    assert grid_cells and len({c.eval_hash for c in grid_cells}) == len(grid_cells)


def fake_experiment(root: Path, agents: dict[tuple[str, str, int], list[float]],
                    turns: dict | None = None) -> Path:
    """An experiment folder as ``fireact-eval experiment`` leaves it, with these
    per-question EMs for each (kind, data, size) cell of base ``b``."""
    return fake_cells(root, [{"kind": kind, "data": data, "size": size,
                              "runs": {"off": (scores, {})},
                              "turns": (turns or {}).get((kind, data, size))}
                             for (kind, data, size), scores in agents.items()])


def fake_cells(root: Path, specs: list[dict]) -> Path:
    """An experiment folder of cells of base ``b``, each ``{kind, data, size, round, grpo,
    runs: {noise: (per-question EMs, other metrics' means)}, turns}``: one results file
    per noise condition (task ``fireact_demo`` or ``fireact_demo_noise_<noise>``)."""
    from test_results import write_run

    plan = []
    for number, spec in enumerate(specs):
        kind, data, size = spec["kind"], spec["data"], spec["size"]
        axes = {"base": "b", "data": data, "size": size, "round": spec.get("round", 0),
                **({"grpo": True} if spec.get("grpo") else {})}
        cell = {"kind": kind, "axes": axes, "eval_hash": f"h{number}",
                "name": f"{kind} base=b" + (f" data={data} size={size}" if data else "")
                + (f" round {axes['round']}" if axes["round"] else "")
                + (" grpo" if spec.get("grpo") else "")}
        plan.append(cell)
        where = root / "eval" / cell["eval_hash"]
        for noise, (scores, metrics) in spec["runs"].items():
            task = "fireact_demo" + ("" if noise == "off" else f"_noise_{noise}")
            write_run(where, "results", scores, model=f"m{number}_{noise}",
                      turns=spec.get("turns"), task=task, metrics=metrics,
                      metadata={"noise": noise} if noise != "off" else None)
        methods = {m: 1 for m in sorted((data or "").split("+")) if m and kind == "finetuned"}
        (where / "cell.json").write_text(json.dumps({**cell, "status": "done",
                                                     "train_methods": methods}))
    (root / "experiment.json").write_text(json.dumps({"cells": plan}))
    return root


def test_table_and_figure_shapes_from_an_experiment_folder(tmp_path):
    from fireact_eval.results.frame import load_runs
    from fireact_eval.results.tables import figure3, figure4, table2, table4, table5

    root = fake_experiment(tmp_path / "exp", {
        ("prompted", None, None): [1.0, 0.0, 0.0, 0.0],
        ("finetuned", "react", 100): [1.0, 1.0, 0.0, 0.0],
        ("finetuned", "cot", 100): [0.0, 0.0, 1.0, 0.0],
        ("finetuned", "react+cot", 100): [1.0, 1.0, 1.0, 0.0],
        ("finetuned", "react", 1000): [1.0, 1.0, 1.0, 1.0],
        ("finetuned", "react", 0): [1.0, 1.0, 1.0, 0.0],
    }, turns={("finetuned", "react", 100): [2, 4, 2, 4],
              ("finetuned", "cot", 100): [1, 1, 1, 1]})
    runs = load_runs([str(root)])
    assert {"kind", "base", "train_data", "train_size"} <= set(runs.columns)
    gains = table2(runs).xs(100, level="train_size").reset_index().set_index("train_data")
    assert gains.loc["react", "gain"] == pytest.approx(0.25)
    assert gains.loc["react", "relative_gain"] == pytest.approx(1.0)  # 0.5 / 0.25 - 1
    assert gains.loc["react", "n_paired"] == 4
    assert gains.loc["react", "gain_low"] <= 0.25 <= gains.loc["react", "gain_high"]
    agents = table4(runs).xs(100, level="train_size").reset_index().set_index("agent")
    assert agents.loc["react", "turns"] == 3 and agents.loc["react", "turns_sd"] == pytest.approx(
        (4 / 3) ** 0.5)
    # from the single-method agents (react, cot; not the react+cot mix): random choice, per
    # question the mean of their scores; oracle, the best of them
    assert agents.loc["react+cot", "methods"] == "cot+react"
    assert agents.loc["random choice", "methods"] == "cot+react"
    assert agents.loc["random choice", "score"] == pytest.approx((0.5 + 0.5 + 0.5 + 0) / 4)
    assert agents.loc["oracle", "score"] == 0.75
    mixes = figure4(runs).xs(100, level="train_size")
    assert set(mixes.columns) >= {"react", "cot", "react+cot", "react_low", "cot_high"}
    assert table5(runs).loc[("b", 100, "cot"), "demo"] == 0.25
    curve = figure3(runs)
    point = curve.loc[("b", "react", "demo")]  # the prompted base is size 0
    assert point["0"] == 0.25 and point["100"] == 0.5 and point["100_low"] < 0.5
    assert point["all"] == 0.75 and point["1000"] == 1.0  # size 0 is all: not the prompted
    assert [c for c in curve.columns if "_" not in c] == ["0", "100", "1000", "all"]
    from fireact_eval.results.plots import plot_table

    drawn = plot_table(curve, tmp_path / "figure3.png", curve=True)  # a line per row
    assert drawn.read_bytes()[:4] == b"\x89PNG" and drawn.stat().st_size > 5000


def test_table3_puts_each_agent_under_each_tool_with_its_drop_retries_and_test(tmp_path):
    """``--shape table3``: a row per agent (prompted; SFT; GRPO and a self-improvement round
    from it), a column per noise condition with its interval, the paired drop from clean,
    the share of empty results searched again after, and McNemar's exact p of a GRPO or
    round agent against the SFT agent it went on from (here: 6 questions only it got)."""
    from fireact_eval.results.frame import load_runs
    from fireact_eval.results.tables import SHAPES, table3

    clean, lost = [1.0] * 6 + [0.0] * 4, [0.0] * 10
    root = fake_cells(tmp_path / "exp", [
        {"kind": "prompted", "data": None, "size": None,
         "runs": {"off": (lost, {}), "none": (lost, {})}},
        {"kind": "finetuned", "data": "clean", "size": 0,
         "runs": {"off": (clean, {}), "none": (lost, {"empty_results": 1.0,
                                                     "searches_after_empty": 0.0})}},
        {"kind": "finetuned", "data": "clean", "size": 0, "grpo": True,
         "runs": {"off": (clean, {}), "none": (clean, {"empty_results": 2.0,
                                                      "searches_after_empty": 1.5,
                                                      "repeats_after_empty": 0.5})}},
        {"kind": "finetuned", "data": "clean", "size": 0, "round": 1,
         "runs": {"off": (clean, {}), "none": (lost, {"empty_results": 1.0,
                                                     "searches_after_empty": 0.0})}},
    ])
    table = table3(load_runs([str(root)])).loc["b"].loc["demo"]
    assert list(table.index) == ["clean grpo", "clean round 1", "clean sft", "prompted"]
    grpo, sft = table.loc["clean grpo"], table.loc["clean sft"]
    assert sft["off"] == 0.6 and sft["none"] == 0.0 and sft["drop_none"] == pytest.approx(0.6)
    assert sft["none_low"] == 0.0 < sft["none_high"] and sft["n_none"] == 10
    assert sft["retry_none"] == 0.0 and grpo["retry_none"] == 0.75
    assert grpo["repeat_none"] == 0.25 and pd.isna(sft["repeat_none"])  # not recorded
    assert grpo["p_none"] == pytest.approx(2 / 2 ** 6) and grpo["p_off"] == 1.0
    assert pd.isna(sft["p_none"]) and pd.isna(table.loc["prompted", "p_none"])
    assert table.loc["clean round 1", "p_none"] == 1.0  # no discordant question
    assert SHAPES["table3"] is table3
    assert not [c for c in table.columns if c.startswith(("retry_drop", "p_drop"))]
    # any two agents the user names: every agent against the prompted one, its own p NaN
    frame = load_runs([str(root)])
    frame.attrs["against"] = "prompted"
    named = table3(frame).loc["b"].loc["demo"]
    assert named.loc["clean sft", "p_off"] == pytest.approx(2 / 2 ** 6)
    assert named.loc["clean sft", "p_none"] == 1.0 and pd.isna(named.loc["prompted", "p_off"])
    frame.attrs["against"] = "nobody"
    with pytest.raises(FireactError, match="--against nobody: no agent of that name"):
        table3(frame)
    # no clean run: no p_off (there is nothing to test under it)
    noisy_only = load_runs([str(root)])
    noisy_only = noisy_only[noisy_only["noise"] != "off"]
    assert "p_off" not in table3(noisy_only).columns
    # the other shapes keep their one-cell-per-agent design: GRPO cells are not SFT ones
    from fireact_eval.results.tables import rounds

    stages = rounds(load_runs([str(root)]))
    assert {"prompted", "round 0", "round 1", "grpo"} <= set(stages.columns)


def test_the_papers_numbers_stand_beside_ours_only_where_the_design_matches():
    """Table 4's random and oracle agents on HotpotQA get the paper's 32.4 / 52.0 in a
    ``paper_score`` column, cited in a note; other rows (another dataset, a trained agent)
    get NaN, and a shape the paper has no number for is left as it is."""
    import pandas as pd

    from fireact_eval.results.paper import beside

    table = pd.DataFrame(
        [("b", 0, "hotpotqa", "react", 0.2), ("b", 0, "hotpotqa", "random choice", 0.3),
         ("b", 0, "hotpotqa", "oracle", 0.4), ("b", 0, "demo", "oracle", 0.5)],
        columns=["base", "train_size", "dataset", "agent", "score"],
    ).set_index(["base", "train_size", "dataset", "agent"])
    cited_table, notes = beside("table4", table)
    assert list(cited_table.columns) == ["score", "paper_score"]
    paper = cited_table["paper_score"].xs("hotpotqa", level="dataset").droplevel([0, 1])
    assert paper["random choice"] == 0.324 and paper["oracle"] == 0.52
    assert paper.isna()["react"] and pd.isna(cited_table["paper_score"].iloc[-1])
    assert len(notes) == 2 and all("not ours" in n and "2310.05915" in n for n in notes)
    assert beside("figure3", table) == (table, [])
    gains = pd.DataFrame([("meta-llama/Llama-2-7b-hf", "hotpotqa", 0.5), ("smollm2",
                          "hotpotqa", 0.4)], columns=["base", "dataset", "relative_gain"]
                         ).set_index(["base", "dataset"])
    assert beside("table2", gains)[0]["paper_relative_gain"].tolist()[0] == 0.77
    assert pd.isna(beside("table2", gains)[0]["paper_relative_gain"].tolist()[1])


@pytest.mark.parametrize("changes, message", [
    ({"improve": {"strict_format": "false"}}, "improve.strict_format: expected a boolean, "
     "got str 'false'"),  # was read as true
    ({"evaluate.metadata": ["max_turns=3"]}, "evaluate.metadata: expected a mapping, got list"),
    ({"evaluate.limit": "4"}, "evaluate.limit: expected an integer, got str '4'"),
    ({"evaluate.batch_size": [8]}, "evaluate.batch_size: expected an integer or a string"),
    ({"evaluate.tasks": "fireact_demo"}, "evaluate.tasks: expected a list, got str"),
    ({"data": {"gold": {"file": 3}}}, "data.gold.file: expected a string, got int 3"),
    ({"train": ["epochs=3"]}, "train: expected a mapping, got list"),
    ({"improve": {"rounds": 1.5}}, "improve.rounds: expected an integer, got float 1.5"),
])
def test_a_wrong_type_is_one_line_naming_the_file_key_and_type(tmp_path, train_file, changes,
                                                               message):
    """Checked by type (pydantic, strict): before, a string for a boolean stayed true and a
    list for the metadata mapping ended in an AttributeError traceback."""
    path = grid(tmp_path, "smollm2", train_file, **changes)
    with pytest.raises(FireactError) as err:
        load(path)
    assert message in str(err.value) and str(err.value).startswith(str(path))
    assert "\n" not in str(err.value)
