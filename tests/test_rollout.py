"""The engine on its own: scripted generations, real tools, every branch of the loop."""

from fireact_eval.rollout import Episode, reflect_before, run_episodes
from fireact_eval.tools import ToolError, make_search
from fireact_eval.transcript import render_messages, render_text


class Script:
    """Answers each context by how many observations it already holds; records every call."""

    def __init__(self, turns: list[str]):
        self.turns, self.calls = turns, []

    def __call__(self, requests):
        self.calls.append(len(requests))
        return [self.turns[min(ctx.count("Observation:"), len(self.turns) - 1)]
                for ctx, _ in requests]


def test_searches_then_finishes_with_real_observations():
    search = make_search("local")
    script = Script(["Thought: look\nAction: search[Ilse Brandauer]", "Action: finish[Kettwick]"])
    [traj] = run_episodes([Episode("Q?\n", {"search": search})], script, progress=False)
    assert traj.finished and traj.answer == "Kettwick"
    assert (traj.turns, traj.tool_calls, traj.invalid_actions) == (2, 1, 0)
    assert "born in Kettwick" in traj.steps[0].observation
    assert traj.steps[1].observation is None


def test_batches_all_live_trajectories_in_one_call_per_turn():
    slow = ["Action: search[x]", "Action: search[y]", "Action: finish[b]"]
    episodes = [Episode(f"Q{i}\n", {"search": lambda q: "obs"}) for i in range(5)]

    def generate(requests):
        # the first two episodes finish at once, the other three search twice first
        out = []
        for ctx, _ in requests:
            if ctx.startswith(("Q0", "Q1")):
                out.append("Action: finish[a]")
            else:
                out.append(slow[ctx.count("Observation:")])
        calls.append(len(requests))
        return out

    calls = []
    trajs = run_episodes(episodes, generate, progress=False)
    assert calls == [5, 3, 3]  # one call per turn, only live trajectories
    assert [t.turns for t in trajs] == [1, 1, 3, 3, 3]
    assert all(t.finished for t in trajs)


def test_invalid_actions_are_observed_and_counted():
    script = Script(["Thought: hmm", "Action: lookup[x]", "Action: finish[done]"])
    [traj] = run_episodes([Episode("Q\n", {"search": lambda q: "obs"})], script, progress=False)
    assert traj.invalid_actions == 2 and traj.tool_calls == 0 and traj.finished
    assert "search[<query>]" in traj.steps[0].observation
    assert "finish[<answer>]" in traj.steps[0].observation
    assert "lookup" in traj.steps[1].observation


def test_max_turns_ends_unfinished():
    script = Script(["Action: search[again]"])
    [traj] = run_episodes([Episode("Q\n", {"search": lambda q: "obs"}, max_turns=4)], script,
                          progress=False)
    assert traj.turns == 4 and traj.tool_calls == 4
    assert not traj.finished and traj.answer is None


def test_gen_kwargs_and_contexts_reach_the_backend():
    seen = []

    def generate(requests):
        seen.extend(requests)
        return ["Action: search[q]" if "Observation" not in c else "Action: finish[a]"
                for c, _ in requests]

    run_episodes([Episode("Q\n", {"search": lambda q: "R"}, gen_kwargs={"until": ["X"]})],
                 generate, progress=False)
    assert seen[0] == ("Q\n", {"until": ["X"]})
    assert seen[1][0] == "Q\nAction: search[q]\nObservation: R\n"


def test_token_counts_and_time_are_accounted():
    script = Script(["Action: search[q]", "Action: finish[a]"])
    [traj] = run_episodes([Episode("Q\n", {"search": lambda q: "R"})], script,
                          count_tokens=lambda text: len(text.split()), progress=False)
    second_context = "Q Action: search[q] Observation: R"
    assert traj.prompt_tokens == len("Q".split()) + len(second_context.split())
    assert traj.gen_tokens == 4
    assert traj.seconds > 0


def test_a_server_that_reports_its_token_counts_is_believed_over_the_estimate():
    """An API's ``usage`` arrives as a ``ServedReply``: the trajectory adds the server's
    counts (a cache replay keeps them: the reply pickles with them), other replies are
    counted by the engine."""
    import pickle

    from fireact_eval.rollout import ServedReply

    served = ServedReply("Action: search[q]", prompt_tokens=500, gen_tokens=9)
    assert pickle.loads(pickle.dumps(served)).__reduce__() == served.__reduce__()
    script = Script([served, "Action: finish[a]"])
    [traj] = run_episodes([Episode("Q\n", {"search": lambda q: "R"})], script,
                          count_tokens=lambda text: len(text.split()), progress=False)
    assert traj.finished and traj.steps[0].argument == "q"
    assert traj.prompt_tokens == 500 + len("Q Action: search[q] Observation: R".split())
    assert traj.gen_tokens == 9 + 2


def test_render_messages_matches_fireact_chat_layout():
    script = Script(["Action: search[q]", "Action: finish[a]"])
    [traj] = run_episodes([Episode("Q", {"search": lambda q: "R"})], script, progress=False)
    messages = render_messages("Q", traj.steps[:1])
    assert messages == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Action: search[q]"},
        {"role": "user", "content": "Observation: R"},
    ]
    assert render_text("Q\n", traj.steps[:1]) == "Q\nAction: search[q]\nObservation: R\n"


def test_reflexion_asks_for_reflections_before_the_listed_turns():
    def generate(requests):
        return ["Reflection: I kept searching the same thing." if ctx.endswith("Reflection:")
                else "Thought: again\nAction: search[same]" for ctx, _ in requests]

    episode = Episode("Q\n", {"search": lambda q: "R"}, max_turns=11,
                      reflect=reflect_before((6, 10)))
    [traj] = run_episodes([episode], generate, progress=False)
    kinds = [s.kind for s in traj.steps]
    assert traj.turns == 11 and len(traj.steps) == 13
    assert [i for i, k in enumerate(kinds) if k == "reflection"] == [5, 10]  # before turns 6, 10
    assert traj.steps[5].thought == "I kept searching the same thing."
    assert render_text("Q\n", traj.steps[:6]).endswith(
        "Observation: R\nReflection: I kept searching the same thing.\n")
    messages = render_messages("Q", traj.steps[:6])
    assert messages[-2]["role"] == "user" and messages[-1]["content"].startswith("Reflection:")


def test_single_turn_methods_finish_in_one_turn_without_tools():
    cot, io = run_episodes(
        [Episode("Q\n", {}, max_turns=1), Episode("Q2\n", {}, max_turns=1)],
        lambda reqs: ["Thought: 2+2 is 4\nAction: finish[4]", "Action: search[x]"],
        progress=False,
    )
    assert cot.finished and cot.answer == "4" and cot.turns == 1 and cot.tool_calls == 0
    assert not io.finished and io.invalid_actions == 1 and io.turns == 1


def test_perturbation_sees_each_trajectorys_own_turn_and_failures_are_counted():
    def flaky(query):
        if query == "down":
            raise ToolError("HTTP 503")
        return "R"

    script = Script(["Action: search[up]", "Action: search[down]", "Action: finish[a]"])
    episode = Episode("Q\n", {"search": flaky}, reflect=reflect_before((2,)),
                      observe=lambda obs, turn, query: (f"{obs}@{turn}:{query}",
                                                        "error" if turn == 1 else None))
    [traj] = run_episodes([episode], script, progress=False)
    acts = [s for s in traj.steps if s.kind == "act"]
    assert acts[0].observation == "R@1:up" and traj.perturbed_calls == 1
    assert (acts[0].mark, acts[0].fault) == ("perturbed", "error") and acts[1].fault is None
    assert "search tool failed (HTTP 503)" in acts[1].observation and traj.tool_errors == 1
    assert traj.tool_calls == 2 and traj.finished


def test_a_backend_returning_none_is_an_empty_turn_not_a_crash():
    [traj] = run_episodes([Episode("Q\n", {"search": lambda q: "obs"}, max_turns=2)],
                          lambda requests: [None for _ in requests], progress=False)
    assert traj.turns == 2 and traj.invalid_actions == 2 and not traj.finished


def test_each_task_renders_its_own_way_in_one_run():
    """A chat task and a plain one in the same run: only the chat one is chat-templated."""
    from lm_eval.api.instance import Instance

    from fireact_eval.harness.backend import react_generate
    from fireact_eval.rollout_settings import RolloutRequest, RolloutSettings

    class FakeLM:
        tokenizer = None
        contexts: list = []

        def apply_chat_template(self, messages):
            return "CHAT " + messages[0]["content"]

        def generate_until(self, instances, disable_tqdm=False):
            self.contexts += [inst.args[0] for inst in instances]
            return ["Action: finish[x]" for _ in instances]

    settings = RolloutSettings(search="local")
    requests = [Instance(request_type="react_generate", doc={"id": str(i)}, idx=0,
                         arguments=(f"Q{i}\n", {}, RolloutRequest(settings, chat)),
                         task_name="fireact_demo", doc_id=i)
                for i, chat in enumerate([True, False])]
    lm = FakeLM()
    trajectories = react_generate(lm, requests)
    assert lm.contexts == ["CHAT Q0\n", "Q1\n"] and len(trajectories) == 2
