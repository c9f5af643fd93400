"""The demo's commands: printed as a user would type them, environment included."""

from __future__ import annotations

from pathlib import Path

from fireact_eval import demo


def test_the_demos_lm_eval_runs_index_our_tasks_alone_and_say_so(monkeypatch, tmp_path, capsys):
    assert demo.run_command(["true"], env={"A": "b c"}) == 0
    assert capsys.readouterr().out == "\n$ A='b c' true\n"
    seen = []
    monkeypatch.setattr(demo, "run_command", lambda argv, env=None: seen.append((argv, env)))
    demo._lm_eval(demo.DemoConfig(model="m", out=tmp_path), "pretrained=m", Path("out"), {})
    [(argv, env)] = seen
    assert argv[1:3] == ["-m", "lm_eval"] and env == {"FIREACT_EVAL_TASKS_ONLY": "1"}


def test_side_by_side_jobs_run_at_once_each_to_its_log(tmp_path, capsys):
    """The two agents' lanes run together (each sees the other's file), each command
    printed as typed (its thread count included) and its log's tail shown; a failure stops
    its lane and names its log in one line."""
    import pytest

    from fireact_eval.errors import FireactError

    both = tmp_path / "started"
    wait = ("touch {me}; for i in $(seq 100); do [ -e {other} ] && exit 0; sleep 0.05; done; "
            "exit 1")
    jobs = [(["sh", "-c", wait.format(me=both / name, other=both / other)],
             demo.SIDE_BY_SIDE, tmp_path / "logs" / f"{name}.log")
            for name, other in (("a", "b"), ("b", "a"))]
    both.mkdir()
    demo.run_side_by_side([[job] for job in jobs])
    out = capsys.readouterr().out
    assert out.count("$ OMP_NUM_THREADS=1 sh -c") == 2 and "> " + str(tmp_path / "logs") in out
    with pytest.raises(FireactError, match=r"step failed: see .*bad\.log"):
        demo.run_side_by_side([[(["sh", "-c", "exit 3"], {}, tmp_path / "bad.log"),
                                 (["touch", str(tmp_path / "never")], {}, tmp_path / "n.log")]])
    assert not (tmp_path / "never").exists()  # a lane stops at its failure
