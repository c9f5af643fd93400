"""Oracle teachers: trajectories written by code from a question's supporting titles, for
the offline sets (the demo, the generated world), where no teacher model is needed.

The clean oracle searches each supporting title once and finishes with the gold answer.
Under a noisy tool (``noise``: the evaluation's own perturbation, seeded per question) it
reads what came back: an empty result, or one about something else, is followed by a
thought that says so and the same search again, until the passage it needs arrives.  A
model trained on those rows has seen a retry after ``None``; one trained on the clean rows
never has (the demo's fine-tuned agent answered every question after an empty result, all
wrong).
"""

from __future__ import annotations

from pathlib import Path

from fireact_eval.data.examples import Example, write_examples
from fireact_eval.errors import FireactError
from fireact_eval.jsonio import iter_jsonl
from fireact_eval.perturb import (
    TOOL_FAILED_PREFIX,
    Perturb,
    make_perturbation,
    no_noise,
    parse_noise,
)
from fireact_eval.tools import NULL_OBSERVATION, Search, make_search
from fireact_eval.transcript import parse_step

__all__ = ["ORACLES", "ORACLE_POOL_VERSION", "oracle_corpus", "oracle_example",
           "oracle_questions", "training_pool", "write_oracle_data"]

# oracle name -> (its dataset, the search spec its questions are answered with)
ORACLES = {"demo": ("demo", "local"), "world": ("world", "world")}
# tries of one search before the oracle gives the question up (p = 0.5: 1 in 16 fails)
MAX_TRIES = 4
# what noise=random draws from when the oracle writes rows: 2, the passages of the training
# questions alone (1 drew from the whole corpus: test passages reached 1,016 world rows)
ORACLE_POOL_VERSION = 2


def oracle_questions(name: str) -> Path:
    """The training questions an oracle writes trajectories for (with ``supporting``)."""
    if name == "demo":
        from fireact_eval.questions import DEMO_TRAIN_QUESTIONS

        return DEMO_TRAIN_QUESTIONS
    if name == "world":
        from fireact_eval.tools.world import world_folder

        return world_folder() / "train.jsonl"
    raise FireactError(f"unknown oracle {name!r}; valid: {', '.join(ORACLES)}")


def oracle_corpus(name: str) -> Path:
    """The passages an oracle's searches read (what its trajectories are made of)."""
    if name == "world":
        from fireact_eval.tools.world import world_folder

        return world_folder() / "corpus.jsonl"
    from fireact_eval.tools.local_search import DEMO_CORPUS

    oracle_questions(name)  # an unknown name is one line
    return DEMO_CORPUS


def oracle_example(question: dict, search: Search, task: str = "demo",
                   observe: Perturb = no_noise) -> Example | None:
    """The trajectory an oracle teacher writes: search each supporting passage by its title
    (again, after a result that is not that passage), then finish with the gold answer.
    None when a search still failed after ``MAX_TRIES``."""
    steps = []
    for title in question["supporting"]:
        thought = f"I need to search {title}."
        for _ in range(MAX_TRIES):
            step = parse_step(f"Thought: {thought}\nAction: search[{title}]")
            step.observation, fault = observe(search(title), len(steps) + 1, title)
            steps.append(step)
            if fault != "truncated" and step.observation.startswith(f"{title}:"):
                break
            thought = f"{noticed(step.observation, title, fault)} I need to search {title} again."
        else:
            return None
    answer = question["answer"]
    steps.append(parse_step(f"Thought: The answer is {answer}.\nAction: finish[{answer}]"))
    return Example(question["question"], steps, task, "react")


def noticed(observation: str, title: str, fault: str | None) -> str:
    """What the oracle says of a result that is not the passage it searched for, by what it
    sees (a model can learn to see the same)."""
    if observation == NULL_OBSERVATION:
        return "The search returned nothing."
    if observation.startswith(TOOL_FAILED_PREFIX):
        return "The search failed."
    if fault == "truncated":
        return f"The passage on {title} is cut off before its facts."
    other = observation.partition(": ")[0]
    if fault == "distractor" and other and other != observation:
        return f"That is about {other}, not {title}."
    return f"That is not about {title}."


def training_pool(questions: list[dict], search: Search) -> list[str]:
    """The wrong passages a noisy tool may show in training rows: the passages of the
    training questions themselves (each supporting title's search result), never the
    corpus' whole pool, which holds the test questions' passages (issue 45: a random draw
    from it put test facts into 1,016 of the world oracle's rows)."""
    titles = sorted({title for q in questions for title in q["supporting"]})
    return [found for title in titles if (found := search(title)).startswith(f"{title}:")]


def write_oracle_data(out: Path, name: str = "demo", noise: str = "off", noise_p: float = 0.5,
                      noise_seed: int = 0, fmt: str = "alpaca") -> int:
    """The oracle's trajectories for every training question, written to ``out``; the
    number written (a question whose searches kept failing under noise is left out)."""
    task, spec = ORACLES[name]
    search = make_search(spec)
    source = oracle_questions(name)
    rows = [row for _, row in iter_jsonl(source, f"the {name} oracle's questions")]
    spec = parse_noise(noise, noise_p)
    pool = training_pool(rows, search) if spec.has("random") else ()
    examples = []
    for i, row in enumerate(rows):
        observe = make_perturbation(spec, noise_p, noise_seed, str(row.get("id", i)), pool,
                                    tool=search)
        example = oracle_example(row, search, task, observe)
        if example is not None:
            examples.append(example)
    return write_examples(examples, out, fmt)
