"""SerpAPI against a loopback server: field order, faults, retries, concurrency, the key
kept out of every output; the persistent tool cache; the replay backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from fast_python import python as fast_python
from serpapi_server import SerpApiServer

from fireact_eval.data.replay_index import build_replay_index
from fireact_eval.errors import FireactError
from fireact_eval.rollout import call_tools
from fireact_eval.tools import ToolError, make_search
from fireact_eval.tools.cache import CachedSearch, ToolCache
from fireact_eval.tools.replay import ReplaySearch
from fireact_eval.tools.serpapi import SerpApiSearch, extract_observation

from conftest import FIREACT_DATA, read_outputs, run_lm_eval

KEY = "sk-test-4f9c2b7e1d"
ORGANIC = {"organic_results": [{"snippet": "O"}, {"snippet": "P"}]}


@pytest.fixture
def server():
    srv = SerpApiServer(hang=0.5)
    yield srv
    srv.close()


def client(server, **kwargs) -> SerpApiSearch:
    return SerpApiSearch(KEY, base_url=server.base_url, **{"timeout": 0.2, "backoff": 0.01,
                                                             "retries": 3, **kwargs})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"answer_box": {"answer": "A", "snippet": "S"}, **ORGANIC}, "A"),
        ({"answer_box": {"snippet": "S", "snippet_highlighted_words": ["W"]}}, "S"),
        ({"answer_box": {"snippet_highlighted_words": ["W", "X"]}, **ORGANIC}, "W"),
        ({"answer_box": {}, **ORGANIC}, "O"),
        ({"organic_results": [{"title": "no snippet"}]}, "None"),
        ({}, "None"),
    ],
)
def test_fireact_field_order(data, expected):
    assert extract_observation(data) == expected


def test_google_query_parameters(server):
    server.responses["capital of France"] = {"answer_box": {"answer": "Paris"}}
    assert client(server)("capital of France") == "Paris"
    call = server.calls[0]
    assert (call["q"], call["gl"], call["hl"], call["engine"], call["api_key"]) == (
        "capital of France", "us", "en", "google", KEY)


@pytest.mark.parametrize("fault", ["429", "500", "timeout", "malformed", "error", "wrong_box",
                                   "wrong_organic", "wrong_words", "truncated", "badgzip"])
def test_each_fault_is_retried(server, fault):
    server.faults["q"] = [fault, fault]
    assert client(server)("q") == "Result for q"
    assert server.hits("q") == 3


def test_gives_up_after_retries_with_a_tool_error_without_the_key(server):
    server.faults["q"] = ["500"] * 10
    with pytest.raises(ToolError) as err:
        client(server, retries=2)("q")
    assert server.hits("q") == 3
    assert "HTTP 500" in str(err.value) and KEY not in str(err.value)


def test_connection_error_message_is_scrubbed():
    search = SerpApiSearch(KEY, base_url="http://127.0.0.1:9", timeout=0.2, retries=1,
                           backoff=0.01)
    with pytest.raises(ToolError) as err:
        search("q")
    assert KEY not in str(err.value) and "ConnectionError" in str(err.value)


def test_no_results_is_none_without_retry(server):
    server.faults["q"] = ["noresults"]
    assert client(server)("q") == "None"
    assert server.hits("q") == 1


def test_one_turn_of_queries_runs_concurrently():
    server = SerpApiServer(latency=0.1)
    try:
        search = SerpApiSearch(KEY, base_url=server.base_url, timeout=5)
        started = time.perf_counter()
        for i in range(4):  # the baseline, on this machine now: 4 calls one after another
            search(f"serial {i}")
        serial = time.perf_counter() - started
        started = time.perf_counter()
        results = call_tools([(search, f"query {i}") for i in range(32)])
        elapsed = time.perf_counter() - started
    finally:
        server.close()
    assert results == [f"Result for query {i}" for i in range(32)]
    assert server.max_active > 16  # the calls overlapped at the server
    # 32 at once take less than 16 in a row would (half the serial time), with room for a
    # CPU shared with another test worker: 32 calls of 0.1 s one after another take 8x serial
    assert elapsed < 4 * serial


def test_failures_become_counted_observations():
    def broken(query):
        raise ToolError("HTTP 503")

    [result] = call_tools([(broken, "q")])
    assert isinstance(result, ToolError)


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("SERPAPI_API_KEY", raising=False)
    make_search.cache_clear()
    with pytest.raises(FireactError, match="SERPAPI_API_KEY"):
        make_search("serpapi")


def test_cache_answers_reruns_and_never_stores_failures(server, tmp_path):
    cache = ToolCache(tmp_path / "tools.sqlite")
    search = CachedSearch(client(server, retries=0), "serpapi:google", cache)
    assert search("a") == "Result for a" and search(" a ") == "Result for a"
    assert server.hits("a") == 1
    server.faults["b"] = ["500"]
    with pytest.raises(ToolError):
        search("b")
    assert search("b") == "Result for b" and server.hits("b") == 2
    assert cache.stats() == {"serpapi:google": 2}
    assert search.pool == ["Result for a", "Result for b"]
    assert ToolCache(cache.path).get("serpapi:google", "a") == "Result for a"  # persisted
    assert KEY.encode() not in cache.path.read_bytes()
    out = subprocess.run([fast_python(), "-m", "fireact_eval.cli", "cache", "clear",
                          "--path", str(cache.path)], capture_output=True, text=True, check=True)
    assert "removed 2" in out.stdout and cache.stats() == {}


def lm_eval_on_serpapi(server, key, model, tmp_path, monkeypatch, limit, *metadata, check=True):
    """``lm_eval`` on ``limit`` fireact_demo questions with search=serpapi (and ``metadata``)
    against ``server``; closes it after."""
    monkeypatch.setenv("SERPAPI_API_KEY", key)
    monkeypatch.setenv("SERPAPI_BASE_URL", server.base_url)
    monkeypatch.setenv("FIREACT_EVAL_TOOL_CACHE", str(tmp_path / "tools.sqlite"))
    try:
        return run_lm_eval("--model", "hf", "--model_args", f"pretrained={model}",
                           "--tasks", "fireact_demo", "--device", "cpu", "--limit", str(limit),
                           "--metadata", "shots=zeroshot", "search=serpapi", *metadata,
                           "--output_path", str(tmp_path / "out"), "--log_samples",
                           check=check)
    finally:
        server.close()


def test_lm_eval_with_serpapi_keeps_the_key_out_of_every_output(tiny_model, tmp_path, monkeypatch):
    server = SerpApiServer()
    cache_file = tmp_path / "tools.sqlite"
    proc = lm_eval_on_serpapi(server, KEY, tiny_model, tmp_path, monkeypatch, 4)
    results, samples = read_outputs(tmp_path / "out", "fireact_demo")
    assert results["tool_calls,none"] >= 1.0 and server.calls[0]["api_key"] == KEY
    first_observation = json.loads(samples[0]["resps"][0][0])["steps"][0]["observation"]
    assert first_observation.startswith("Result for ")
    for path in [cache_file, *(tmp_path / "out").rglob("*")]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in proc.stdout and KEY not in proc.stderr


def test_replay_index_from_our_own_samples(tiny_model, tmp_path):
    run_lm_eval("--model", "hf", "--model_args", f"pretrained={tiny_model}", "--tasks",
                "fireact_demo", "--device", "cpu", "--limit", "8", "--metadata", "shots=zeroshot",
                "--output_path", str(tmp_path / "out"), "--log_samples")
    [samples] = (tmp_path / "out").rglob("samples_fireact_demo_*.jsonl")
    assert build_replay_index([samples], tmp_path / "replay.jsonl") == 16
    replay = ReplaySearch(tmp_path / "replay.jsonl")
    live = make_search("local")
    assert replay("  velmora observatory ") == live("Velmora Observatory")  # exact, normalised
    assert "Kettwick" in replay("where was the astronomer Ilse Brandauer born")  # BM25 fallback


@pytest.mark.skipif(not FIREACT_DATA.is_dir(), reason="../shared FireAct data not present")
def test_replay_index_from_fireact_files(tmp_path):
    files = sorted((FIREACT_DATA / "finetune").glob("*/*"))
    count = build_replay_index(files, tmp_path / "replay.jsonl")
    assert count > 2000
    replay = ReplaySearch(tmp_path / "replay.jsonl")
    rows = json.loads((FIREACT_DATA / "finetune/alpaca_format/hotpotqa.json").read_text())
    assert replay("best kick boxer in the world unsportsmanlike conducts crimes of violence") == \
        rows[0]["output"].split("Observation: ")[1].split("\n")[0]
    assert "Badr Hari" in replay("Badr Hari Moroccan-Dutch kickboxer")


def test_a_persistently_odd_reply_is_that_calls_tool_error_and_the_turn_goes_on(server):
    server.faults["bad"] = ["wrong_box"] * 10
    search = client(server, retries=1)
    bad, good = call_tools([(search, "bad"), (search, "good")])
    assert isinstance(bad, ToolError) and "unexpected shape" in str(bad)
    assert good == "Result for good"


@pytest.mark.parametrize("fault", ["401", "quota"])
def test_a_rejected_key_or_used_up_quota_stops_the_run_at_once(server, fault):
    from fireact_eval.tools.serpapi import FatalToolError

    server.faults["q"] = [fault] * 10
    with pytest.raises(FatalToolError, match="check SERPAPI_API_KEY") as err:
        call_tools([(client(server), "q"), (client(server), "other")])
    assert server.hits("q") == 1 and KEY not in str(err.value)


def test_the_key_is_scrubbed_in_url_encoded_forms_too():
    search = SerpApiSearch("sk+a/b=c", base_url="http://127.0.0.1:9")
    assert search._scrub("k=sk+a/b=c&x k=sk%2Ba%2Fb%3Dc k=sk%2Ba%2Fb%3Dc") == "k=***&x k=*** k=***"


def test_any_failure_inside_a_tool_is_its_tool_error_but_a_fatal_one_stops():
    from fireact_eval.tools import ask

    def broken(query):
        raise KeyError(query)

    [error] = ask(broken, ["q"])
    assert isinstance(error, ToolError) and "KeyError" in str(error)

    def fatal(query):
        raise FireactError("bad key")

    with pytest.raises(FireactError, match="bad key"):
        ask(fatal, ["q", "r"])


def test_a_damaged_tool_cache_is_set_aside_and_the_run_goes_on(tmp_path, caplog):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = ToolCache(path)
    cache.put("b", "q", "obs")
    assert cache.get("b", "q") == "obs"
    assert "damaged" in caplog.text and len(list(tmp_path.glob("cache.sqlite.corrupt-*"))) == 1


def test_an_unusable_tool_cache_is_one_error_when_it_opens(tmp_path):
    """Another program's database, a folder, an unwritable place: each was a tool error on
    every search (EM 0.5 -> 0.0, exit 0), or a traceback from ``cache stats``."""
    import sqlite3

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE calls (id INTEGER, payload BLOB)")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    ToolCache(readonly / "c.sqlite").put("b", "q", "o")
    (readonly / "c.sqlite").chmod(0o444)
    readonly.chmod(0o555)
    (tmp_path / "file").write_text("")
    cases = {other: "is another database", tmp_path: "is a folder",
             tmp_path / "file" / "c.sqlite": "cannot make its folder"}
    if os.geteuid() != 0:  # root writes anywhere
        cases[readonly / "c.sqlite"] = "readonly"
    for path, said in cases.items():
        with pytest.raises(FireactError, match=said):
            ToolCache(path).put("b", "q", "o")
        proc = subprocess.run([fast_python(), "-m", "fireact_eval.cli", "cache", "stats",
                               "--path", str(path)], capture_output=True, text=True)
        assert proc.returncode != 0 and said in proc.stderr and "Traceback" not in proc.stderr
    readonly.chmod(0o755)


def test_a_fresh_cache_opened_by_many_processes_at_once_never_fails(tmp_path):
    script = ("import sys; from fireact_eval.tools.cache import ToolCache; "
              "c = ToolCache(sys.argv[1]); c.put('b', sys.argv[2], 'o'); print('ok')")
    for round_no in range(3):
        path = tmp_path / f"fresh{round_no}.sqlite"
        procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(6)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
        assert ToolCache(path).stats() == {"b": 6}


CANARY = "sk+canary/key=42"  # changes under URL encoding: plain and encoded forms are checked


def _key_forms(key: str) -> list[bytes]:
    from urllib.parse import quote, quote_plus

    return [form.encode() for form in {key, quote(key, safe=""), quote_plus(key)}]


def test_a_run_against_a_search_server_failing_30_percent_of_calls(tiny_model, tmp_path,
                                                                    monkeypatch):
    """Every way of failing (hang, 429, 5xx, error dict, malformed, wrong shapes, truncated,
    bad encoding) at random: the run completes, each fault was retried or counted, no failure
    is cached, and the key is nowhere in any form."""
    server = SerpApiServer(fault_rate=0.3, hang=1.0)
    monkeypatch.setenv("SERPAPI_TIMEOUT", "0.3")
    cache_file = tmp_path / "tools.sqlite"
    proc = lm_eval_on_serpapi(server, CANARY, tiny_model, tmp_path, monkeypatch, 8,
                              "max_turns=4")
    results, samples = read_outputs(tmp_path / "out", "fireact_demo")
    # the tiny agent makes ~10 calls: 3 fail here; every kind at once is the test below
    assert len(samples) == 8 and sum(server.injected.values()) >= 3, server.injected
    trajectories = [json.loads(s["resps"][0][0]) for s in samples]
    calls = sum(t["tool_calls"] for t in trajectories)
    errors = sum(t["tool_errors"] for t in trajectories)
    ok = [s["observation"] for t in trajectories for s in t["steps"]
          if s["action"] == "search" and s["observation"].startswith("Result for ")]
    assert len(ok) + errors == calls  # every call answered, or counted as a tool error
    assert all(obs.startswith("Result for ") for obs in ToolCache(cache_file).observations(
        "serpapi:google"))  # nothing failed was cached
    for path in [cache_file, *(tmp_path / "out").rglob("*")]:
        if path.is_file():
            assert not any(form in path.read_bytes() for form in _key_forms(CANARY)), path
    logs = (proc.stdout + proc.stderr).encode()
    assert not any(form in logs for form in _key_forms(CANARY))


def test_a_rejected_key_stops_the_run_in_one_line_with_no_results(tiny_model, tmp_path,
                                                                  monkeypatch):
    server = SerpApiServer()
    server.fault_rate, server.RANDOM_FAULTS = 1.0, ("401",)
    proc = lm_eval_on_serpapi(server, CANARY, tiny_model, tmp_path, monkeypatch, 2,
                              check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "fireact-eval: error: SerpAPI refused the search (HTTP 401" in proc.stderr
    assert not list((tmp_path / "out").rglob("results_*.json"))
    assert not any(form in proc.stderr.encode() for form in _key_forms(CANARY))


def test_64_trajectories_against_a_server_failing_30_percent_in_every_way(tmp_path):
    """The engine with 64 live trajectories, two searches each, 3 of every 10 calls failing,
    each of the ten kinds in turn: no trajectory lost, each fault retried or counted."""
    from fireact_eval.rollout import Episode, run_episodes

    server = SerpApiServer(fault_rate=0.3, hang=0.5)
    search = CachedSearch(client(server, timeout=0.2, retries=4), "serpapi:google",
                          ToolCache(tmp_path / "c.sqlite"))
    script = iter(["Action: search[first {i}]", "Action: search[second {i}]",
                   "Action: finish[x]"])

    def generate(requests):
        action = next(script)
        return [action.format(i=i) for i in range(len(requests))]

    try:
        trajectories = run_episodes([Episode(f"Q{i}\n", {"search": search}) for i in range(64)],
                                    generate, progress=False)
    finally:
        server.close()
    assert set(server.injected) == set(server.RANDOM_FAULTS), server.injected
    assert all(t.finished and t.tool_calls == 2 for t in trajectories)
    answered = [s.observation for t in trajectories for s in t.steps
                if s.action == "search" and s.observation.startswith("Result for ")]
    assert len(answered) + sum(t.tool_errors for t in trajectories) == 128
    assert all(o.startswith("Result for ") for o in search.cache.observations("serpapi:google"))
