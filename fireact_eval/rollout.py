"""The rollout engine: every live trajectory advances one Thought/Action/Observation turn
per batched model call.

One engine serves every task, method and backend.  What differs between backends is
passed in as two callables: ``render`` turns a prompt and the steps so far into whatever
the backend takes (a string, or a chat-templated context), and ``generate`` is one
batched ``generate_until``.  The engine never scores: metrics read the ``Trajectory``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from fireact_eval.tools import Search
from fireact_eval.trajectory import Step, Trajectory

FINISH = "finish"

DEFAULT_MAX_TURNS = 11  # FireAct's limit

Context = Any
Render = Callable[[str, Sequence[Step]], Context]
# One batched call over (context, gen_kwargs) pairs, like lm-eval's generate_until.
Generate = Callable[[list[tuple[Context, dict]]], list[str]]
CountTokens = Callable[[Context], int]


@dataclass
class Episode:
    """One question to roll out: its prompt, the tools it may call, its turn budget and
    the generation settings passed through to the backend untouched."""

    prompt: str
    tools: Mapping[str, Search] = field(default_factory=dict)
    max_turns: int = DEFAULT_MAX_TURNS
    gen_kwargs: dict = field(default_factory=dict)


def render_text(prompt: str, steps: Sequence[Step]) -> str:
    """Completion backends: the prompt, then each turn followed by its observation."""
    return prompt + "".join(f"{s.text}\nObservation: {s.observation}\n" for s in steps)


def render_messages(prompt: str, steps: Sequence[Step]) -> list[dict[str, str]]:
    """Chat backends: the prompt as the user's message, turns as assistant messages and
    observations as user messages (the layout of FireAct's chat fine-tuning data)."""
    messages = [{"role": "user", "content": prompt}]
    for s in steps:
        messages.append({"role": "assistant", "content": s.text})
        messages.append({"role": "user", "content": f"Observation: {s.observation}"})
    return messages


def invalid_action_observation(step: Step, tools: Mapping[str, Search]) -> str:
    valid = ", ".join([f"{name}[<query>]" for name in tools] + [f"{FINISH}[<answer>]"])
    wrote = f"{step.action}[...]" if step.action else "no action"
    return f"Invalid action: you wrote {wrote}. Valid actions are: {valid}."


def run_episodes(
    episodes: Sequence[Episode],
    generate: Generate,
    render: Render = render_text,
    count_tokens: CountTokens | None = None,
    progress: bool = True,
) -> list[Trajectory]:
    """Roll out all episodes together and return one Trajectory per episode, in order."""
    trajectories = [Trajectory() for _ in episodes]
    live = [i for i, ep in enumerate(episodes) if ep.max_turns > 0]
    bar = tqdm(total=len(episodes), desc="ReAct rollouts", unit="traj", disable=not progress)
    bar.update(len(episodes) - len(live))
    turn = 0
    while live:
        turn += 1
        bar.set_postfix(turn=turn, live=len(live))
        started = time.perf_counter()

        # 1. Generate: one batched call for every trajectory still running.
        contexts = [render(episodes[i].prompt, trajectories[i].steps) for i in live]
        generations = generate(
            [(c, episodes[i].gen_kwargs) for c, i in zip(contexts, live, strict=True)]
        )

        # 2. Act: finish, call a tool, or say the action was invalid.
        for i, context, generation in zip(live, contexts, generations, strict=True):
            traj, tools = trajectories[i], episodes[i].tools
            step = Step.from_generation(generation)
            traj.steps.append(step)
            traj.turns += 1
            if count_tokens is not None:
                traj.prompt_tokens += count_tokens(context)
                traj.gen_tokens += count_tokens(generation)
            if step.action == FINISH:
                traj.answer, traj.finished = step.argument, True
            elif step.action in tools:
                step.observation = tools[step.action](step.argument)
                traj.tool_calls += 1
            else:
                step.observation = invalid_action_observation(step, tools)
                traj.invalid_actions += 1

        # 3. Account the turn's time to those who ran it; drop finished and exhausted ones.
        share = (time.perf_counter() - started) / len(live)
        for i in live:
            trajectories[i].seconds += share
        still = [i for i in live if not trajectories[i].finished
                 and trajectories[i].turns < episodes[i].max_turns]
        bar.update(len(live) - len(still))
        live = still
    bar.close()
    return trajectories
