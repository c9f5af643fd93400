"""Task prompts: the first context an agent sees, before its first ``Thought:``.

A prompt is (method x shots x format).  Few-shot prompts, for prompted agents, carry the
method's instruction and worked examples from ``tasks/prompts/{method}_{family}.txt``
(written for this project); zero-shot prompts, for fine-tuned agents, are the bare question,
as in FireAct's fine-tuning data.  The format wraps it: ``plain`` (then the model writes
``Thought:``), ``chat`` (the user's first message) or ``alpaca`` (FireAct's template);
``tools`` is the user's first message too, with the instruction alone when few-shot (the
tool schemas the template renders say what each action does).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fireact_eval.catalog import METHODS, PROMPT_FORMATS, SHOTS
from fireact_eval.errors import FireactError
from fireact_eval.tasks import TASKS_DIR

PROMPTS_DIR = Path(TASKS_DIR) / "prompts"

_REACT = """\
Answer the question by interleaving Thought, Action and Observation steps. A Thought \
reasons about what is known so far. An Action is one of:
search[query]: searches for the query and returns the best-matching passage. If it does \
not contain the answer, try another query.
finish[answer]: gives the final answer, as short as possible, and ends the task.
"""
INSTRUCTIONS = {
    "react": _REACT,
    "reflexion": _REACT,
    "cot": "Answer the question. Reason step by step in one Thought, then give the answer, "
    "as short as possible, with Action: finish[answer].\n",
    "io": "Answer the question with Action: finish[answer], the answer as short as possible.\n",
}
# format=tools, few-shot: the instruction alone (the tool schemas say what each action does)
_TOOLS_REACT = ("Answer the question. Think about what you know so far, then call a tool: "
                "search to look something up (search again with another query if the passage "
                "does not hold the answer), finish with the answer, as short as possible.")
TOOLS_INSTRUCTIONS = {
    "react": _TOOLS_REACT,
    "reflexion": _TOOLS_REACT,
    "cot": "Answer the question. Reason step by step, then call finish with the answer, as "
           "short as possible.",
    "io": "Answer the question: call finish with the answer, as short as possible.",
}
# Reflexion's examples are ReAct's: the reflections are asked for at run time.
EXAMPLES_OF = {"react": "react", "reflexion": "react", "cot": "cot", "io": "io"}
ALPACA = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


def _check(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise FireactError(f"unknown {name}={value!r}; valid values: {', '.join(valid)}")


@cache
def load_examples(method: str, family: str) -> str:
    path = PROMPTS_DIR / f"{EXAMPLES_OF[method]}_{family}.txt"
    if not path.is_file():
        available = sorted(p.stem for p in PROMPTS_DIR.glob("*.txt"))
        raise FireactError(
            f"no few-shot examples for method={method} on {family} tasks ({path.name}); "
            f"available: {', '.join(available)}; or use shots=zeroshot"
        )
    return path.read_text(encoding="utf-8").strip()


def check_prompt(method: str, shots: str, fmt: str, family: str) -> None:
    """Fail before any model call on a bad combination, listing the valid values."""
    _check("method", method, METHODS)
    _check("shots", shots, SHOTS)
    _check("format", fmt, PROMPT_FORMATS)
    if shots == "fewshot" and fmt != "tools":
        load_examples(method, family)


def build_prompt(
    question: str, method: str = "react", shots: str = "fewshot", fmt: str = "plain",
    family: str = "qa",
) -> str:
    """The prompt for one question; the model continues with ``Thought:`` (or ``Action:``)."""
    check_prompt(method, shots, fmt, family)
    body = question.strip()
    if fmt == "tools":  # the schemas describe the actions; text examples would teach the
        # text grammar instead, so a prompted agent gets the instruction alone
        return f"{TOOLS_INSTRUCTIONS[method]}\n\nQuestion: {body}" if shots == "fewshot" \
            else body
    if shots == "fewshot":
        body = (f"{INSTRUCTIONS[method]}Here are some examples.\n\n"
                f"{load_examples(method, family)}\n(END OF EXAMPLES)\n\nQuestion: {body}")
    if fmt == "alpaca":
        return ALPACA.format(instruction=body)
    return body if fmt == "chat" else body + "\n"
