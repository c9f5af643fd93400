"""The ``tools`` layout: the agent's actions as native tool calls through the chat template.

The other layouts carry FireAct's 2022 text grammar (``Action: search[X]``).  Models trained
to call tools (Qwen, Llama 3.1+, Mistral, SmolLM3, any OpenAI-compatible server with a tool
parser) expect the tools declared as JSON schemas, a reply that carries a structured call and
the result coming back as a ``tool`` message.  Here a step is an assistant message whose text
is the thought and whose one tool call is the action; each call's result is a ``tool``
message; ``finish``'s argument is the answer.  A turn that calls nothing, calls an unknown
tool, holds malformed JSON or lacks the argument is an invalid action, as in every layout.

Rendering goes through the tokenizer's ``apply_chat_template(messages, tools=...)``: the
model's own template when it renders tools, or ``HERMES_TEMPLATE`` (shipped here, for models
without one, such as the offline SmolLM2).  Reading a reply goes through the tokenizer's
own reader where it has one (transformers' ``parse_response`` and a ``response_schema``),
else through the named parser of its convention (``PARSERS``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fireact_eval.catalog import FINISH, SEARCH
from fireact_eval.errors import FireactError
from fireact_eval.tasks import TASKS_DIR
from fireact_eval.trajectory import Step, Trajectory
from fireact_eval.transcript import (
    INVALID_ACTION_PREFIX,
    REFLECTION_REQUEST,
    parse_messages,
    turn_text,
)

__all__ = [  # the public API (docs/python-api.md)
    "HERMES_TEMPLATE",
    "PARSERS",
    "TOOL_ARGUMENTS",
    "ToolCall",
    "ToolLayout",
    "tool_schemas",
    "render_tool_messages",
    "parse_tool_messages",
    "tool_segments",
    "steps_segments",
    "tools_of",
    "openai_messages",
    "reply_text",
    "call_step",
    "invalid_call_observation",
    "resolve_layout",
    "tool_docstring",
]

# Each action's one argument, and what the schema tells the model about it.
TOOL_ARGUMENTS = {SEARCH: "query", FINISH: "answer"}
_DESCRIPTIONS = {
    SEARCH: ("Searches for the query and returns the best-matching passage. If it does not "
             "hold the answer, search again with another query.",
             "what to search for"),
    FINISH: ("Gives the final answer and ends the task.", "the answer, as short as possible"),
}


def tool_docstring(name: str) -> str:
    """A tool's description as a Google-style docstring, from which transformers'
    ``get_json_schema`` (what TRL and inspect read a Python tool by) rebuilds exactly its
    schema in ``tool_schemas``: a door whose tools are Python methods shows the model the
    words an evaluation shows it."""
    what, argument = _DESCRIPTIONS[name]
    return f"{what}\n\nArgs:\n    {TOOL_ARGUMENTS[name]}: {argument}\n"


def tool_schemas(tools: Sequence[str]) -> list[dict]:
    """The OpenAI-style function schemas of the episode's tools and ``finish``."""
    names = [*[t for t in tools if t != FINISH], FINISH]
    schemas = []
    for name in names:
        what, argument = _DESCRIPTIONS.get(name, (f"The {name} tool.", "its input"))
        parameter = TOOL_ARGUMENTS.get(name, "query")
        schemas.append({"type": "function", "function": {
            "name": name, "description": what,
            "parameters": {"type": "object",
                           "properties": {parameter: {"type": "string",
                                                      "description": argument}},
                           "required": [parameter]}}})
    return schemas


@dataclass(frozen=True)
class ToolCall:
    """One call as a reply carried it: the tool's name and its arguments (a JSON object)."""

    name: str
    arguments: dict[str, Any]


# ---------------------------------------------------------------- rendering


def _call_message(step: Step, call_id: str) -> dict[str, Any]:
    name = step.action or ""
    return {"role": "assistant", "content": step.thought or "", "tool_calls": [
        {"type": "function", "id": call_id,
         "function": {"name": name, "arguments": {TOOL_ARGUMENTS.get(name, "query"):
                                                  step.argument}}}]}


def render_tool_messages(prompt: str, steps: Sequence[Step], tools: Sequence[str],
                         reflect: bool = False,
                         call_id: Callable[[int, Step], str] | None = None,
                         ) -> list[dict[str, Any]]:
    """The question as the user's message; a turn that called a known tool as an assistant
    message with that call, its result as a ``tool`` message; a turn that did not (no call,
    malformed, unknown tool) as the assistant's own text, answered by a user message (there
    is no call to answer); a reflection asked for by ``REFLECTION_REQUEST``.  Call ids are
    the turn's number (the same steps render to the same messages), or ``call_id``'s (an
    API server's own ids, which it may check)."""
    known = {*tools, FINISH}
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    for number, step in enumerate(steps):
        if step.kind == "reflection":
            messages += [{"role": "user", "content": REFLECTION_REQUEST},
                         {"role": "assistant", "content": step.text}]
            continue
        if step.action in known and step.argument is not None:
            this_id = (call_id(number, step) if call_id else None) or f"call_{number}"
            messages.append(_call_message(step, this_id))
            if step.observation is not None:
                messages.append({"role": "tool", "tool_call_id": this_id,
                                 "name": step.action, "content": step.observation})
        else:
            messages.append({"role": "assistant", "content": step.text})
            if step.observation is not None:
                messages.append({"role": "user", "content": step.observation})
    if reflect:
        messages.append({"role": "user", "content": REFLECTION_REQUEST})
    return messages


def openai_messages(messages: Sequence[dict]) -> list[dict]:
    """``render_tool_messages``' conversation on the OpenAI chat API's wire, where a call's
    arguments travel as a JSON string (chat templates take the object itself) and a
    ``tool`` message carries its call's id and content alone (OpenAI's schema has no
    ``name`` there; chat templates read it)."""
    wire = []
    for m in messages:
        if m.get("tool_calls"):
            m = {**m, "tool_calls": [
                {**c, "function": {**c["function"], "arguments": json.dumps(
                    c["function"]["arguments"], ensure_ascii=False)}} for c in m["tool_calls"]]}
        elif m.get("role") == "tool":
            m = {k: v for k, v in m.items() if k != "name"}
        wire.append(m)
    return wire


# Between a served reply's content and its structured calls in the turn's text: what comes
# before it is the thought, never read for calls; what follows is the server's calls.
SERVED_CALLS = "\n<|tool_calls|>"


def reply_text(message: Mapping[str, Any]) -> str:
    """An OpenAI-style assistant reply (``choices[i].message``) as one turn's text: its
    content, then, after ``SERVED_CALLS``, each structured call as Hermes writes it
    (``<tool_call>{"name", "arguments", "id"}</tool_call>``), so an API turn is cached,
    logged and parsed like a local one, and ``parse_served`` takes the calls from the
    structured part alone (a ``<tool_call>`` the content mentions is thought, not action).
    Arguments stay as the server sent them: a JSON string that is not JSON is a malformed
    call when it is read.  The server's call id is kept: it is sent back unchanged."""
    text = str(message.get("content") or "")
    calls = message.get("tool_calls") or []
    if calls:
        text += SERVED_CALLS
    for call in calls:
        function = call.get("function", call) if isinstance(call, dict) else {}
        served_id = call.get("id") if isinstance(call, dict) else None
        text += "\n<tool_call>" + json.dumps(
            {"name": function.get("name"), "arguments": function.get("arguments"),
             **({"id": served_id} if served_id else {})}, ensure_ascii=False) + "</tool_call>"
    return text


def parse_served(text: str) -> tuple[str, list[ToolCall]]:
    """An API turn's text (``reply_text``): the content, and the server's structured calls
    when it sent any; a reply without them (a server with no tool parser writes calls into
    its content, or a turn cached before ``SERVED_CALLS``) is read as Hermes text."""
    content, marker, calls = text.partition(SERVED_CALLS.strip())
    if not marker:
        return parse_hermes(text)
    return content.strip(), parse_hermes(calls)[1]


def served_call_id(step: Step) -> str | None:
    """The id the server gave the call a step ran (``reply_text`` keeps it), if any."""
    _, marker, calls = step.text.partition(SERVED_CALLS.strip())
    body = _HERMES.search(calls) if marker else None
    try:
        found = json.loads(body.group(1)) if body else None
    except json.JSONDecodeError:
        return None
    return found.get("id") if isinstance(found, dict) and isinstance(found.get("id"), str) \
        else None


def tools_of(steps: Sequence[Step]) -> list[str]:
    """The tools a training row declares: those its turns called (``finish`` always)."""
    return sorted({s.action for s in steps if s.action and s.action != FINISH
                   and s.argument is not None})


def parse_tool_messages(messages: Sequence[dict]) -> tuple[list[dict], Trajectory]:
    """A ``tools`` conversation (``render_tool_messages``' layout, or any in OpenAI's / HF's
    tool-calling form) as the messages before the agent's first turn and the steps, each
    turn in the grammar's own text (``turn_text``), so a row converts to any layout."""
    return parse_messages(messages, read_turn=_message_step)


def _message_step(message: dict) -> Step:
    """An assistant message with its (first) tool call as a step in the grammar's text."""
    content = str(message.get("content") or "").strip()
    calls = message.get("tool_calls") or []
    try:
        call = _call(calls[0].get("function", calls[0])) if calls else None
    except MalformedCall:
        call = None
    name = call.name.strip().lower() if call else None
    value = call.arguments.get(TOOL_ARGUMENTS.get(name, "query")) if call else None
    if not name or value is None:
        return Step(text=content, thought=content or None, action=None, argument=None)
    thought = content or None
    return Step(text=turn_text(thought, name, str(value).strip()), thought=thought,
                action=name, argument=str(value).strip())


def tool_segments(row: dict, tokenizer: Any, template: str | None) -> list[tuple[str, bool]]:
    """A ``tools`` training row as (text, trained) segments (``steps_segments`` of its
    parsed turns, with the row's own schemas).  ``template``: None for the tokenizer's own."""
    prompt, trajectory = parse_tool_messages(row["messages"])
    if not trajectory.steps:
        return []
    question = str(prompt[-1].get("content", "")) if prompt else ""
    tools = tools_of(trajectory.steps)
    return steps_segments(question, trajectory.steps, tools, tokenizer, template,
                          schemas=row.get("tools") or tool_schemas(tools))


def steps_segments(question: str, steps: Sequence[Step], tools: Sequence[str], tokenizer: Any,
                   template: str | None, schemas: list[dict] | None = None,
                   ) -> list[tuple[str, bool]]:
    """An agent's steps from ``question`` as (text, trained) segments: the conversation
    rendered through the chat template with the tool schemas, trained on exactly what the
    template's ``{% generation %}`` marks say the assistant wrote (its thoughts, calls and
    end-of-turn tokens; never the schemas, the question or a tool's result).  The SFT rows'
    mask and GRPO's rollouts' alike."""
    from transformers.utils.chat_template_utils import render_jinja_template

    messages = render_tool_messages(question, steps, tools)
    chat_template = template or getattr(tokenizer, "chat_template", None)
    if not chat_template:
        raise FireactError("the base model has no chat template; train tools rows with "
                           "--tool-template hermes")
    [text], [spans] = render_jinja_template(
        [messages], tools=schemas or tool_schemas(tools), chat_template=chat_template,
        return_assistant_tokens_mask=True, **tokenizer.special_tokens_map)
    if not spans:
        raise FireactError("the base model's chat template marks no assistant turns "
                           "({% generation %}), so the loss cannot be put on them; train "
                           "with --tool-template hermes (the shipped template marks them)")
    segments, at = [], 0
    for start, end in spans:
        segments += [(text[at:start], False), (text[start:end], True)]
        at = end
    segments.append((text[at:].removesuffix("\n"), False))
    return [(piece, trained) for piece, trained in segments if piece]


# ---------------------------------------------------------------- parsing

class MalformedCall(ValueError):
    """A reply that tried to call a tool and failed (bad JSON, no name)."""


def _call(value: Any, arguments_key: str = "arguments") -> ToolCall:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise MalformedCall("a tool call is a JSON object with a name")
    arguments = value.get(arguments_key, value.get("arguments", value.get("parameters", {})))
    if isinstance(arguments, str):  # OpenAI's wire form: the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as err:
            raise MalformedCall(f"arguments are not JSON ({err.msg})") from None
    if not isinstance(arguments, dict):
        raise MalformedCall("a tool call's arguments are a JSON object")
    return ToolCall(value["name"], arguments)


def check_row_calls(row: Mapping[str, Any], where: str) -> None:
    """A tools training row's calls against its own schemas: each one well-formed (a name,
    arguments a JSON object), of a tool the row defines, with the arguments its schema
    names (and those it requires).  A row that fails would train a turn without its call,
    or a call to a tool no agent has (issue 45): one line naming ``where``, never trained."""
    schemas = {}
    for schema in row.get("tools") or []:
        function = schema.get("function", schema) if isinstance(schema, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise FireactError(f"{where}: a 'tools' entry without a function name")
        schemas[function["name"]] = function.get("parameters") or {}
    for j, message in enumerate(row.get("messages") or []):
        for call in (message.get("tool_calls") or []) if isinstance(message, dict) else []:
            try:
                parsed = _call(call.get("function", call) if isinstance(call, dict) else call)
            except MalformedCall as err:
                raise FireactError(f"{where}, message {j}: malformed tool call ({err})") from None
            if parsed.name not in schemas:
                raise FireactError(f"{where}, message {j}: calls {parsed.name!r}, which the "
                                   f"row's tools do not define ({', '.join(schemas)})")
            properties = schemas[parsed.name].get("properties") or {}
            unknown = sorted(set(parsed.arguments) - set(properties))
            missing = sorted(set(schemas[parsed.name].get("required") or [])
                             - set(parsed.arguments))
            if unknown or missing:
                raise FireactError(
                    f"{where}, message {j}: {parsed.name} called with "
                    + (f"unknown argument(s) {', '.join(unknown)}" if unknown else
                       f"no {', '.join(missing)}")
                    + f" (its schema: {', '.join(properties) or 'no arguments'})")


_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def parse_hermes(text: str) -> tuple[str, list[ToolCall]]:
    """Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``."""
    start = text.find("<tool_call>")
    if start < 0:
        return text.strip(), []
    calls = []
    for body in _HERMES.findall(text[start:]):
        try:
            calls.append(_call(json.loads(body)))
        except json.JSONDecodeError as err:
            raise MalformedCall(f"not JSON ({err.msg})") from None
    return text[:start].strip(), calls


def _json_values(text: str) -> list[Any]:
    """Every JSON object in ``text``, in order (Llama 3 separates calls by ``;``)."""
    decoder, values, at = json.JSONDecoder(), [], text.find("{")
    while at >= 0:
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as err:
            raise MalformedCall(f"not JSON ({err.msg})") from None
        values.append(value)
        at = text.find("{", end)
    return values


def parse_llama3(text: str) -> tuple[str, list[ToolCall]]:
    """Llama 3.1+: a JSON object ``{"name": ..., "parameters": {...}}`` (after an optional
    ``<|python_tag|>``), calls separated by ``;``."""
    body = text.split("<|python_tag|>", 1)
    content, rest = (body[0], body[1]) if len(body) == 2 else ("", text)
    start = rest.find("{")
    if start < 0:
        return text.strip(), []
    content = (content + rest[:start]).strip()
    return content, [_call(v, "parameters") for v in _json_values(rest[start:])]


def parse_mistral(text: str) -> tuple[str, list[ToolCall]]:
    """Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]`` (v3), or
    ``[TOOL_CALLS]name[ARGS]{...}`` (v11+)."""
    start = text.find("[TOOL_CALLS]")
    if start < 0:
        return text.strip(), []
    content, calls = text[:start].strip(), []
    for chunk in text[start:].split("[TOOL_CALLS]")[1:]:
        chunk = chunk.strip()
        if "[ARGS]" in chunk:
            name, _, arguments = chunk.partition("[ARGS]")
            try:
                calls.append(_call({"name": name.strip(), "arguments": json.loads(arguments)}))
            except json.JSONDecodeError as err:
                raise MalformedCall(f"not JSON ({err.msg})") from None
            continue
        try:
            value = json.loads(chunk)
        except json.JSONDecodeError as err:
            raise MalformedCall(f"not JSON ({err.msg})") from None
        calls += [_call(v) for v in (value if isinstance(value, list) else [value])]
    return content, calls


Parser = Callable[[str], tuple[str, list[ToolCall]]]
PARSERS: dict[str, Parser] = {"hermes": parse_hermes, "llama3": parse_llama3,
                              "mistral": parse_mistral}


def invalid_call_observation(step: Step, tools: Mapping[str, Any],
                             parse: Parser | None = None) -> str:
    """What an agent that called no known tool is told, in the tools' own terms (the
    prefix is the text grammar's, which the report and outcome classes read); with the
    layout's ``parse``, a call that could not be read is told as malformed, not absent."""
    valid = ", ".join(f"{name}({TOOL_ARGUMENTS.get(name, 'query')})"
                      for name in [*tools, FINISH])
    wrote = ("called no tool" if not step.action else f"called {step.action}"
             + ("" if step.argument is not None else " without its argument"))
    if not step.action and parse is not None:
        try:
            parse(step.text)
        except MalformedCall as err:
            wrote = f"made a malformed call ({err})"
    return f"{INVALID_ACTION_PREFIX} you {wrote}. Call one of: {valid}."


def call_step(generation: str, parse: Parser) -> Step:
    """One generated turn as a step: the text before the call is the thought, the first
    call the action (a turn runs one; the report shows the rest in the step's text).  What
    cannot be read is an action of ``None``, as in the text grammar; a known tool without its
    argument keeps its name with no argument (the engine tells the agent so)."""
    text = generation.strip()
    try:
        content, calls = parse(text)
    except MalformedCall:
        return Step(text=text, thought=None, action=None, argument=None)
    content = re.sub(r"^\s*thought\s*:\s*", "", content, flags=re.I) or None
    if not calls:
        return Step(text=text, thought=content, action=None, argument=None)
    call = calls[0]
    name = call.name.strip().lower()
    value = call.arguments.get(TOOL_ARGUMENTS.get(name, ""))
    if value is None and name not in TOOL_ARGUMENTS:  # an unknown tool: shown by its input
        value = next((v for v in call.arguments.values() if isinstance(v, str)), "")
    argument = None if value is None else str(value).strip()
    return Step(text=text, thought=content, action=name, argument=argument)


# ---------------------------------------------------------------- a tokenizer's layout

# The shipped Hermes-style template (tasks/chat_templates/hermes_tools.jinja: what it renders
# and why is in its header), for models whose own template renders no tools.
TOOL_TEMPLATE_FILES = {"hermes": Path(TASKS_DIR) / "chat_templates" / "hermes_tools.jinja"}
HERMES_TEMPLATE = TOOL_TEMPLATE_FILES["hermes"].read_text(encoding="utf-8")

TOOL_TEMPLATES = ("model", "hermes")
TOOL_PARSERS = ("auto", *PARSERS)


@dataclass(frozen=True)
class ToolLayout:
    """How one tokenizer speaks tools: the template that renders them and the reader of its
    replies."""

    template: str | None  # None: the tokenizer's own
    parse: Parser
    parser_name: str

    def render(self, tokenizer: Any, prompt: str, steps: Sequence[Step], reflect: bool = False,
               *, tools: Sequence[str]) -> str:
        """The context of the next turn, schemas included (so cost metrics count them)."""
        return tokenizer.apply_chat_template(
            render_tool_messages(prompt, steps, tools, reflect), tools=tool_schemas(tools),
            chat_template=self.template, tokenize=False, add_generation_prompt=True)

    def segments(self, tokenizer: Any, prompt: str, steps: Sequence[Step], *,
                 tools: Sequence[str]) -> list[tuple[str, bool]]:
        """What ``render`` showed the model and what it wrote, as (text, trained) segments
        (``steps_segments`` through this layout's template): a GRPO rollout's loss mask."""
        return steps_segments(prompt, steps, tools, tokenizer, self.template)

    def apply(self, episode: Any, tokenizer: Any) -> None:
        """An engine episode (``rollout.Episode``) in this layout: rendered through
        ``tokenizer``'s template with its tools, its replies read by this parser, an invalid
        call answered in the tools' terms.  Evaluation's and GRPO's rollouts alike."""
        episode.render = partial(self.render, tokenizer, tools=list(episode.tools))
        episode.parse = partial(call_step, parse=self.parse)
        episode.invalid = partial(invalid_call_observation, parse=self.parse)


def _schema_parser(tokenizer: Any) -> Parser:
    """transformers' own reader, from the tokenizer's response schema."""
    def parse(text: str) -> tuple[str, list[ToolCall]]:
        try:
            message = tokenizer.parse_response(text)
        except Exception as err:  # the schema's reader failed on what the model wrote
            raise MalformedCall(str(err)) from None
        calls = [_call(c.get("function", c)) for c in message.get("tool_calls") or []]
        return str(message.get("content") or ""), calls

    return parse


def resolve_layout(tokenizer: Any, template: str = "model", parser: str = "auto",
                   model: str = "the model") -> ToolLayout:
    """The tokenizer's tool layout, or one line saying why it has none: ``template``:
    ``model`` (its own, which must render tools) or ``hermes`` (``HERMES_TEMPLATE``);
    ``parser``: ``auto`` (the tokenizer's response schema, else the convention its template
    writes) or a name in ``PARSERS``."""
    if template not in TOOL_TEMPLATES:
        raise FireactError(f"tool_template={template!r}; valid: {', '.join(TOOL_TEMPLATES)}")
    if parser not in TOOL_PARSERS:
        raise FireactError(f"tool_parser={parser!r}; valid: {', '.join(TOOL_PARSERS)}")
    own = getattr(tokenizer, "chat_template", None) or ""
    if template == "model" and "tools" not in own:
        raise FireactError(f"format=tools: {model}'s chat template renders no tools; pass "
                           "tool_template=hermes in --metadata (the shipped Hermes-style "
                           "template) or use a tool-calling model")
    chosen = HERMES_TEMPLATE if template == "hermes" else None
    if parser != "auto":
        return ToolLayout(chosen, PARSERS[parser], parser)
    if chosen is None and getattr(tokenizer, "response_schema", None):
        return ToolLayout(None, _schema_parser(tokenizer), "response_schema")
    written = chosen or own
    for marker, name in (("<tool_call>", "hermes"), ("[TOOL_CALLS]", "mistral"),
                         ("<|python_tag|>", "llama3"), ("ipython", "llama3")):
        if marker in written:
            return ToolLayout(chosen, PARSERS[name], name)
    raise FireactError(f"format=tools: cannot tell how {model} writes a tool call (no "
                       "response schema, no known convention in its template); pass "
                       f"tool_parser= one of {', '.join(PARSERS)} in --metadata")

