"""The generated world (``tools.world``): seeded byte for byte, splits that share no entity,
every kept question reachable in two searches, oracle teachers on it (clean, and searching
again after a noisy result), and the task through ``lm_eval``."""

from __future__ import annotations

import hashlib
import json

from fireact_eval.data.oracle import oracle_example, write_oracle_data
from fireact_eval.perturb import make_perturbation
from fireact_eval.tools import NULL_OBSERVATION, make_search
from fireact_eval.tools.world import WORLD_SEED, generate_world, reachable, world_folder

FILES = ("corpus.jsonl", "test.jsonl", "train.jsonl")


def _digests(folder) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in FILES}


def test_the_same_seed_writes_the_same_world_byte_for_byte(tmp_path, monkeypatch):
    made = []
    for cache in ("a", "b"):
        monkeypatch.setenv("FIREACT_EVAL_CACHE", str(tmp_path / cache))
        made.append(_digests(world_folder()))
    assert made[0] == made[1]
    other = generate_world(WORLD_SEED + 1)
    assert other.passages != generate_world().passages


def test_the_world_is_big_enough_and_its_splits_share_no_entity():
    world = generate_world()
    assert len(world.test) >= 1000 and len(world.train) >= 4000
    titles = {p["title"] for p in world.passages}
    assert len(titles) == len(world.passages)  # one passage per entity, names unique
    test = {t for q in world.test for t in q["supporting"]} | {q["answer"] for q in world.test}
    train = {t for q in world.train for t in q["supporting"]}
    assert test.isdisjoint(train)
    for q in world.test[:200]:  # the answer is never in the question: search is needed
        assert q["answer"] not in q["question"]


def test_kept_questions_are_reachable_in_two_searches_and_others_are_not_kept():
    folder = world_folder()
    rows = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    search = make_search("world")
    assert rows and all(reachable(q, search) for q in rows[:300])
    # a tool that cuts every passage short reaches none of them
    assert not any(reachable(q, lambda query: search(query)[:12]) for q in rows[:50])

    def first_hop_only(query):
        return search(query) if query == rows[0]["supporting"][0] else NULL_OBSERVATION
    assert not reachable(rows[0], first_hop_only)


def test_the_clean_oracle_answers_every_question_and_the_noisy_one_searches_again(tmp_path):
    search = make_search("world")
    folder = world_folder()
    question = json.loads((folder / "train.jsonl").read_text().splitlines()[0])
    clean = oracle_example(question, search, "world")
    assert [s.action for s in clean.steps] == ["search", "search", "finish"]
    assert clean.steps[-1].argument == question["answer"]

    # under noise=none the draws of the evaluation's perturbation decide which calls fail
    retried = None
    for seed in range(20):
        observe = make_perturbation("none", 0.5, seed, question["id"])
        example = oracle_example(question, search, "world", observe)
        if example and any(s.observation == NULL_OBSERVATION for s in example.steps):
            retried = example
            break
    assert retried is not None
    failed = next(i for i, s in enumerate(retried.steps) if s.observation == NULL_OBSERVATION)
    after = retried.steps[failed + 1]
    assert after.thought.startswith("The search returned nothing")
    assert after.argument == retried.steps[failed].argument  # the same search again
    assert retried.steps[-1].argument == question["answer"]

    written = write_oracle_data(tmp_path / "noisy.json", "world", noise="none")
    rows = json.loads((tmp_path / "noisy.json").read_text())
    assert written == len(rows) and sum("again" in r["output"] for r in rows) > len(rows) / 3


def test_a_sized_draw_of_the_world(tmp_path):
    from fireact_eval.questions import world

    test = list(world(n=300)["test"])
    train = list(world(split="train", n=2000)["test"])
    assert len(test) == 300 and len(train) == 2000
    assert {d["id"] for d in test}.isdisjoint({d["id"] for d in train})


def test_the_world_task_runs_through_lm_eval_with_noise(untrained_model, tmp_path):
    from conftest import read_outputs, run_lm_eval

    run_lm_eval("--model", "hf", "--model_args", f"pretrained={untrained_model}",
                "--tasks", "fireact_world,fireact_world_noise_none", "--device", "cpu",
                "--batch_size", "4", "--limit", "4", "--metadata", "shots=zeroshot,max_turns=2",
                "--gen_kwargs", "max_gen_toks=16", "--output_path", str(tmp_path / "run"),
                "--log_samples")
    for task in ("fireact_world", "fireact_world_noise_none"):
        metrics, samples = read_outputs(tmp_path / "run", task)
        assert len(samples) == 4 and "exact_match,none" in metrics
