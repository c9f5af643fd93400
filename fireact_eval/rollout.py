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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from fireact_eval.perturb import TOOL_FAILED_PREFIX, Perturb, no_noise, tool_failed_observation
from fireact_eval.seeds import call_seed
from fireact_eval.tools import Search, ToolError, ask
from fireact_eval.trajectory import INVALID_ACTION, PERTURBED, TOOL_ERROR, Step, Trajectory
from fireact_eval.transcript import (
    FINISH,
    INVALID_ACTION_PREFIX,
    one_line,
    parse_step,
    reflection_step,
    render_text,
)

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

DEFAULT_MAX_TURNS = 11  # FireAct's limit


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


Context = Any
# (prompt, steps so far, whether to ask for a reflection) -> what the backend takes
Render = Callable[[str, Sequence[Step], bool], Context]
# One batched call over (context, gen_kwargs) pairs, like lm-eval's generate_until.
Generate = Callable[[list[tuple[Context, dict]]], list[str]]
CountTokens = Callable[[Context], int]
# (trajectory so far) -> whether its next generation is a reflection rather than a turn
Reflect = Callable[[Trajectory], bool]


def never_reflect(trajectory: Trajectory) -> bool:
    return False


def reflect_before(turns: Sequence[int]) -> Reflect:
    """Reflexion (FireAct: turns 6 and 10): ask once before each listed turn, if the agent
    has not finished by then."""
    due = frozenset(turns)

    def reflect(trajectory: Trajectory) -> bool:
        reflected = bool(trajectory.steps) and trajectory.steps[-1].kind == "reflection"
        return trajectory.turns + 1 in due and not reflected

    return reflect


@dataclass
class Episode:
    """One question to roll out: its prompt, the tools it may call, its turn budget and the
    generation settings passed through to the backend untouched; and the method's hooks,
    which the engine calls for every episode alike: ``reflect`` (Reflexion asks for a
    reflection when it says so) and ``observe`` (every successful tool observation passes
    through it: the faulty tool of ``perturb``, or ``no_noise``).  ``context_limit``: the most
    prompt tokens the model can take with room for its generation (``None``: no known
    limit); a trajectory whose next prompt is longer is stopped, since the backend would
    cut its question off the front.  ``seed``: this try's sampling seed, for backends that
    take one per request: each call then carries its own (``seeds.call_seed``).  ``render``
    and ``parse``: the layout's (text grammar by default; ``tool_calls`` for native calls)."""

    prompt: str
    tools: Mapping[str, Search] = field(default_factory=dict)
    max_turns: int = DEFAULT_MAX_TURNS
    gen_kwargs: dict = field(default_factory=dict)
    observe: Perturb = no_noise
    reflect: Reflect = never_reflect
    render: Render | None = None  # this episode's own rendering (else run_episodes' render)
    parse: Callable[[str], Step] = parse_step  # a generated turn as a step (its layout's)
    # what the agent is told after an invalid action, in its layout's words
    invalid: Callable[[Step, Mapping[str, Search]], str] | None = None  # (else the grammar's)
    context_limit: int | None = None
    seed: int | None = None
    # prompt tokens each request carries beside its context: an API's tool schemas
    prompt_overhead: int = 0

    def request_kwargs(self, call: int) -> dict:
        """The generation settings of this episode's ``call``-th request."""
        if self.seed is None:
            return self.gen_kwargs
        return {**self.gen_kwargs, "seed": call_seed(self.seed, call)}


def invalid_action_observation(step: Step, tools: Mapping[str, Search]) -> str:
    valid = ", ".join([f"{name}[<query>]" for name in tools] + [f"{FINISH}[<answer>]"])
    wrote = ("no action" if not step.action else f"{step.action}[...]"
             if step.argument is not None else f"{step.action} without its argument")
    return f"{INVALID_ACTION_PREFIX} you wrote {wrote}. Valid actions are: {valid}."


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
    """Roll out all episodes together and return one Trajectory per episode, in order."""
    trajectories = [Trajectory(seed=ep.seed) for ep in episodes]
    live = [i for i, ep in enumerate(episodes) if ep.max_turns > 0]
    bar = progress if isinstance(progress, TurnProgress) else TurnProgress(episodes, progress)
    bar.ended(len(episodes) - len(live), 0)

    def prompt_size(i: int, context: Context) -> int:
        return count_tokens(context) + episodes[i].prompt_overhead  # type: ignore[misc]

    while live:
        started = time.perf_counter()

        # 1. Generate: one batched call for every trajectory still running (Reflexion
        #    trajectories due a reflection are asked for it in the same call).
        reflecting = {i for i in live if episodes[i].reflect(trajectories[i])}
        contexts = [(episodes[i].render or render)(episodes[i].prompt, trajectories[i].steps,
                                                    i in reflecting) for i in live]
        sent = []  # (episode, context, its prompt tokens where counted before the call)
        for i, context in zip(live, contexts, strict=True):
            limit, size = episodes[i].context_limit, None
            if count_tokens is not None and limit is not None:  # a local backend's window
                size = prompt_size(i, context)
                if size > limit:
                    trajectories[i].context_exceeded = True  # stopped: it no longer fits
                    continue
            sent.append((i, context, size))
        generations = [
            "" if text is None else text  # a backend that returned nothing wrote nothing
            for text in (generate([(c, episodes[i].request_kwargs(len(trajectories[i].steps)))
                                   for i, c, _ in sent])
                         if sent else [])
        ]

        # 2. Act: finish, queue a tool call, or say the action was invalid.
        queued: list[int] = []
        for (i, context, size), generation in zip(sent, generations, strict=True):
            traj, tools = trajectories[i], episodes[i].tools
            if isinstance(generation, ServedReply):  # the server's own counts
                traj.prompt_tokens += generation.prompt_tokens
                traj.gen_tokens += generation.gen_tokens
            elif count_tokens is not None:
                traj.prompt_tokens += size if size is not None else prompt_size(i, context)
                traj.gen_tokens += count_tokens(generation)
            if i in reflecting:
                traj.steps.append(reflection_step(generation))
                continue
            step = episodes[i].parse(generation)
            traj.steps.append(step)
            traj.turns += 1
            if step.action == FINISH and step.argument is not None:
                traj.answer, traj.finished = step.argument, True
            elif step.action in tools and step.argument is not None:
                queued.append(i)
            else:
                step.observation = (episodes[i].invalid or invalid_action_observation)(step, tools)
                step.mark = INVALID_ACTION
                traj.invalid_actions += 1

        # 3. Observe: the turn's tool calls run together; failures and noise are counted.
        calls = [(episodes[i].tools[trajectories[i].steps[-1].action],
                  trajectories[i].steps[-1].argument) for i in queued]
        for i, result in zip(queued, call_tools(calls), strict=True):
            traj = trajectories[i]
            traj.tool_calls += 1
            if isinstance(result, ToolError):
                traj.tool_errors += 1
                traj.steps[-1].mark = TOOL_ERROR
                observation = tool_failed_observation(str(result))
            else:  # the episode's faults: by its own turn, or by the query if permanent
                observation, fault = episodes[i].observe(result, traj.turns,
                                                         traj.steps[-1].argument or "")
                if fault is not None:
                    traj.perturbed_calls += 1
                    traj.steps[-1].mark, traj.steps[-1].fault = PERTURBED, fault
            traj.steps[-1].observation = one_line(observation)

        # 4. Account the turn's time to those who ran it; drop finished and exhausted ones.
        share = (time.perf_counter() - started) / len(live)
        for i in live:
            trajectories[i].seconds += share
        still = [i for i in live if not trajectories[i].finished
                 and not trajectories[i].context_exceeded
                 and trajectories[i].turns < episodes[i].max_turns]
        bar.turned(sum(1 for i, _, _ in sent if trajectories[i].steps[-1].kind != "reflection"))
        ended = set(live) - set(still)
        bar.ended(len(ended), sum(episodes[i].max_turns - trajectories[i].turns for i in ended))
        live = still
    if not isinstance(progress, TurnProgress):
        bar.close()
    return trajectories


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
