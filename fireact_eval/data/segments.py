"""A training row as the trainer sees it: segments of text, each marked trainable or not.

Each row is parsed into steps by the one transcript grammar (``fireact_eval.transcript``)
and rendered back exactly as evaluation renders it: what the agent generates when it runs
(its Thought/Action turns, its reflections) is trainable; the prompt, the template and every
observation are context.  Alpaca rows get FireAct's template; chat rows the base model's
chat template.  ``data stats`` measures these segments and ``trainers`` tokenizes them: the
data layer owns them, so the trainer imports data and data never imports the trainer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fireact_eval.data import examples
from fireact_eval.errors import FireactError
from fireact_eval.prompts import ALPACA
from fireact_eval.tool_calls import check_row_calls, tool_segments
from fireact_eval.trajectory import Step
from fireact_eval.transcript import parse_messages, parse_transcript, render_messages, text_spans

Segments = list[tuple[str, bool]]  # (text, trainable)


def read_layout(path: str | Path) -> tuple[list[dict], str]:
    """The rows of a data file and its format, ``chat``, ``tools`` or ``alpaca``."""
    rows = examples.read_rows(path)
    if not rows:
        raise FireactError(f"{path}: no training rows")
    formats = set()
    for i, row in enumerate(rows):
        fmt = examples.row_format(row)
        if fmt == "chat" and any(isinstance(m, dict) and m.get("tool_calls")
                                 for m in row["messages"]):
            raise FireactError(f"{path}, row {i}: its messages carry tool_calls but the row "
                               "has no 'tools' (the schemas): a tools row needs both, or "
                               "its calls would be dropped")
        if fmt == "tools":
            check_row_calls(row, f"{path}, row {i}")
        if fmt is None or fmt == "alpaca" and "instruction" not in row:
            raise FireactError(
                f"{path}, row {i}: neither chat ({{'messages': [...]}}), tools ({{'messages': "
                "[...], 'tools': [...]}}) nor alpaca ({'instruction', 'input', 'output'})"
            )
        formats.add(fmt)
    if len(formats) > 1:
        raise FireactError(f"{path}: mixes {' and '.join(sorted(formats))} rows; use one "
                           "format per file")
    return rows, formats.pop()


def _segments(spans: Iterable[tuple[str, bool]]) -> Segments:
    """Spans without empty ones and without the separator after the last turn (evaluation
    stops there: the model's own end of sequence follows it)."""
    segments = [(text, trainable) for text, trainable in spans if text]
    if segments and segments[-1] == ("\n", False):
        segments.pop()
    return segments


def alpaca_segments(row: dict) -> Segments:
    """FireAct's template around the question as context, then the parsed turns; empty
    when the output has no turn to parse."""
    instruction = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
    return rollout_segments(ALPACA.format(instruction=instruction),
                            parse_transcript(row["output"]).steps)


def rollout_segments(prompt: str, steps: Sequence[Step]) -> Segments:
    """A text prompt and the steps an agent took from it, as a training row of them is
    segmented (GRPO's loss mask is the SFT loss's)."""
    return _segments(text_spans(prompt, steps))


def chat_segments(row: dict, tokenizer: Any) -> Segments:
    """The parsed turns re-rendered as chat messages through the base model's template.
    Of each assistant message, the header the template opens it with is context (at
    evaluation the generation prompt supplies it) and the rest, its text and closing
    token, is trained.  Empty when no assistant message holds a turn."""
    prompt, trajectory = parse_messages(row["messages"])
    if not trajectory.steps:
        return []
    messages = render_messages(prompt, trajectory.steps)
    segments: Segments = []
    previous = ""

    def extend(rendered: str, trainable: bool) -> None:
        nonlocal previous
        if not rendered.startswith(previous):
            raise FireactError("the base model's chat template is not prefix-stable; "
                               "convert the data to alpaca format instead")
        segments.append((rendered[len(previous):], trainable))
        previous = rendered

    for i, message in enumerate(messages):
        assistant = message["role"] == "assistant"
        if assistant:
            extend(tokenizer.apply_chat_template(messages[:i], tokenize=False,
                                                 add_generation_prompt=True), False)
        extend(tokenizer.apply_chat_template(messages[: i + 1], tokenize=False), assistant)
    return [(text, trainable) for text, trainable in segments if text]


def row_segments(row: dict, fmt: str, tokenizer: Any, tool_template: str | None = None
                 ) -> Segments:
    """One row's segments in its layout: alpaca, chat, or tools (through the chat template's
    assistant marks; ``tool_template`` None: the tokenizer's own)."""
    if fmt == "alpaca":
        return alpaca_segments(row)
    if fmt == "tools":
        return tool_segments(row, tokenizer, tool_template)
    return chat_segments(row, tokenizer)
