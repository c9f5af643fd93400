"""Task prompts: the first context an agent sees, before its first ``Thought:``.

Few-shot prompts (for prompted agents) carry an instruction and worked examples from
``tasks/prompts/``; zero-shot prompts (for fine-tuned agents) are the bare question, as in
FireAct's fine-tuning data, so a fine-tuned model sees what it was trained on.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fireact_eval.errors import FireactError
from fireact_eval.tasks import TASKS_DIR

SHOTS = ("fewshot", "zeroshot")
PROMPTS_DIR = Path(TASKS_DIR) / "prompts"

REACT_INSTRUCTION = """\
Answer the question by interleaving Thought, Action and Observation steps. A Thought \
reasons about what is known so far. An Action is one of:
search[query]: searches for the query and returns the best-matching passage. If it does \
not contain the answer, try another query.
finish[answer]: gives the final answer, as short as possible, and ends the task.
Here are some examples.
"""


@cache
def load_examples(name: str) -> str:
    path = PROMPTS_DIR / f"{name}.txt"
    if not path.is_file():
        available = sorted(p.stem for p in PROMPTS_DIR.glob("*.txt"))
        raise FireactError(f"no few-shot prompt file {path}; available: {available}")
    return path.read_text(encoding="utf-8").strip()


def react_prompt(question: str, shots: str = "fewshot", examples: str = "react_fewshot") -> str:
    """The ReAct prompt for one question; the model continues with ``Thought: ...``."""
    if shots == "zeroshot":
        return f"{question.strip()}\n"
    if shots == "fewshot":
        return (
            f"{REACT_INSTRUCTION}\n{load_examples(examples)}\n(END OF EXAMPLES)\n\n"
            f"Question: {question.strip()}\n"
        )
    raise FireactError(f"unknown shots={shots!r}; valid values: {', '.join(SHOTS)}")
