"""Tool faults (``perturb``): each kind, persistence, mixtures; seeded draws that are a pure
function of (seed, doc, turn or query), FireAct's two kinds drawn exactly as before, and a
kind the backend cannot produce refused before any model loads."""

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fireact_eval.catalog import NOISE_CONDITIONS, NOISE_KINDS
from fireact_eval.errors import FireactError
from fireact_eval.perturb import (
    ERRORS,
    TOOL_FAILED_PREFIX,
    make_perturbation,
    parse_noise,
    truncate,
    try_key,
)
from fireact_eval.rollout_settings import RolloutSettings, check_metadata
from fireact_eval.tools import make_search

from conftest import read_outputs, run_lm_eval

pytestmark = pytest.mark.unit
POOL = [f"response {i}" for i in range(50)]
KINDS = [k for k in NOISE_KINDS if k != "off"]


def old_draw(kind, p, seed, doc, turn, observation):
    """FireAct's two kinds as they were drawn before the fault model (issue 46)."""
    rng = random.Random(f"{seed}/{doc}/{turn}")
    if rng.random() >= p:
        return observation, None
    if kind == "none":
        return "None", "none"
    index = rng.randrange(len(POOL))
    if POOL[index] == observation:
        index = (index + 1) % len(POOL)
    return POOL[index], "random"


@pytest.mark.parametrize("kind", ["none", "random"])
def test_fireacts_two_kinds_draw_exactly_as_before(kind):
    for doc in range(40):
        perturb = make_perturbation(kind, 0.5, 3, f"d{doc}", POOL)
        for turn in range(1, 9):
            assert perturb("response 7", turn, "any query") == old_draw(
                kind, 0.5, 3, f"d{doc}", turn, "response 7")


def test_each_kind_is_what_it_says():
    local = make_search("local")
    clean = local("Ilse Brandauer")
    seen = {}
    for kind in KINDS:
        perturb = make_perturbation(kind, 1.0, 0, "doc", POOL, tool=local)
        seen[kind] = perturb(clean, 1, "Ilse Brandauer")
        assert seen[kind][1] == kind
    assert seen["none"][0] == "None"
    assert seen["random"][0] in POOL
    error = seen["error"][0]
    assert error.startswith(TOOL_FAILED_PREFIX) and any(e in error for e in ERRORS)
    distractor = seen["distractor"][0]
    assert distractor != clean and distractor in local.pool  # a real passage of the backend
    cut = seen["truncated"][0]
    assert cut.endswith(" ...") and clean.startswith(cut[:-4]) and len(cut) < len(clean)


def test_the_world_distracts_with_its_own_kind_and_cuts_before_the_fact():
    from fireact_eval.tools.world import generate_world, world_folder

    world, entities = make_search("world"), generate_world().entities
    rows = [json.loads(line) for line in (world_folder() / "test.jsonl").open()][:40]
    for row in rows:
        for title in row["supporting"]:
            clean = world(title)
            other = world.distractor(title, clean)
            other_title = other.partition(": ")[0]
            assert other_title != title
            mine, theirs = entities[title], entities[other_title]
            assert theirs.kind == mine.kind
            assert theirs.province == mine.province if mine.kind != "province" else (
                theirs.split == mine.split)  # a training row never shows a test province
            assert world.distractor(title, clean) == other  # fixed by the query
            cut = world.truncate(clean)
            assert clean.startswith(cut[:-4]) and cut.endswith(" ...")
        # the passage that held the answer holds it no more, cut
        assert row["answer"] not in world.truncate(world(row["supporting"][1]))


def test_permanent_faults_follow_the_query_and_transient_ones_the_turn():
    permanent = make_perturbation("none", 0.5, 0, "doc", persist="permanent")
    transient = make_perturbation("none", 0.5, 0, "doc")
    for query in (f"q{i}" for i in range(30)):
        first = permanent("obs", 1, query)
        assert all(permanent("obs", turn, f"  {query.upper()} ") == first
                   for turn in range(2, 9))  # the same query, normalised: the same fault
    kinds = {transient("obs", turn, "same")[1] for turn in range(1, 30)}
    assert kinds == {None, "none"}  # a retry of the same query draws afresh
    reformulated = {permanent("obs", 1, f"query {i}")[1] for i in range(30)}
    assert reformulated == {None, "none"}  # another query draws anew


@given(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5, unique=True),
       st.integers(0, 1000))
@settings(max_examples=40, deadline=None)
def test_a_mixture_draws_each_kind_at_its_rate_and_reads_back_as_written(kinds, seed):
    weight = round(0.8 / len(kinds), 3)
    spec = "+".join(f"{k}:{weight}" for k in kinds)
    parsed = parse_noise(spec)
    assert parse_noise(parsed.name, parsed.p) == parsed  # the recorded name means the same
    assert parse_noise(spec.replace("+", ",")) == parsed
    local = make_search("local")
    counts = {k: 0 for k in [*kinds, None]}
    draws = 400
    for i in range(draws):
        _, fault = make_perturbation(spec, 0.5, seed, f"d{i}", POOL, tool=local)(
            local("Kettwick"), 1, "Kettwick")
        counts[fault] = counts.get(fault, 0) + 1
    for kind in kinds:
        assert abs(counts[kind] / draws - weight) < 0.09, counts
    assert abs(counts[None] / draws - (1 - weight * len(kinds))) < 0.09


@pytest.mark.parametrize(("spec", "message"), [
    ("loud", "unknown noise='loud'; valid values: off, none, random, error"),
    ("error:0.7+none:0.6", "add up to more than 1"),
    ("error+none:0.2", "every kind has its probability"),
    ("none:0.2+none:0.1", "none is given twice"),
    ("none:2", "noise_p must be between 0 and 1"),
    ("none:x", "'x' is not a probability"),
    ("off+none:0.2", "off mixes with nothing"),
    ("none,persist=forever", "persist is one of transient, permanent"),
])
def test_a_bad_spec_is_one_line(spec, message):
    with pytest.raises(FireactError, match=message):
        parse_noise(spec)


def test_settings_record_one_spec_and_refuse_contradictions():
    mix = RolloutSettings.from_metadata({"noise": "error:0.2,distractor:0.2,persist=permanent",
                                         "search": "local"})
    assert (mix.noise, mix.noise_p, mix.noise_persist) == (
        "error:0.2+distractor:0.2", 0.4, "permanent")
    one = RolloutSettings.from_metadata({"noise": "none", "noise_p": 0.3, "search": "local"})
    assert (one.noise, one.noise_p, one.noise_persist) == ("none", 0.3, "transient")
    assert RolloutSettings.from_metadata({"noise": "none:0.3"}).noise_p == 0.3
    for metadata, message in [
        ({"noise": "error:0.2+none:0.2", "noise_p": 0.5}, "noise_p=0.5 contradicts it"),
        ({"noise": "none,persist=permanent", "noise_persist": "transient"}, "contradicts"),
        ({"noise_persist": "permanent"}, "needs a fault"),
        ({"noise_persist": "forever"}, "noise_persist"),
    ]:
        with pytest.raises(FireactError, match=message):
            check_metadata(metadata)


def test_a_fault_the_backend_cannot_produce_fails_before_the_model(tmp_path):
    recorded = tmp_path / "replay.jsonl"
    recorded.write_text(json.dumps({"query": "x", "text": "X: a passage"}) + "\n")
    settings_ = RolloutSettings.from_metadata({"noise": "distractor",
                                               "search": f"replay:{recorded}"})
    with pytest.raises(FireactError, match="noise=distractor: search=replay:.* gives one result"):
        settings_.build_tools()
    RolloutSettings.from_metadata({"noise": "truncated", "search": f"replay:{recorded}"}
                                  ).build_tools()  # a cut needs only the observation


def test_every_condition_is_a_valid_setting_with_its_variant():
    for name, metadata in NOISE_CONDITIONS.items():
        checked = check_metadata({**metadata, "noise_p": 0.5, "search": "local"}).settings
        assert checked.noise_spec.kinds, name


def test_tries_draw_their_own_faults_and_the_same_try_the_same():
    for persist in ("transient", "permanent"):
        draws = {attempt: [make_perturbation("none", 0.5, 0, try_key("doc", attempt), (),
                                             persist=persist)("o", t, f"q{t}")[1]
                           for t in range(1, 20)] for attempt in range(3)}
        again = [make_perturbation("none", 0.5, 0, try_key("doc", 1), (), persist=persist)(
            "o", t, f"q{t}")[1] for t in range(1, 20)]
        assert draws[1] == again and draws[0] != draws[1]


def test_a_generic_cut_keeps_the_first_sentence():
    assert truncate("Paris is a city. It is the capital of France.") == "Paris is a city. ..."
    assert truncate("one two three four") == "one two ..."


def test_what_follows_a_fault_is_counted_by_kind():
    from fireact_eval.scoring import after_faults, false_alarms, fault_recovery
    from fireact_eval.trajectory import INVALID_ACTION, PERTURBED, Step, Trajectory

    def search(argument, observation, fault=None):
        return Step("", action="search", argument=argument, observation=observation,
                    mark=PERTURBED if fault else None, fault=fault)

    finish = Step("", action="finish", argument="Brandwick")
    steps = [search("Tessaly", "Other: about Brandwick", "distractor"),
             search(" tessaly ", "Tessaly: founded by Ilse"),  # the same again: a retry
             search("Ilse", "The search tool failed (503); try again or answer.", "error"),
             search("Ilse Brandauer", "Ilse Brandauer: born in Kettwick"),  # another search
             search("Ilse Brandauer", "Ilse Brandauer: born in Kettwick"),  # a false alarm
             search("Kettwick", "Kettwick ...", "truncated"), finish]
    traj = Trajectory(steps=steps, answer="Brandwick", finished=True)
    assert after_faults(traj) == [("distractor", "retry"), ("error", "search"),
                                  ("truncated", "answer")]
    assert false_alarms(traj) == 1
    wrong = fault_recovery(traj, correct=False)
    assert wrong == {"retries_after_fault": 1, "searches_after_fault": 1,
                     "answers_after_fault": 1, "fault_recovered": 0, "trusted_fault": 1,
                     "false_alarms": 1}  # "Brandwick" came from the distractor alone
    assert fault_recovery(traj, correct=True)["fault_recovered"] == 1
    assert fault_recovery(traj, correct=True)["trusted_fault"] == 0
    invalid = Step("", action="lookup", observation="Invalid", mark=INVALID_ACTION)
    assert after_faults(Trajectory(steps=[steps[0], invalid])) == [("distractor", "stop")]
    clean = Trajectory(steps=[search("Tessaly", "Tessaly: x"), finish], answer="x")
    assert fault_recovery(clean, correct=False)["trusted_fault"] == 0


def test_the_fault_profile_through_lm_eval(tiny_model, untrained_model, tmp_path):
    """Each kind marked on its steps as lm-eval logs them; a permanent fault the same for
    the same query; the recovery metrics in lm-eval's table; ``results table --shape
    faults`` with the floor and the paired comparison of two named agents."""
    from fireact_eval.trajectory import Trajectory

    from conftest import cli

    runs = (("trained", tiny_model, "fireact_demo,fireact_demo_noise_error,"
                                    "fireact_demo_noise_distractor_permanent,"
                                    "fireact_demo_noise_mix", ""),
            ("trained/io", tiny_model, "fireact_demo", ",method=io"),  # the closed book
            ("untrained", untrained_model, "fireact_demo,fireact_demo_noise_error", ""))
    for name, model, tasks, method in runs:
        run_lm_eval("--model", "hf", "--model_args", f"pretrained={model}", "--tasks", tasks,
                    "--device", "cpu", "--batch_size", "8", "--limit", "8", "--metadata",
                    f"shots=zeroshot,max_turns=4{method}", "--gen_kwargs", "max_gen_toks=64",
                    "--output_path", str(tmp_path / name), "--log_samples")
    results, samples = read_outputs(tmp_path / "trained", "fireact_demo_noise_error")
    assert results["perturbed_calls,none"] > 0 and "retries_after_fault,none" in results
    faults = [s for sample in samples for s in Trajectory.from_json(sample["resps"][0][0]).steps
              if s.mark == "perturbed"]
    assert faults and all(s.fault == "error" and s.observation.startswith(TOOL_FAILED_PREFIX)
                          for s in faults)
    _, samples = read_outputs(tmp_path / "trained", "fireact_demo_noise_distractor_permanent")
    for sample in samples:
        by_query = {}
        for step in Trajectory.from_json(sample["resps"][0][0]).steps:
            if step.action == "search" and step.observation is not None:
                key = " ".join(step.argument.casefold().split())
                assert by_query.setdefault(key, (step.fault, step.observation)) == (
                    step.fault, step.observation)
    trained, untrained = f"T={tmp_path / 'trained'}", f"U={tmp_path / 'untrained'}"
    proc = cli("results", "table", trained, untrained, "--shape", "faults", "--against", "U")
    assert proc.returncode == 0, proc.stderr
    assert "distractor permanent" in proc.stdout and "floor" in proc.stdout
    assert "p_vs" in proc.stdout and "recovered" in proc.stdout
    assert "none:0.125+error:0.125+distractor:0.125+truncated:0.125 / " in proc.stdout  # by kind
    proc = cli("results", "table", trained, "--shape", "faults", "--against", "X")
    assert proc.returncode != 0 and "--against X: no agent of that name" in proc.stderr
    proc = cli("results", "plot", trained, "--shape", "faults", "--out",
               str(tmp_path / "faults.png"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "faults.png").stat().st_size > 1000


def test_a_mixture_written_with_commas_in_yaml_reaches_command_lines_whole():
    """An experiment passes metadata as ``key=value,...``, which splits on commas: the
    mixture goes as its ``+`` form, the same spec."""
    from fireact_eval.experiment.runner import _pairs

    [pair, other] = _pairs({"noise": "error:0.2,distractor:0.2,persist=permanent", "n": 3})
    assert pair == "noise=error:0.2+distractor:0.2+persist=permanent" and other == "n=3"
    assert parse_noise(pair.partition("=")[2]) == parse_noise(
        "error:0.2,distractor:0.2,persist=permanent")


def test_an_environment_stepped_by_hand_meets_the_engines_faults_and_scores():
    """The public ``Environment``: stepped one call at a time (as an MCP session or a
    trainer's environment does), it sees the same faulted observations as the batched
    engine on the same question and seed, and scores the answer with the task's scorer."""
    from fireact_eval.environment import Environment
    from fireact_eval.rollout import run_episodes
    from fireact_eval.scoring import qa
    from fireact_eval.tools.world import world_folder

    settings_ = RolloutSettings.from_metadata({
        "search": "world", "noise": "none:0.2+error:0.2+distractor:0.2+truncated:0.2"})
    doc = json.loads((world_folder() / "test.jsonl").open().readline())
    first, second = doc["supporting"]
    turns = [f"Action: search[{first}]", f"Action: search[{first}]",
             f"Action: search[{second}]", f"Action: search[{second}]",
             f"Action: finish[{doc['answer']}]"]
    env = Environment(settings_.episode("Q", {}, doc["id"], {}), doc, qa)
    seen = [env.step(turn) for turn in turns]
    assert env.done and seen[-1] is None
    [engine] = run_episodes([settings_.episode("Q", {}, doc["id"], {})],
                            lambda requests: [turns.pop(0) for _ in requests], progress=False)
    assert [s.observation for s in engine.steps] == seen
    assert [s.fault for s in engine.steps] == [s.fault for s in env.trajectory.steps]
    scored = env.score()
    assert scored["exact_match"] == 1.0 and scored["turns"] == 5


def test_the_profile_flags_a_faulty_tool_worse_than_no_tool(tmp_path):
    """``below_floor``: the same model's closed-book (io) run beats its run under a faulty
    tool; the drop is paired with McNemar's p, and a clean-only set is refused in one line."""
    from test_results import write_run

    from fireact_eval.results.frame import load_runs
    from fireact_eval.results.tables import faults

    write_run(tmp_path, "io", [1.0] * 6 + [0.0] * 4, model="agent", metadata={"method": "io"})
    write_run(tmp_path, "clean", [1.0] * 9 + [0.0], model="agent")
    write_run(tmp_path, "error", [0.0] * 8 + [1.0] * 2, model="agent",
              task="fireact_demo_noise_error", metadata={"noise": "error"})
    table = faults(load_runs([str(tmp_path)])).loc[("agent", "react", "demo")]
    assert table.loc["off", "floor"] == 0.6 and not table.loc["off", "below_floor"]
    assert table.loc["error", "below_floor"] and table.loc["error", "drop"] == pytest.approx(0.7)
    assert table.loc["error", "p"] == pytest.approx(2 * (1 + 9) / 2 ** 9)  # 8 vs 1 discordant
    with pytest.raises(FireactError, match="no agent ran under a faulty tool"):
        faults(load_runs([str(tmp_path / "clean")]))
    from fireact_eval.results.tables import leaderboard

    with pytest.raises(FireactError, match="every run here had a faulty tool"):
        leaderboard(load_runs([str(tmp_path / "error")]))  # one line, not pandas' traceback
