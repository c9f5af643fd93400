"""Noisy tools: a pure function of (seed, doc id, turn), identical through lm_eval for any
batch size."""

import json

import pytest

from fireact_eval.errors import FireactError
from fireact_eval.perturb import make_perturbation, no_noise
from fireact_eval.tools import make_search

from conftest import read_outputs, run_lm_eval

POOL = [f"response {i}" for i in range(50)]


def test_off_is_the_clean_tool():
    assert make_perturbation("off", 0.5, 0, "doc") is no_noise


def test_draws_depend_only_on_seed_doc_and_turn():
    first = make_perturbation("random", 0.5, 7, "doc-3", POOL)
    again = make_perturbation("random", 0.5, 7, "doc-3", POOL)
    calls = [("obs", turn) for turn in range(1, 12)]
    assert [first(*c) for c in calls] == [again(*c) for c in reversed(calls)][::-1]
    other_seed = make_perturbation("random", 0.5, 8, "doc-3", POOL)
    assert [first(*c) for c in calls] != [other_seed(*c) for c in calls]


def test_rate_and_kinds():
    outcomes = [make_perturbation("none", 0.5, 0, f"doc-{d}")("real", t)
                for d in range(200) for t in range(1, 6)]
    rate = sum(hit is not None for _, hit in outcomes) / len(outcomes)
    assert 0.45 < rate < 0.55
    assert {(obs, hit) for obs, hit in outcomes if hit} == {("None", "none")}
    assert {obs for obs, hit in outcomes if not hit} == {"real"}
    randoms = [make_perturbation("random", 1.0, 0, f"d{d}", POOL)("response 3", 1)
               for d in range(100)]
    assert all(obs in POOL and obs != "response 3" for obs, _ in randoms)


@pytest.mark.parametrize(("kind", "p", "message"), [
    ("loud", 0.5, "valid values: off, none, random"),
    ("none", 1.5, "between 0 and 1"),
])
def test_bad_noise_settings(kind, p, message):
    with pytest.raises(FireactError, match=message):
        make_perturbation(kind, p, 0, "doc", POOL)


def test_local_search_pool_is_real_responses():
    search = make_search("local")
    assert len(search.pool) == 48 and search("Ilse Brandauer") in search.pool


def test_noise_is_identical_across_batch_sizes_and_limits_through_lm_eval(tiny_model,
                                                                         tmp_path):
    """FireAct's random kind and the four-fault mixture: the same draws at batch 1 and 16,
    and on the first 4 questions alone (``--limit 4``)."""
    per_batch = {}
    for batch, limit in (("1", "8"), ("16", "8"), ("16", "4")):
        out = tmp_path / f"b{batch}-{limit}"
        run_lm_eval("--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks",
                    "fireact_demo_noise_random,fireact_demo_noise_mix", "--device", "cpu",
                    "--batch_size", batch, "--limit", limit, "--metadata", "shots=zeroshot",
                    "--output_path", str(out), "--log_samples")
        for task in ("fireact_demo_noise_random", "fireact_demo_noise_mix"):
            results, samples = read_outputs(out, task)
            per_batch[batch, limit, task] = [
                {**json.loads(s["resps"][0][0]), "seconds": None, "doc": s["doc_id"]}
                for s in sorted(samples, key=lambda s: s["doc_id"])
            ]
            assert results["perturbed_calls,none"] > 0
    for task in ("fireact_demo_noise_random", "fireact_demo_noise_mix"):
        assert per_batch["1", "8", task] == per_batch["16", "8", task]
        assert per_batch["16", "4", task] == per_batch["16", "8", task][:4]
    kinds = {s["fault"] for t in per_batch["16", "8", "fireact_demo_noise_mix"]
             for s in t["steps"] if s["fault"]}
    assert len(kinds) >= 2, kinds



def test_recovery_counts_the_searches_that_follow_an_empty_result():
    """``searches_after_empty``: an empty result followed by another search counts; one
    followed by an answer, an invalid action or the end of the run does not; a reflection
    between two turns is not a turn."""
    from fireact_eval.scoring import qa, recovery
    from fireact_eval.trajectory import INVALID_ACTION, PERTURBED, Step, Trajectory

    def search(observation, mark=None, argument="x"):
        return Step("", action="search", argument=argument, observation=observation,
                    mark=mark)

    finish = Step("", action="finish", argument="Paris")
    invalid = Step("", action="lookup", argument="x", observation="Invalid", mark=INVALID_ACTION)
    reflect = Step("", thought="try again", kind="reflection")
    none = search("None", PERTURBED)
    steps = [none, search("Paris is ..."), none, reflect, search("None"), none, finish,
             none, invalid, none]
    got = recovery(Trajectory(steps=steps))
    assert got == {"empty_results": 6, "searches_after_empty": 3, "repeats_after_empty": 3}
    assert recovery(Trajectory(steps=[search("Paris"), finish])) == {
        "empty_results": 0, "searches_after_empty": 0, "repeats_after_empty": 0}
    # a search for something else after an empty result is no repeat; " X " is "x" again
    guess = [search("None", PERTURBED, "Tessaly"), search("...", argument="Brandwick"),
             search("None", PERTURBED, "Brandwick"), search("...", argument=" brandWICK "),
             finish]
    assert recovery(Trajectory(steps=guess)) == {
        "empty_results": 2, "searches_after_empty": 2, "repeats_after_empty": 1}
    scored = qa({"answer": "Paris"}, [Trajectory(steps=[none, search("x"), finish],
                                                 answer="Paris", finished=True).to_json()])
    assert scored["empty_results"] == 1 and scored["searches_after_empty"] == 1
    assert scored["repeats_after_empty"] == 1
    assert set(qa.metrics) >= {"empty_results", "searches_after_empty", "repeats_after_empty"}
