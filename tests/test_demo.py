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
