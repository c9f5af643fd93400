"""A task's environment as an MCP server: ``fireact-eval serve-tools TASK``.

Agents built on MCP clients (inspect_ai's ``mcp_server_*`` tools, the OpenAI Agents SDK,
LangGraph, desktop assistants) call our tools over the Model Context Protocol, under the
task's seeded faults, turn limit and scorer, without being rewritten as an lm-eval model.
An episode is one question: ``start`` names it (a question id, or the next one not yet
started) and returns its episode id, question and turn limit; ``search`` (the task's tool)
and ``finish`` take that id; ``finish`` returns the score.  Each episode is an
``environment.Environment`` built exactly as an ``lm_eval`` run builds it, so the same
question and seed meet the same faults; every ended episode is written at once as a
samples line and a results file in lm-eval's layout (``--out``), which ``report``,
``results`` and ``gate`` read like any run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from fireact_eval.catalog import FINISH, SEARCH
from fireact_eval.environment import Environment
from fireact_eval.errors import FireactError
from fireact_eval.rollout_settings import CheckedMetadata
from fireact_eval.task_environment import new_environment
from fireact_eval.tool_calls import tool_schemas

__all__ = ["ToolServer", "build_server", "require_sdk", "serve"]

# The tools' arguments, described in the words the tools layout shows a model
# (``tool_calls.tool_schemas``); the SDK reads these annotations into each JSON schema.
_DESCRIBED = {s["function"]["name"]: s["function"] for s in tool_schemas([SEARCH])}


def _argument(tool: str, name: str) -> str:
    return _DESCRIBED[tool]["parameters"]["properties"][name]["description"]


EpisodeId = Annotated[str, Field(description="the episode id start returned")]
QuestionId = Annotated[str, Field(description="a question id of the task; empty: the next "
                                              "one not yet started")]
Query = Annotated[str, Field(description=_argument(SEARCH, "query"))]
Answer = Annotated[str, Field(description=_argument(FINISH, "answer"))]


@dataclass
class ToolServer:
    """The episodes of one served task: started, stepped, scored and written."""

    task: str
    metadata: dict[str, Any]
    checked: CheckedMetadata
    docs: list[dict]
    out: Path
    label: str = "mcp-agent"
    episodes: dict[str, Environment] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # of ended episodes
    written: list[dict] = field(default_factory=list)
    stamp: str = field(default_factory=lambda: datetime.now().strftime("%Y-%m-%dT%H-%M-%S.%f"))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pools: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {str(doc.get("id", i)): (i, doc) for i, doc in enumerate(self.docs)}

    def start(self, question: str = "") -> dict[str, Any]:
        with self._lock:
            if question:
                if question not in self.by_id:
                    raise FireactError(f"no question {question!r} in {self.task}")
                key = question
            else:
                key = next((k for k in self.by_id if k not in self.episodes), "")
                if not key:
                    raise FireactError(f"every question of {self.task} has been started")
            if key in self.episodes:
                raise FireactError(f"question {key!r} was started already (one episode each)")
            _, doc = self.by_id[key]
            env = new_environment(self.checked.settings, str(self.metadata["dataset"]), doc,
                                  key, self._pools)
            self.episodes[key] = env
        return {"episode": key, "question": doc["question"],
                "max_turns": env.episode.max_turns, "tools": [*env.tools, FINISH]}

    def _live(self, episode: str) -> Environment:
        env = self.episodes.get(episode)
        if env is None:
            raise FireactError(f"no episode {episode!r}: call start first")
        if env.done:
            raise FireactError(f"episode {episode!r} has ended")
        return env

    def act(self, episode: str, action: str, argument: str) -> str | None:
        """One turn of an episode: its observation (None after ``finish``); written when
        the episode ends (answered, or out of turns)."""
        with self._lock:
            env = self._live(episode)
        observation = env.call(action, argument)
        if env.done:
            self._write(episode, env)
        return observation

    def _write(self, key: str, env: Environment) -> None:
        from fireact_eval.harness.run_files import sample_record, write_run

        metrics = self.scores[key] = env.score()
        with self._lock:
            index, doc = self.by_id[key]
            self.written.append(sample_record(index, doc, str(doc["question"]),
                                              self.checked.settings.as_metadata(),
                                              env.trajectory.to_json(), metrics))
            self.written.sort(key=lambda s: s["doc_id"])
            write_run(self.out / self.label, self.task,
                      {**self.metadata, **self.checked.settings.as_metadata()},
                      self.written, self.label, self.stamp)


def require_sdk() -> Any:
    """The SDK's server class, or one line naming the extra (before any task loads)."""
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError:
        raise FireactError("serve-tools needs the MCP SDK 2.x: pip install 'fireact-eval[mcp]'"
                           ) from None
    return MCPServer


def build_server(tools: ToolServer) -> Any:
    """The MCP server (the official SDK's ``MCPServer``) whose tools are the task's."""
    MCPServer = require_sdk()
    settings = tools.checked.settings
    server = MCPServer(
        name=f"fireact-eval {tools.task}",
        instructions=(f"{tools.task}: answer questions by searching. Call start to get a "
                      "question and its episode id, search as often as you need (at most "
                      f"{settings.max_turns} turns, the answer included), then finish with the "
                      "answer; finish returns the score."))

    def start(question: QuestionId = "") -> dict:
        return tools.start(question)

    def search(episode: EpisodeId, query: Query) -> str:
        observation = tools.act(episode, SEARCH, query)
        env = tools.episodes[episode]
        if env.done:  # the turn limit: that was its last turn
            return f"{observation}\n(The turn limit is reached; the episode has ended.)"
        return str(observation)

    def finish(episode: EpisodeId, answer: Answer) -> dict:
        tools.act(episode, FINISH, answer)
        return tools.scores[episode]

    server.add_tool(start, description="Start an episode: one question of the task.")
    server.add_tool(search, description=_DESCRIBED[SEARCH]["description"])
    server.add_tool(finish, description=_DESCRIBED[FINISH]["description"])
    return server


def serve(tools: ToolServer, transport: str = "stdio", port: int = 8765) -> None:
    """Run the server until its client goes (stdio) or it is stopped (http, on
    127.0.0.1 only)."""
    server = build_server(tools)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)
