"""Our tasks as inspect_ai tasks: ``inspect eval fireact_eval/world --model ...``.

Registered through inspect's entry point (``inspect_ai = fireact_eval.inspect_tasks``), one
task per dataset (``hotpotqa``, ``bamboogle``, ``strategyqa``, ``mmlu``, ``demo``,
``world``); any task setting is a task parameter (``-T noise=distractor -T
noise_persist=permanent``), checked at the door as ``lm_eval --metadata`` is.  Each sample
runs inspect's ``react()`` agent with our ``search`` as an inspect tool over that question's
``Environment`` (the task's faults, seeds and turn limit: the same draws as an lm-eval run of
the question) and ``finish`` as its submit tool; our scorer scores the answer (EM, or
accuracy) and keeps the outcome, cost and recovery metrics and the trajectory in the
score's metadata, which ``fireact-eval results`` / ``report`` / ``gate`` read from the
``.eval`` log through inspect's own reader.
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task
from inspect_ai.agent import AgentSubmit, as_solver, react
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import Score, Target, accuracy, mean, scorer, stderr
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import ToolDef

from fireact_eval.catalog import FINISH, SEARCH, task_name
from fireact_eval.environment import Environment
from fireact_eval.task_environment import load_task, new_environment
from fireact_eval.tool_calls import tool_schemas
from fireact_eval.trajectory import Trajectory

__all__ = ["hotpotqa", "bamboogle", "strategyqa", "mmlu", "demo", "world", "fireact_task"]

TRAJECTORY = "fireact_trajectory"  # where a sample's trajectory travels to the scorer
_DESCRIBED = {s["function"]["name"]: s["function"] for s in tool_schemas([SEARCH])}
LIMIT_REACHED = "The turn limit is reached; give your answer with finish."


def _search_tool(env: Environment) -> ToolDef:
    async def search(query: str) -> str:
        if env.done:
            return LIMIT_REACHED
        observation = env.call(SEARCH, query)
        return f"{observation}\n({LIMIT_REACHED})" if env.done else str(observation)

    function = _DESCRIBED[SEARCH]
    return ToolDef(search, name=SEARCH, description=function["description"], parameters={
        "query": function["parameters"]["properties"]["query"]["description"]})


@solver
def fireact_agent(metadata: dict[str, Any], checked: Any) -> Solver:
    """inspect's ``react()`` over the sample's environment: ``search`` steps it, the submit
    tool (named ``finish``) answers; an answer after the turn limit is not taken (as in an
    lm-eval run, the episode ended without one)."""
    pools: dict = {}

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        doc = state.metadata["doc"]
        env = new_environment(checked.settings, str(metadata["dataset"]), doc,
                              str(state.sample_id), pools)
        agent = react(tools=[_search_tool(env)], submit=AgentSubmit(
            name=FINISH, description=_DESCRIBED[FINISH]["description"], answer_only=True))
        state = await as_solver(agent)(state, generate)
        if not env.done:
            env.call(FINISH, state.output.completion)
        state.metadata[TRAJECTORY] = env.trajectory.to_json()
        return state

    return solve


@scorer(metrics=[accuracy(), stderr(), mean()])
def fireact_scorer(metadata: dict[str, Any]) -> Any:
    """The dataset's scorer on the trajectory: its headline (EM or accuracy) as the value,
    every metric (F1, outcome, cost, recovery) and the trajectory in the metadata."""
    from fireact_eval.scoring import DATASET_SCORERS

    score_doc = DATASET_SCORERS[str(metadata["dataset"])]

    async def score(state: TaskState, target: Target) -> Score:
        response = state.metadata[TRAJECTORY]
        metrics = score_doc(state.metadata["doc"], [response])
        headline = score_doc.metrics[0]
        return Score(value=metrics[headline], answer=Trajectory.from_json(response).answer,
                     metadata={"metrics": metrics, "headline": headline,
                               "trajectory": response})

    return score


def fireact_task(dataset: str, **settings: Any) -> Task:
    """The inspect task of ``fireact_<dataset>`` (its variant's YAML when ``noise`` names a
    condition of the catalog is not needed: any setting is a parameter)."""
    overrides = {k: str(v) for k, v in settings.items()}
    metadata, checked, docs = load_task(task_name(dataset), overrides)
    samples = [Sample(input=str(doc["question"]), target=str(doc.get("answer", "")),
                      id=str(doc.get("id", i)), metadata={"doc": doc})
               for i, doc in enumerate(docs)]
    recorded = {**metadata, **checked.settings.as_metadata()}
    return Task(dataset=MemoryDataset(samples, name=task_name(dataset)),
                solver=fireact_agent(metadata, checked), scorer=fireact_scorer(metadata),
                metadata={"fireact": recorded},
                message_limit=4 * checked.settings.max_turns + 4)


def _dataset_task(dataset: str, what: str) -> Any:
    """The registered inspect task of one dataset, named after it (``fireact_eval/<name>``)."""

    def make(**settings: Any) -> Task:
        return fireact_task(dataset, **settings)

    make.__name__ = make.__qualname__ = dataset
    make.__doc__ = what
    return task(name=dataset)(make)


hotpotqa = _dataset_task("hotpotqa", "FireAct's HotpotQA (500 dev questions), on Wikipedia.")
bamboogle = _dataset_task("bamboogle", "Bamboogle (125 questions; held out in FireAct).")
strategyqa = _dataset_task("strategyqa", "StrategyQA (yes/no, accuracy).")
mmlu = _dataset_task("mmlu", "MMLU (multiple choice, accuracy).")
demo = _dataset_task("demo", "The offline demo's 36 fictional questions.")
world = _dataset_task("world", "The generated world's two-hop questions (1,174 test).")
