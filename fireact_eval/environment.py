"""One question's environment: what every door steps through.

An ``Episode`` says what an agent may do on one question (its prompt, its tools with the run's
faults, its turn limit, the method's hooks); an ``Environment`` is that question being
answered: ``act`` records the agent's turn and says which tool call to run, ``observe`` takes
the call's result through the episode's faults, ``step`` does both for a door that calls one
tool at a time, ``trajectory`` is the transcript so far and ``score`` the metrics of the
answer.  The rollout engine (``rollout.run_episodes``) steps a batch of them, one batched
model call and one batched tool call per turn; any other door (an MCP session, a trainer's
environment) steps one, with the same tools, faults, turn limit and scorer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fireact_eval.perturb import Perturb, no_noise, tool_failed_observation
from fireact_eval.seeds import call_seed
from fireact_eval.tools import Search, ToolError, ask
from fireact_eval.trajectory import INVALID_ACTION, PERTURBED, TOOL_ERROR, Step, Trajectory
from fireact_eval.transcript import (
    FINISH,
    INVALID_ACTION_PREFIX,
    one_line,
    parse_step,
    reflection_step,
    turn_text,
)

__all__ = ["Episode", "Environment", "invalid_action_observation", "DEFAULT_MAX_TURNS"]

DEFAULT_MAX_TURNS = 11  # FireAct's limit

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



# (doc, [trajectory JSON]) -> metrics: a task's scorer (``scoring.DATASET_SCORERS``)
Scorer = Callable[[Mapping[str, Any], Sequence[str]], dict[str, float]]


class Environment:
    """One question being answered under an ``Episode``'s tools, faults and turn limit;
    ``doc`` and ``scorer`` (its dataset's, ``scoring.DATASET_SCORERS``) score the answer."""

    def __init__(self, episode: Episode, doc: Mapping[str, Any] | None = None,
                 scorer: Scorer | None = None) -> None:
        self.episode, self.doc, self.scorer = episode, doc, scorer
        self.trajectory = Trajectory(seed=episode.seed)

    @property
    def tools(self) -> Mapping[str, Search]:
        return self.episode.tools

    @property
    def done(self) -> bool:
        """Answered, stopped for its context, or out of turns."""
        traj = self.trajectory
        return (traj.finished or traj.context_exceeded
                or traj.turns >= self.episode.max_turns)

    def reflect(self, generation: str) -> None:
        """Record a Reflexion step (not a turn)."""
        self.trajectory.steps.append(reflection_step(generation))

    def act(self, step: Step) -> tuple[Search, str] | None:
        """Record the agent's turn: ``finish`` answers; a call of one of its tools is
        returned as (tool, argument) to run, its result for ``observe``; anything else is
        told which actions are valid.  None when there is no call to run."""
        traj, tools = self.trajectory, self.episode.tools
        traj.steps.append(step)
        traj.turns += 1
        if step.action == FINISH and step.argument is not None:
            traj.answer, traj.finished = step.argument, True
        elif step.action in tools and step.argument is not None:
            return tools[step.action], step.argument
        else:
            step.observation = (self.episode.invalid or invalid_action_observation)(step, tools)
            step.mark = INVALID_ACTION
            traj.invalid_actions += 1
        return None

    def observe(self, result: str | ToolError) -> str:
        """The result of the call ``act`` returned, as the agent sees it: a failure told as
        one, a success through the episode's faults (by its turn, or by the query if they
        persist); counted and marked on the step."""
        traj = self.trajectory
        step = traj.steps[-1]
        traj.tool_calls += 1
        if isinstance(result, ToolError):
            traj.tool_errors += 1
            step.mark = TOOL_ERROR
            observation = tool_failed_observation(str(result))
        else:
            observation, fault = self.episode.observe(result, traj.turns, step.argument or "")
            if fault is not None:
                traj.perturbed_calls += 1
                step.mark, step.fault = PERTURBED, fault
        step.observation = one_line(observation)
        return step.observation

    def step(self, step: Step | str) -> str | None:
        """One turn for a door that calls one tool at a time: the turn (a ``Step``, or what
        the agent wrote, read by the episode's layout) recorded, its call run and observed;
        the observation (None after ``finish``)."""
        step = self.episode.parse(step) if isinstance(step, str) else step
        call = self.act(step)
        if call is None:
            return step.observation
        tool, argument = call
        [result] = ask(tool, [argument])
        return self.observe(result)

    def call(self, action: str, argument: str) -> str | None:
        """``step`` for a door whose agent calls tools by name (MCP, inspect_ai, TRL): the
        call written as the grammar writes a turn, so the transcript reads alike."""
        return self.step(parse_step(turn_text(None, action, argument)))

    def score(self) -> dict[str, float]:
        """The answer's metrics by the task's scorer (quality, outcome, cost, recovery)."""
        if self.scorer is None or self.doc is None:
            raise ValueError("this environment was made without its doc and scorer")
        return self.scorer(self.doc, [self.trajectory.to_json()])
