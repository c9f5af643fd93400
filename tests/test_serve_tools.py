"""``fireact-eval serve-tools``: a task's environment over MCP, driven by the official SDK's
own client (in process, over stdio, over streamable HTTP), faults included, every episode
written as an lm-eval run that ``results`` reads."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")
from mcp import Client  # noqa: E402
from mcp.client.stdio import StdioServerParameters  # noqa: E402

from fireact_eval.environment import Environment  # noqa: E402
from fireact_eval.errors import FireactError  # noqa: E402
from fireact_eval.scoring import qa  # noqa: E402
from fireact_eval.serve_tools import ToolServer, build_server  # noqa: E402
from fireact_eval.task_environment import load_task  # noqa: E402

TASK = "fireact_world_noise_mix"


def _supporting() -> dict[str, list[str]]:
    """Each world test question's supporting titles (the oracle's moves)."""
    from fireact_eval.tools.world import world_folder

    rows = map(json.loads, (world_folder() / "test.jsonl").read_text().splitlines())
    return {row["id"]: row["supporting"] for row in rows}


def _text(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def _episode(client, doc: dict) -> tuple[list[str], dict]:
    """The oracle's moves through the MCP tools: each supporting title searched twice,
    then the gold answer."""
    started = json.loads(_text(await client.call_tool("start", {"question": doc["id"]})))
    assert started["question"] == doc["question"] and started["tools"] == ["search", "finish"]
    seen = []
    for title in _supporting()[doc["id"]]:
        for _ in range(2):
            result = await client.call_tool("search", {"episode": doc["id"], "query": title})
            seen.append(_text(result))
    score = await client.call_tool("finish", {"episode": doc["id"], "answer": doc["answer"]})
    return seen, json.loads(_text(score))


def _engine_observations(doc: dict, settings) -> list[str]:
    """The same moves through the environment an lm_eval run builds for this question."""
    env = Environment(settings.episode(doc["question"], {}, doc["id"], {}), doc, qa)
    return [env.step(f"Action: search[{title}]") for title in _supporting()[doc["id"]]
            for _ in range(2)]


def test_an_mcp_client_meets_the_tasks_faults_and_gets_scored(tmp_path):
    metadata, checked, docs = load_task(TASK, {"n": "4"})
    tools = ToolServer(TASK, metadata, checked, docs, tmp_path)
    server = build_server(tools)

    async def drive():
        async with Client(server) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            assert set(listed) == {"start", "search", "finish"}
            assert listed["search"].input_schema["required"] == ["episode", "query"]
            assert "best-matching passage" in listed["search"].description
            return [await _episode(client, doc) for doc in docs[:3]]

    episodes = asyncio.run(drive())
    for doc, (seen, score) in zip(docs, episodes, strict=False):
        assert seen == _engine_observations(doc, checked.settings)  # the same draws
        assert score["exact_match"] == 1.0 and score["turns"] == 5
    faults = {s["fault"] for line in (tmp_path / "mcp-agent").glob("samples_*.jsonl")
              for sample in map(json.loads, line.read_text().splitlines())
              for s in json.loads(sample["resps"][0][0])["steps"] if s["fault"]}
    assert faults  # the mixture showed its kinds to the client
    from fireact_eval.results.frame import load_runs

    runs = load_runs([str(tmp_path)])
    assert list(runs["n"]) == [3] and runs["noise"].iloc[0].startswith("none:0.125+")


def test_an_episode_ends_at_its_turn_limit_and_is_written(tmp_path):
    metadata, checked, docs = load_task("fireact_world", {"n": "2", "max_turns": "2"})
    tools = ToolServer("fireact_world", metadata, checked, docs, tmp_path, label="limited")
    key = tools.start()["episode"]
    tools.act(key, "search", "anything")
    assert tools.episodes[key].done is False
    tools.act(key, "search", "anything else")
    assert tools.episodes[key].done
    with pytest.raises(FireactError, match="has ended"):
        tools.act(key, "finish", "x")
    [sample] = [json.loads(line) for path in (tmp_path / "limited").glob("samples_*.jsonl")
                for line in path.read_text().splitlines()]
    assert sample["outcome_turn_limit"] == 1.0
    with pytest.raises(FireactError, match="started already"):
        tools.start(key)
    with pytest.raises(FireactError, match="no question 'nope'"):
        tools.start("nope")


@pytest.mark.parametrize(("task", "metadata", "message"), [
    ("fireact_nope", "", "unknown task 'fireact_nope'"),
    ("fireact_world", "noise=loud", "unknown noise='loud'"),
    ("fireact_world_io", "", "calls no tool"),
    ("fireact_world", "serach=bing", "unknown key(s) serach"),
])
def test_bad_settings_are_one_line_before_the_server_starts(task, metadata, message):
    from conftest import cli_in_process

    proc = cli_in_process("serve-tools", task, *(["--metadata", metadata] if metadata else []))
    assert proc.returncode == 2 and message in proc.stderr
    proc = cli_in_process("serve-tools", "fireact_demo", "--label", "../elsewhere")
    assert proc.returncode == 2 and "--label names the folder" in proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_server_over_stdio_and_streamable_http(tmp_path):
    """The same episode over both transports, through the command a user runs."""
    metadata, checked, docs = load_task(TASK, {"n": "2"})
    doc = docs[0]
    command = [sys.executable, "-m", "fireact_eval.cli", "serve-tools", TASK, "--metadata",
               "n=2"]
    env = {**os.environ, "FIREACT_EVAL_NO_AUTOLOAD": "1"}
    stdio = StdioServerParameters(command=command[0], args=[*command[1:], "--out",
                                                            str(tmp_path / "stdio")], env=env)

    async def over(server):
        async with Client(server) as client:
            return await _episode(client, doc)

    expected = _engine_observations(doc, checked.settings)
    seen, score = asyncio.run(over(stdio))
    assert seen == expected and score["exact_match"] == 1.0
    port = _free_port()
    proc = subprocess.Popen([*command, "--transport", "http", "--port", str(port), "--out",
                             str(tmp_path / "http")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        seen, score = asyncio.run(over(f"http://127.0.0.1:{port}/mcp"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert seen == expected and score["exact_match"] == 1.0
    for transport in ("stdio", "http"):
        assert list(Path(tmp_path / transport / "mcp-agent").glob("results_*.json"))
