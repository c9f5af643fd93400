"""Parse what a ReAct agent wrote in one turn: ``Thought: ...`` then ``Action: tool[argument]``.

Small models write sloppy actions, so parsing forgives case, spaces, a step number
(``Action 2:``), a missing closing ``]`` and trailing text; what it cannot read becomes
``None`` and the engine answers with an observation listing the valid actions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_BREAKS = re.compile("\r\n?|[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_LABEL = re.compile(r"^[ \t]*(thought|action|observation)(?:[ \t]*\d+)?[ \t]*:[ \t]*", re.I | re.M)
_CALL = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*\[(.*)$", re.S)


@dataclass(frozen=True)
class Action:
    """A tool call: ``name`` lower-cased, ``argument`` stripped."""

    name: str
    argument: str


@dataclass(frozen=True)
class ParsedTurn:
    """One generated turn: the thought, the action (None if unreadable) and the text kept.

    ``text`` is the generation cut after the action line, so a model that runs on and
    invents its own observation does not put that invention into the next prompt.
    """

    thought: str | None
    action: Action | None
    text: str


def unify_line_breaks(text: str) -> str:
    """Every line break a model may emit (``\\r\\n``, ``\\r``, U+2028, ...) as ``\\n``, so an
    action line ends where the model ended it."""
    return _LINE_BREAKS.sub("\n", text)


def parse_action(text: str) -> Action | None:
    """``"Action 1: Search [Paris ]"`` -> ``Action("search", "Paris")``; None if not a call.

    Only the first line counts.  The argument runs to the last ``]`` on it (so brackets
    inside an answer survive) or to the end of the line when the ``]`` is missing.
    """
    line = _LABEL.sub("", unify_line_breaks(text).strip(), count=1).split("\n", 1)[0]
    match = _CALL.match(line)
    if match is None:
        return None
    name, rest = match.groups()
    argument = rest[: rest.rindex("]")] if "]" in rest else rest
    return Action(name.lower(), argument.strip())


def parse_turn(generation: str) -> ParsedTurn:
    """Split one generated turn into thought and action.

    Without an ``Action:`` label, a last line that looks like ``tool[...]`` is taken as
    the action: fine-tuned small models often drop the label.
    """
    text = unify_line_breaks(generation).strip()
    invented = next((m for m in _LABEL.finditer(text) if m.group(1).lower() == "observation"),
                    None)
    if invented is not None:  # where the "\nObservation" stop string would have cut it
        text = text[: invented.start()].strip()
    labels = {m.group(1).lower(): m for m in reversed(list(_LABEL.finditer(text)))}
    action_label = labels.get("action")
    thought_label = labels.get("thought")
    if action_label is not None:
        action_line_end = text.find("\n", action_label.end())
        action_text = text[action_label.end() : None if action_line_end < 0 else action_line_end]
        kept = text if action_line_end < 0 else text[:action_line_end]
        thought_end = action_label.start()
    else:
        last_line = text.rsplit("\n", 1)[-1]
        action_text = last_line if _CALL.match(last_line) else ""
        kept = text
        thought_end = len(text) - len(last_line) if action_text else len(text)
    thought_before_action = thought_label is not None and thought_label.end() <= thought_end
    thought_start = thought_label.end() if thought_before_action else 0
    thought = text[thought_start:thought_end].strip() or None
    return ParsedTurn(thought=thought, action=parse_action(action_text), text=kept.strip())
