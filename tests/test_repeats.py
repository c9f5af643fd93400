"""Repeated tries of every question (``--metadata repeats=k``): batched in one engine run,
each with its own noise draws, scored per question as mean EM, pass@k, pass^k and the
majority answer; greedy decoding says its tries are copies instead of pretending."""

from __future__ import annotations

import json

import pytest
from lm_eval.api.instance import Instance

from fireact_eval.harness.backend import react_generate
from fireact_eval.rollout_settings import RolloutRequest, RolloutSettings
from fireact_eval.scoring import qa
from fireact_eval.trajectory import tries_from_json

from conftest import read_outputs, run_lm_eval


class Answers:
    """A fake backend: the i-th prompt it is ever asked answers ``answers[i % len]``; it
    counts the prompts of each ``generate_until`` call."""

    tokenizer = None

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.asked, self.calls = answers, 0, []

    def generate_until(self, instances, disable_tqdm=False):
        self.calls.append(len(instances))
        out = []
        for _ in instances:
            answer = self.answers[self.asked % len(self.answers)]
            out.append(f"Thought: so.\nAction: finish[{answer}]")
            self.asked += 1
        return out


def requests(settings: RolloutSettings, n: int, sample: bool) -> list[Instance]:
    gen = {"until": ["\nObservation"], "do_sample": sample}
    return [Instance("react_generate", {"id": f"q{i}"}, (f"Q{i}\n", gen,
                                                         RolloutRequest(settings)),
                     task_name="fireact_demo", idx=0, doc_id=i)
            for i in range(n)]


def test_tries_are_batched_and_scored_per_question():
    lm = Answers(["Paris", "Rome", "Paris", "Paris"])  # 4 tries of one question, in order
    settings = RolloutSettings(search="local", repeats=4, max_turns=2)
    [response] = react_generate(lm, requests(settings, 1, sample=True))
    assert lm.calls == [4]  # the four tries went to the model in one call
    tries = tries_from_json(response)
    assert [t.answer for t in tries] == ["Paris", "Rome", "Paris", "Paris"]
    scores = qa({"answer": "Paris"}, [response])
    assert scores["exact_match"] == pytest.approx(0.75)
    assert scores["pass_at_k"] == 1.0 and scores["pass_hat_k"] == 0.0
    assert scores["majority_exact_match"] == 1.0
    assert sum(v for k, v in scores.items() if k.startswith("outcome_")) == pytest.approx(1.0)
    assert not json.loads(response)["repeats_identical"]


def test_greedy_repeats_run_once_and_say_so(caplog):
    lm = Answers(["Paris"])
    settings = RolloutSettings(search="local", repeats=3, max_turns=2)
    responses = react_generate(lm, requests(settings, 2, sample=False))
    assert lm.calls == [2]  # one rollout per question
    for response in responses:
        assert len(tries_from_json(response)) == 3 and json.loads(response)["repeats_identical"]
    assert "greedy decoding" in caplog.text


class VLLM(Answers):
    """A fake of lm-eval's vllm backend (by class name, as the harness finds it): its
    ``seed=`` model arg, and the generation settings of every prompt it was sent."""

    def __init__(self, answers: list[str], seed: int) -> None:
        super().__init__(answers)
        self.model_args, self.sent = {"seed": seed}, []

    def generate_until(self, instances, disable_tqdm=False):
        self.sent += [inst.args[1] for inst in instances]
        return [f"Thought: look.\nAction: search[{a}]" if len(self.sent) <= 6 else t
                for a, t in zip("abcdef", super().generate_until(instances), strict=False)]


def test_each_try_samples_with_its_own_recorded_seed():
    """Before: every try of a question was sent with no seed of its own (an API server got
    lm-eval's one ``seed=1234`` for all), so a server honouring seeds drew every try alike."""
    from fireact_eval.seeds import call_seed, try_seed

    lm = VLLM(["Paris"], seed=7)
    settings = RolloutSettings(search="local", repeats=3, max_turns=3)
    responses = react_generate(lm, requests(settings, 2, sample=True))
    tries = [t for r in responses for t in tries_from_json(r)]
    assert [t.seed for t in tries] == [try_seed(7, f"q{i}", a) for i in range(2)
                                       for a in range(3)]
    assert len({t.seed for t in tries}) == 6
    # first calls of the six tries, then their second calls: a seed per (try, call)
    assert [g["seed"] for g in lm.sent] == [call_seed(t.seed, call) for call in (0, 1)
                                            for t in tries]
    assert len({g["seed"] for g in lm.sent}) == 12
    again = VLLM(["Paris"], seed=7)
    react_generate(again, requests(settings, 2, sample=True))
    assert again.sent == lm.sent  # a pure function of (run seed, question, try, call)
    other = VLLM(["Paris"], seed=8)
    react_generate(other, requests(settings, 2, sample=True))
    assert {g["seed"] for g in other.sent}.isdisjoint(g["seed"] for g in lm.sent)


def test_no_seed_where_the_backend_takes_none_or_decoding_is_greedy():
    greedy = VLLM(["Paris"], seed=7)
    [response] = react_generate(greedy, requests(RolloutSettings(search="local"), 1, False))
    assert "seed" not in greedy.sent[0] and tries_from_json(response)[0].seed is None
    hf = Answers(["Paris"])  # transformers' generate would reject a seed kwarg
    calls = []
    hf.generate_until = lambda inst, disable_tqdm=False: calls.extend(
        i.args[1] for i in inst) or ["Action: finish[Paris]"] * len(inst)
    [response] = react_generate(hf, requests(RolloutSettings(search="local", repeats=2), 1,
                                             True))
    assert all("seed" not in g for g in calls)
    assert [t.seed for t in tries_from_json(response)] == [None, None]


def test_api_tries_send_their_own_seeds_through_lm_eval(monkeypatch):
    """local-completions: lm-eval puts its one ``seed`` in every payload; ours overrides it
    per try and call, and the sample records each try's seed."""
    from lm_eval.api.registry import get_model

    from fireact_eval.seeds import call_seed

    from openai_server import CompletionServer

    server = CompletionServer(None, respond=lambda prompt: "Thought: t.\nAction: finish[x]")
    try:
        lm = get_model("local-completions").create_from_arg_string(
            f"base_url={server.base_url},model=s,tokenized_requests=False,"
            "tokenizer_backend=None,max_retries=1,seed=5", {"batch_size": 1})
        settings = RolloutSettings(search="local", repeats=3, concurrency=2)
        [response] = react_generate(lm, requests(settings, 1, sample=True))
    finally:
        server.close()
    tries = tries_from_json(response)
    assert sorted(server.seeds) == sorted(call_seed(t.seed, 0) for t in tries)
    assert len(set(server.seeds)) == 3 and 5 not in server.seeds


def test_each_try_draws_its_own_noise():
    from fireact_eval.perturb import perturbed_at, try_key

    draws = {tuple(perturbed_at(0.5, 0, try_key("q0", attempt), turn) for turn in range(8))
             for attempt in range(6)}
    assert len(draws) > 1  # the tries of one question are not perturbed alike
    assert try_key("q0", 0) == "q0"  # a run without repeats draws exactly as before


def test_repeats_through_lm_eval(tiny_model, tmp_path):
    """The tiny agent, sampled at temperature 1.0, 4 tries of 4 demo questions: one
    sample per question, its tries in ``repeats``; the table's pass@k >= EM >= pass^k."""
    run_lm_eval("--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks",
                "fireact_demo", "--device", "cpu", "--batch_size", "16", "--limit", "4",
                "--metadata", "shots=zeroshot", "max_turns=3", "repeats=4", "--gen_kwargs",
                "do_sample=True,temperature=1.0,max_gen_toks=48", "--seed", "1",
                "--output_path", str(tmp_path), "--log_samples")
    scores, samples = read_outputs(tmp_path, "fireact_demo")
    results = json.loads(next(tmp_path.glob("*/results_*.json")).read_text())
    assert len(samples) == 4 and all(len(tries_from_json(s["resps"][0][0])) == 4
                                     for s in samples)
    assert scores["pass_at_k,none"] >= scores["exact_match,none"] >= scores["pass_hat_k,none"]
    assert "majority_exact_match,none" in scores
    assert results["configs"]["fireact_demo"]["metadata"]["repeats"] == 4
    # a table's interval resamples questions, not tries, and says so
    from fireact_eval.results.frame import load_runs

    [row] = load_runs([str(tmp_path)]).itertuples()
    assert row.interval == "question bootstrap" and row.repeats == "4"
    assert row.score_low <= row.score <= row.score_high
    from fireact_eval.results.tables import repeats

    [shape] = repeats(load_runs([str(tmp_path)])).to_dict("records")
    assert shape["pass_at_k"] == pytest.approx(scores["pass_at_k,none"])
    for name in ("score", "pass_at_k", "pass_hat_k", "majority"):
        assert shape[f"{name}_low"] <= shape[name] <= shape[f"{name}_high"], name
