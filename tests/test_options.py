"""Settings schemas: one declaration per setting; parsing and the command line follow it."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fireact_eval.cli import build_parser
from fireact_eval.errors import FireactError
from fireact_eval.options import from_mapping, from_namespace
from fireact_eval.rollout_settings import RolloutSettings
from fireact_eval.trainers.train import TrainConfig


def test_train_flags_are_the_config_fields_with_the_same_defaults():
    args = build_parser().parse_args(["train", "--base", "b", "--data", "d", "--out", "o"])
    cfg = from_namespace(TrainConfig, args)
    assert cfg == TrainConfig(base="b", data="d", out="o")
    args = build_parser().parse_args(["train", "--base", "b", "--data", "d", "--out", "o",
                                      "--lr", "1e-4", "--target-modules", "q_proj,v_proj",
                                      "--epochs", "0.5", "--merge"])
    cfg = from_namespace(TrainConfig, args)
    assert (cfg.learning_rate, cfg.target_modules, cfg.epochs, cfg.merge) == (
        1e-4, ["q_proj", "v_proj"], 0.5, True)
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for f in fields(TrainConfig):
        if f.name != "extra":
            assert f"--{f.name.replace('_', '-')}" in help_text


def test_rollout_settings_parse_by_field_type():
    settings = RolloutSettings.from_metadata({"max_turns": "3", "reflect_at": [2, "4"],
                                              "noise_p": "0.25", "search": "local"})
    assert (settings.max_turns, settings.reflect_at, settings.noise_p) == (3, (2, 4), 0.25)
    assert RolloutSettings.from_metadata({"search": "local"}) == RolloutSettings(search="local")
    for bad, message in [({"max_turns": 2.7}, "max_turns must be an integer"),
                         ({"max_turns": True}, "max_turns must be an integer"),
                         ({"noise_p": "half"}, "noise_p must be a number"),
                         ({"method": "tot"}, "unknown method='tot'; valid values: io, cot")]:
        with pytest.raises(FireactError, match=message):
            RolloutSettings.from_metadata({"search": "local", **bad})


def test_unknown_keys_name_the_valid_ones():
    with pytest.raises(FireactError, match="unknown key.*lora_rank; valid keys: base, data"):
        from_mapping(TrainConfig, {"base": "b", "data": "d", "out": "o", "lora_rank": 4})
    with pytest.raises(FireactError, match="out is required"):
        from_mapping(TrainConfig, {"base": "b", "data": "d"})


@given(st.integers(-10**6, 10**6))
def test_integers_in_any_spelling(n):
    assert from_mapping(TrainConfig, {"base": "b", "data": "d", "out": "o",
                                      "lora_r": str(n)}).lora_r == n
    assert from_mapping(TrainConfig, {"base": "b", "data": "d", "out": "o",
                                      "lora_r": float(n)}).lora_r == n


def test_checking_settings_builds_no_tool(tmp_path):
    """Checking a task's settings (done for every task, and again as lm-eval builds each)
    only checks that the backend is known; building the tool is one explicit step that the
    preflight takes, so a missing corpus still fails before the model loads."""
    from fireact_eval.errors import FireactError
    from fireact_eval.rollout_settings import RolloutSettings

    missing = tmp_path / "no_such_corpus.jsonl"
    settings = RolloutSettings.from_metadata({"search": f"local:{missing}"})  # no error yet
    with pytest.raises(FireactError, match="no_such_corpus"):
        settings.build_tools()
