"""Our tasks through inspect_ai's registry (``inspect eval fireact_eval/world``): its
``react()`` agent with our search under the task's faults, scored by our scorer, driven by
inspect's ``mockllm`` with scripted tool calls; question by question the same observations
and EM as our engine (the one lm_eval runs) gets from the same actions."""

import json

import pytest

pytest.importorskip("inspect_ai")
from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from fireact_eval.environment import Environment  # noqa: E402
from fireact_eval.scoring import qa  # noqa: E402
from fireact_eval.task_environment import load_task  # noqa: E402
from fireact_eval.tools.world import world_folder  # noqa: E402

SETTINGS = {"n": 4, "noise": "none:0.2+error:0.2+distractor:0.2+truncated:0.2"}


def _moves(doc: dict, supporting: list[str]) -> list[tuple[str, dict]]:
    """The oracle's moves: each supporting title searched twice, then the gold answer (and
    for the third question a wrong one)."""
    return [*(("search", {"query": t}) for t in supporting for _ in range(2)),
            ("finish", {"answer": doc["answer"]})]


def test_inspect_runs_our_task_by_its_registered_name_with_our_faults_and_scorer(tmp_path):
    _, checked, docs = load_task("fireact_world", {k: str(v) for k, v in SETTINGS.items()})
    supporting = {row["id"]: row["supporting"] for row in map(
        json.loads, (world_folder() / "test.jsonl").read_text().splitlines())}
    docs = docs[:3]
    moves = [_moves(doc, supporting[doc["id"]]) for doc in docs]
    moves[2][-1] = ("finish", {"answer": "somewhere else"})
    outputs = [ModelOutput.for_tool_call("mockllm/model", name, args)
               for sample in moves for name, args in sample]
    for output in outputs:  # counted, mockllm would fetch tiktoken's encoding from the net
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    [log] = inspect_eval("fireact_eval/world", model=get_model(
        "mockllm/model", custom_outputs=outputs), task_args=SETTINGS, limit=3,
        max_samples=1, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error
    by_id = {str(s.id): s for s in log.samples}
    for doc, sample_moves in zip(docs, moves, strict=True):
        sample = by_id[doc["id"]]
        [score] = sample.scores.values()
        trajectory = json.loads(score.metadata["trajectory"])
        # the engine on the same question and actions: the same faulted observations
        env = Environment(checked.settings.episode("Q", {}, doc["id"], {}), doc, qa)
        expected = [env.step(f"Action: {name}[{next(iter(args.values()))}]")
                    for name, args in sample_moves]
        assert [s["observation"] for s in trajectory["steps"]] == expected
        assert score.metadata["metrics"] == env.score()
        assert score.value == (0.0 if doc is docs[2] else 1.0)
    faults = {s["fault"] for sample in log.samples for s in json.loads(
        next(iter(sample.scores.values())).metadata["trajectory"])["steps"] if s["fault"]}
    assert faults


def test_a_bad_task_parameter_is_one_line():
    from fireact_eval.errors import FireactError
    from fireact_eval.inspect_tasks import fireact_task

    with pytest.raises(FireactError, match="unknown noise='loud'"):
        fireact_task("world", noise="loud")


def test_results_and_gate_read_inspect_logs_of_two_agents(tmp_path):
    """Two agents evaluated in inspect (one answers all 12 right, one all wrong), their logs
    read through inspect's reader: tabled like lm-eval runs and paired by the gate."""
    from conftest import cli

    def run(name: str, answer_right: bool) -> None:
        _, _, docs = load_task("fireact_demo", {"n": "12"})
        outputs = [ModelOutput.for_tool_call("mockllm/model", "finish", {
            "answer": doc["answer"] if answer_right else "nobody"}) for doc in docs]
        for output in outputs:
            output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        [log] = inspect_eval("fireact_eval/demo", model=get_model(
            "mockllm/model", custom_outputs=outputs), task_args={"n": 12}, max_samples=1,
            log_dir=str(tmp_path / name), display="none")
        assert log.status == "success", log.error

    run("right", True)
    run("wrong", False)
    table = cli("results", "table", f"right={tmp_path / 'right'}",
                f"wrong={tmp_path / 'wrong'}")
    assert table.returncode == 0, table.stderr
    assert "1.000" in table.stdout and "0.000" in table.stdout
    [log] = list((tmp_path / "wrong").glob("*.eval"))
    gate = cli("gate", "--baseline", str(tmp_path / "right"), "--candidate", str(log))
    assert gate.returncode == 1 and "regress" in (gate.stdout + gate.stderr).lower()
