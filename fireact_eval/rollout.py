"""The rollout engine: every live trajectory advances one Thought/Action/Observation turn
per batched model call.

One engine serves every task, method and backend.  What differs between backends is
passed in as two callables: ``render`` turns a prompt and the steps so far into whatever
the backend takes (a string, or a chat-templated context), and ``generate`` is one
batched ``generate_until``.  The engine never scores: metrics read the ``Trajectory``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

from fireact_eval.environment import (
    DEFAULT_MAX_TURNS,
    Context,
    CountTokens,
    Environment,
    Episode,
    Generate,
    Render,
    invalid_action_observation,
    never_reflect,
    reflect_before,
)
from fireact_eval.perturb import TOOL_FAILED_PREFIX
from fireact_eval.tools import Search, ToolError, ask
from fireact_eval.trajectory import Trajectory
from fireact_eval.transcript import INVALID_ACTION_PREFIX, render_text

__all__ = [  # the public API (docs/python-api.md)
    "DEFAULT_MAX_TURNS",
    "Episode",
    "run_episodes",
    "run_concurrently",
    "call_tools",
    "never_reflect",
    "reflect_before",
    "TurnProgress",
    "invalid_action_observation",
    "INVALID_ACTION_PREFIX",
    "TOOL_FAILED_PREFIX",
    "ServedReply",
]



class ServedReply(str):
    """A reply with the token counts its server reported (a chat API's ``usage``): the
    engine adds those to the trajectory, not its own count, since only the server knows
    what its template made of the messages and tool schemas.  A ``str``, so whatever reads
    replies reads it as text, and lm-eval's cache (a pickle) keeps the counts with it."""

    prompt_tokens: int
    gen_tokens: int

    def __new__(cls, text: str, prompt_tokens: int, gen_tokens: int) -> ServedReply:
        reply = super().__new__(cls, text)
        reply.prompt_tokens, reply.gen_tokens = prompt_tokens, gen_tokens
        return reply

    def __reduce__(self) -> tuple:
        return ServedReply, (str(self), self.prompt_tokens, self.gen_tokens)


def call_tools(calls: Sequence[tuple[Search, str]]) -> list[str | ToolError]:
    """Run one turn's tool calls, answers in order; a failed call comes back as its
    ToolError.  Each tool gets all of its queries at once (one request to a retrieval
    server, concurrent calls to SerpAPI); different tools run side by side."""
    by_tool: dict[int, tuple[Search, list[int]]] = {}
    for position, (tool, _) in enumerate(calls):
        by_tool.setdefault(id(tool), (tool, []))[1].append(position)
    results: list[str | ToolError] = [""] * len(calls)

    def run(tool: Search, positions: list[int]) -> None:
        for position, answer in zip(positions, ask(tool, [calls[p][1] for p in positions]),
                                    strict=True):
            results[position] = answer

    groups = list(by_tool.values())
    if len(groups) <= 1:
        for group in groups:
            run(*group)
    else:
        with ThreadPoolExecutor(len(groups)) as pool:
            list(pool.map(lambda group: run(*group), groups))
    return results


class TurnProgress:
    """Progress in turns, the unit of work: the total is every episode's turn budget, cut
    back as trajectories finish early, so the rate and the ETA are real from the first
    turn; the postfix says how many trajectories are live and finished.  Shared by the
    workers of ``run_concurrently``."""

    def __init__(self, episodes: Sequence[Episode], enabled: bool = True) -> None:
        self.bar = tqdm(total=sum(max(ep.max_turns, 0) for ep in episodes), desc="ReAct turns",
                        unit="turn", disable=not enabled, dynamic_ncols=True)
        self.live, self.finished = len(episodes), 0
        self._lock = threading.Lock()

    def turned(self, turns: int) -> None:
        with self._lock:
            self.bar.update(turns)

    def ended(self, trajectories: int, unused_turns: int) -> None:
        with self._lock:
            self.live -= trajectories
            self.finished += trajectories
            self.bar.total -= unused_turns
            self.bar.set_postfix(live=self.live, finished=self.finished, refresh=True)

    def close(self) -> None:
        self.bar.close()


def run_episodes(
    episodes: Sequence[Episode],
    generate: Generate,
    render: Render = render_text,
    count_tokens: CountTokens | None = None,
    progress: bool | TurnProgress = True,
) -> list[Trajectory]:
    """Roll out all episodes together and return one Trajectory per episode, in order:
    each an ``Environment`` stepped a turn per batched model call."""
    envs = [Environment(ep) for ep in episodes]
    live = [i for i, ep in enumerate(episodes) if ep.max_turns > 0]
    bar = progress if isinstance(progress, TurnProgress) else TurnProgress(episodes, progress)
    bar.ended(len(episodes) - len(live), 0)

    def prompt_size(i: int, context: Context) -> int:
        return count_tokens(context) + episodes[i].prompt_overhead  # type: ignore[misc]

    while live:
        started = time.perf_counter()

        # 1. Generate: one batched call for every trajectory still running (Reflexion
        #    trajectories due a reflection are asked for it in the same call).
        reflecting = {i for i in live if episodes[i].reflect(envs[i].trajectory)}
        contexts = [(episodes[i].render or render)(episodes[i].prompt, envs[i].trajectory.steps,
                                                    i in reflecting) for i in live]
        sent = []  # (episode, context, its prompt tokens where counted before the call)
        for i, context in zip(live, contexts, strict=True):
            limit, size = episodes[i].context_limit, None
            if count_tokens is not None and limit is not None:  # a local backend's window
                size = prompt_size(i, context)
                if size > limit:
                    envs[i].trajectory.context_exceeded = True  # stopped: it no longer fits
                    continue
            sent.append((i, context, size))
        generations = [
            "" if text is None else text  # a backend that returned nothing wrote nothing
            for text in (generate([(c, episodes[i].request_kwargs(
                len(envs[i].trajectory.steps))) for i, c, _ in sent]) if sent else [])
        ]

        # 2. Act: each environment records its turn: an answer, a tool call to run, or an
        #    invalid action (told so).
        queued: list[tuple[int, tuple[Search, str]]] = []
        for (i, context, size), generation in zip(sent, generations, strict=True):
            traj = envs[i].trajectory
            if isinstance(generation, ServedReply):  # the server's own counts
                traj.prompt_tokens += generation.prompt_tokens
                traj.gen_tokens += generation.gen_tokens
            elif count_tokens is not None:
                traj.prompt_tokens += size if size is not None else prompt_size(i, context)
                traj.gen_tokens += count_tokens(generation)
            if i in reflecting:
                envs[i].reflect(generation)
            elif (call := envs[i].act(episodes[i].parse(generation))) is not None:
                queued.append((i, call))

        # 3. Observe: the turn's tool calls run together; each environment reads its
        #    result through its faults.
        for (i, _), result in zip(queued, call_tools([call for _, call in queued]),
                                  strict=True):
            envs[i].observe(result)

        # 4. Account the turn's time to those who ran it; drop finished and exhausted ones.
        share = (time.perf_counter() - started) / len(live)
        for i in live:
            envs[i].trajectory.seconds += share
        still = [i for i in live if not envs[i].done]
        bar.turned(sum(1 for i, _, _ in sent
                       if envs[i].trajectory.steps[-1].kind != "reflection"))
        ended = set(live) - set(still)
        bar.ended(len(ended), sum(episodes[i].max_turns - envs[i].trajectory.turns
                                  for i in ended))
        live = still
    if not isinstance(progress, TurnProgress):
        bar.close()
    return [env.trajectory for env in envs]


def run_concurrently(
    episodes: Sequence[Episode],
    generate: Generate,
    render: Render = render_text,
    count_tokens: CountTokens | None = None,
    concurrency: int = 8,
    progress: bool = True,
) -> list[Trajectory]:
    """The same engine, one episode per worker: each trajectory advances as soon as its own
    reply (and tool result) arrives instead of waiting for the slowest of the turn, with at
    most ``concurrency`` requests in flight.  For API backends, where a turn's requests
    are separate HTTP calls anyway.  A trajectory's ``seconds`` is then its own wall time
    (they overlap, so they no longer sum to the run)."""
    bar = TurnProgress(episodes, progress)
    try:
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            futures = [pool.submit(run_episodes, [episode], generate, render, count_tokens, bar)
                       for episode in episodes]
            return [future.result()[0] for future in futures]
    finally:
        bar.close()
