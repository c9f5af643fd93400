"""search=retriever:URL against a loopback retrieval server: one request per turn for every
live trajectory, faults retried, answers cached, wrong shapes reported."""

import pytest

from fireact_eval.errors import FireactError
from fireact_eval.rollout import Episode, run_episodes
from fireact_eval.tools import ToolError, make_search
from fireact_eval.tools.cache import CachedSearch, ToolCache
from fireact_eval.tools.local_search import NO_RESULT
from fireact_eval.tools.retriever import RetrieverSearch, render_hit
from fireact_eval.tools.retry import RetryPolicy

from retriever_server import RetrieverServer

FAST = RetryPolicy(timeout=2, retries=2, backoff=0.01)


@pytest.fixture
def server():
    s = RetrieverServer()
    yield s
    s.close()


def cached(server, tmp_path) -> CachedSearch:
    return CachedSearch(RetrieverSearch(server.url, policy=FAST), f"retriever:{server.url}",
                        ToolCache(tmp_path / "cache.sqlite"))


def scripted(turns):
    """A generate() that answers every live trajectory with the same action per round."""
    rounds = iter(turns)

    def generate(requests):
        action = next(rounds)
        return [action.format(i=i) for i, _ in enumerate(requests)]

    return generate


def test_one_request_per_turn_for_all_live_trajectories(server, tmp_path):
    tool = cached(server, tmp_path)
    episodes = [Episode(f"Q{i}\n", {"search": tool}) for i in range(6)]
    trajectories = run_episodes(episodes, scripted(
        ["Thought: a\nAction: search[first {i}]", "Thought: b\nAction: search[second {i}]",
         "Action: finish[x]"]), progress=False)
    assert len(server.requests) == 2  # two search turns, six trajectories each
    assert [len(r["queries"]) for r in server.requests] == [6, 6]
    assert server.requests[0]["topk"] == 1 and server.requests[0]["return_scores"] is True
    assert trajectories[3].steps[0].observation == "Title first 3: Text about first 3."
    assert all(t.finished and t.tool_errors == 0 for t in trajectories)


def test_answers_are_cached_and_repeated_queries_asked_once(server, tmp_path):
    tool = cached(server, tmp_path)
    assert tool.batch(["a", "b", "a"]) == ["Title a: Text about a."] * 1 + [
        "Title b: Text about b.", "Title a: Text about a."]
    assert server.requests[-1]["queries"] == ["a", "b"]
    again = cached(server, tmp_path)  # a new run on the same cache file
    assert again.batch(["b", "a"]) == ["Title b: Text about b.", "Title a: Text about a."]
    assert again("a") == "Title a: Text about a."
    assert len(server.requests) == 1


@pytest.mark.parametrize("fault", ["500", "429", "malformed"])
def test_transient_faults_are_retried(server, tmp_path, fault):
    server.faults = [fault, fault]
    assert cached(server, tmp_path)("q") == "Title q: Text about q."
    assert len(server.requests) == 3


def test_persistent_faults_become_tool_errors_not_cached(server, tmp_path):
    server.faults = ["500"] * 3
    tool = cached(server, tmp_path)
    [error] = tool.batch(["q"])
    assert isinstance(error, ToolError) and "failed after 3 tries: HTTP 500" in str(error)
    assert tool("q") == "Title q: Text about q."  # nothing failed was cached


@pytest.mark.parametrize("fault, what", [("wrong_shape", "expected {'result'"),
                                         ("short", "for 2 queries, got 1 lists")])
def test_wrong_shape_is_a_clear_tool_error_counted_per_sample(server, tmp_path, fault, what):
    server.faults = [fault]
    tool = cached(server, tmp_path)
    episodes = [Episode(f"Q{i}\n", {"search": tool}) for i in range(2)]
    trajectories = run_episodes(episodes, scripted(["Action: search[q{i}]", "Action: finish[x]"]),
                                progress=False)
    assert len(server.requests) == 1  # not retried: the server will not change its mind
    for traj in trajectories:
        assert traj.tool_errors == 1 and traj.finished
        assert server.url in traj.steps[0].observation and what in traj.steps[0].observation


def test_empty_hits_and_rendering(server, tmp_path):
    server.empty = {"nothing"}
    assert cached(server, tmp_path).batch(["nothing", "x"]) == [NO_RESULT,
                                                                "Title x: Text about x."]
    assert render_hit({"document": {"title": "T", "text": "body"}}, "") == "T: body"
    assert render_hit({"contents": "no title line"}, "") == "no title line"
    with pytest.raises(ToolError, match="neither 'contents' nor 'text'"):
        render_hit({"document": {"id": 1}}, "")


def test_spec_needs_a_url():
    with pytest.raises(FireactError, match="retriever needs a URL"):
        make_search("retriever:localhost:8000")
