"""The ``tools`` layout (issue 36): tool schemas, tool messages, the call parsers of the common
conventions, the shipped Hermes template, and the engine running native calls under noise
exactly as it runs the text grammar."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.utils.chat_template_utils import render_jinja_template

from fireact_eval.errors import FireactError
from fireact_eval.rollout import Episode, run_episodes
from fireact_eval.rollout_settings import RolloutSettings
from fireact_eval.tool_calls import (
    HERMES_TEMPLATE,
    PARSERS,
    call_step,
    invalid_call_observation,
    render_tool_messages,
    resolve_layout,
    tool_schemas,
)
from fireact_eval.tools import make_search
from fireact_eval.trajectory import PERTURBED, Step
from fireact_eval.transcript import render_text

hermes = PARSERS["hermes"]


def hermes_call(name: str, **arguments: str) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


@pytest.mark.parametrize(("reply", "parser", "thought", "action", "argument"), [
    (f"I look it up.\n{hermes_call('search', query='Ilse Brandauer')}", "hermes",
     "I look it up.", "search", "Ilse Brandauer"),
    (hermes_call("finish", answer=" Kettwick "), "hermes", None, "finish", "Kettwick"),
    ('<tool_call>\n{"name": "search", "arguments": "{\\"query\\": \\"x\\"}"}\n</tool_call>',
     "hermes", None, "search", "x"),  # the arguments as a JSON string (OpenAI's wire form)
    ('Thought: hm <tool_call>{"name": "search", "arguments": {"query": "a"}}', "hermes",
     "hm", "search", "a"),  # no closing tag, a text label before it
    ('<|python_tag|>{"name": "search", "parameters": {"query": "Oslo"}}', "llama3", None,
     "search", "Oslo"),
    ('So: {"name": "finish", "parameters": {"answer": "4"}}', "llama3", "So:", "finish", "4"),
    ('[TOOL_CALLS][{"name": "search", "arguments": {"query": "Rome"}}]', "mistral", None,
     "search", "Rome"),
    ('ok[TOOL_CALLS]finish[ARGS]{"answer": "7"}', "mistral", "ok", "finish", "7"),
])
def test_each_convention_reads_thought_and_call(reply, parser, thought, action, argument):
    step = call_step(reply, PARSERS[parser])
    assert (step.thought, step.action, step.argument) == (thought, action, argument)
    assert step.text == reply.strip()  # the report shows what the model wrote


@pytest.mark.parametrize(("reply", "action", "argument"), [
    ("The answer is Paris.", None, None),  # no call at all
    ("<tool_call>\n{\"name\": \"search\", \"arguments\": {\"query\": \n</tool_call>", None,
     None),  # malformed JSON
    ('<tool_call>["search"]</tool_call>', None, None),  # JSON, but no call
    (hermes_call("lookup", term="x"), "lookup", "x"),  # an unknown tool, shown by its input
    (hermes_call("search", q="x"), "search", None),  # the argument missing
])
def test_what_cannot_be_run_is_an_invalid_action_never_a_crash(reply, action, argument):
    step = call_step(reply, hermes)
    assert (step.action, step.argument) == (action, argument)


def test_two_calls_in_one_message_run_the_first():
    reply = f"{hermes_call('search', query='a')}\n{hermes_call('search', query='b')}"
    assert call_step(reply, hermes).argument == "a"


def test_the_schemas_declare_search_and_finish_with_their_one_argument():
    schemas = tool_schemas(["search"])
    assert [s["function"]["name"] for s in schemas] == ["search", "finish"]
    assert [s["function"]["parameters"]["required"] for s in schemas] == [["query"],
                                                                           ["answer"]]
    assert [s["function"]["name"] for s in tool_schemas([])] == ["finish"]  # CoT, IO


def _render(steps, tools=("search",)):
    messages = render_tool_messages("Where was Ilse Brandauer born?", steps, list(tools))
    return render_jinja_template([messages], tools=tool_schemas(list(tools)),
                                 chat_template=HERMES_TEMPLATE,
                                 return_assistant_tokens_mask=True)


_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40)
_thought = _text.map(str.strip).filter(
    lambda t: t and "<tool_call>" not in t and not t.lower().startswith("thought"))
_argument = _text.map(str.strip).filter(bool)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), _thought), _argument, _text), min_size=1,
                max_size=4), st.one_of(st.none(), _thought), _argument)
def test_a_trajectory_rendered_by_the_template_parses_back_to_the_same_steps(
        searches, last_thought, answer):
    """Every assistant turn the shipped template renders (the spans its generation marks,
    less the end-of-turn token) is read back by the Hermes parser as the step it was."""
    steps = [Step(text="", thought=t, action="search", argument=a, observation=o.strip() or "x")
             for t, a, o in searches]
    steps.append(Step(text="", thought=last_thought, action="finish", argument=answer))
    [text], [spans] = _render(steps)
    assert len(spans) == len(steps)
    for step, (start, end) in zip(steps, spans, strict=True):
        turn = text[start:end].removesuffix("<|im_end|>")
        again = call_step(turn, hermes)
        assert (again.thought, again.action, again.argument) == (
            step.thought, step.action, step.argument)


def test_a_turn_without_a_call_is_its_own_text_answered_by_the_user():
    bad = Step(text="I think it is Paris.", thought=None, action=None, argument=None,
               observation="Invalid action: you called no tool.")
    messages = render_tool_messages("Q?", [bad], ["search"])
    assert messages[1:] == [{"role": "assistant", "content": "I think it is Paris."},
                            {"role": "user", "content": "Invalid action: you called no tool."}]


def scripted(replies: list[str]):
    """One episode's generations, in order."""
    remaining = iter(replies)
    return lambda requests: [next(remaining) for _ in requests]


def _tools_episode(episode: Episode) -> Episode:
    episode.render = lambda prompt, steps, reflect: render_tool_messages(
        prompt, steps, list(episode.tools), reflect)
    episode.parse = lambda generation: call_step(generation, hermes)
    episode.invalid = invalid_call_observation
    return episode


def test_the_engine_runs_native_calls_and_counts_an_invalid_one():
    episode = _tools_episode(Episode("Where was Ilse Brandauer born?",
                                     {"search": make_search("local")}, max_turns=4))
    [traj] = run_episodes([episode], scripted([
        hermes_call("lookup", term="Ilse"),  # an unknown tool
        "I search.\n" + hermes_call("search", query="Ilse Brandauer"),
        hermes_call("finish", answer="Kettwick")]), progress=False)
    assert traj.finished and traj.answer == "Kettwick"
    assert (traj.turns, traj.tool_calls, traj.invalid_actions) == (3, 1, 1)
    assert traj.steps[0].observation == ("Invalid action: you called lookup. Call one of: "
                                         "search(query), finish(answer).")
    assert "born in Kettwick" in traj.steps[1].observation


@pytest.mark.parametrize(("noise", "persist"), [
    ("random", "transient"), ("none:0.1+error:0.2+distractor:0.2+truncated:0.2", "transient"),
    ("distractor", "permanent")])
def test_noise_draws_the_same_perturbations_in_the_tools_layout_as_in_plain_text(noise,
                                                                                 persist):
    """Same seeds, same draws: the tool message content is perturbed exactly as the
    observation of the text grammar, for every fault kind and persistence."""
    settings_ = RolloutSettings(search="local", noise=noise, noise_p=0.5, noise_seed=3,
                                max_turns=6, noise_persist=persist)
    queries = ["Ilse Brandauer", "Kettwick", "Velmora Observatory", "Saltmere", "Harbin"]
    plain_turns = [f"Action: search[{q}]" for q in queries] + ["Action: finish[x]"]
    tool_turns = [hermes_call("search", query=q) for q in queries] + [
        hermes_call("finish", answer="x")]
    runs = {}
    for name, turns in (("plain", plain_turns), ("tools", tool_turns)):
        episode = settings_.episode("Q?", {}, "doc-7", {})
        if name == "tools":
            _tools_episode(episode)
        else:
            episode.render = render_text
        [traj] = run_episodes([episode], scripted(turns), progress=False)
        runs[name] = [(s.mark, s.fault, s.observation) for s in traj.steps]
    assert runs["tools"] == runs["plain"]
    assert any(mark == PERTURBED for mark, _, _ in runs["plain"])


def test_a_tokenizer_without_a_tool_template_or_parser_is_one_line():
    class NoTools:
        chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"

    with pytest.raises(FireactError, match="renders no tools; pass tool_template=hermes"):
        resolve_layout(NoTools(), model="tiny")
    assert resolve_layout(NoTools(), "hermes").parser_name == "hermes"

    class UnknownConvention:
        chat_template = "{% for t in tools %}{{ t }}{% endfor %}"

    with pytest.raises(FireactError, match="cannot tell how tiny writes a tool call"):
        resolve_layout(UnknownConvention(), model="tiny")
    assert resolve_layout(UnknownConvention(), parser="mistral").parser_name == "mistral"


# ---------------------------------------------------------------- data and SFT

def _example():
    from fireact_eval.data.examples import Example

    steps = [Step(text="", thought="I search her.", action="search", argument="Ilse Brandauer",
                  observation="Ilse Brandauer was born in Kettwick."),
             Step(text="", thought=None, action="finish", argument="Kettwick")]
    return Example("Where was Ilse Brandauer born?", steps, "demo", "react")


def test_a_tools_row_is_messages_and_schemas_and_reads_back_to_the_same_steps(tmp_path):
    from fireact_eval.data.examples import from_row, read_examples, to_row, write_examples
    from fireact_eval.data.segments import read_layout

    row = to_row(_example(), "tools")
    assert [m["role"] for m in row["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert row["messages"][1]["tool_calls"][0]["function"] == {
        "name": "search", "arguments": {"query": "Ilse Brandauer"}}
    assert row["messages"][2]["tool_call_id"] == row["messages"][1]["tool_calls"][0]["id"]
    assert [t["function"]["name"] for t in row["tools"]] == ["search", "finish"]
    again = from_row(json.loads(json.dumps(row)), "row 0")
    assert [(s.thought, s.action, s.argument, s.observation) for s in again.steps] == [
        (s.thought, s.action, s.argument, s.observation) for s in _example().steps]
    assert again.steps[0].text == "Thought: I search her.\nAction: search[Ilse Brandauer]"
    out = tmp_path / "tools.jsonl"
    write_examples([_example()], out, "tools")
    assert read_layout(out)[1] == "tools" and read_examples(out)[0][0].task == "demo"


class TemplateOnly:
    """What ``tool_segments`` asks of a tokenizer: its template and special tokens."""

    chat_template = None
    special_tokens_map: dict = {}


def test_sft_trains_exactly_the_assistant_turns_of_a_tools_row():
    """The loss falls on what the template's generation marks say the assistant wrote:
    each turn's thought and call and its end-of-turn token; never the schemas, the question
    or the tool's result."""
    from fireact_eval.data.examples import to_row
    from fireact_eval.tool_calls import tool_segments

    segments = tool_segments(to_row(_example(), "tools"), TemplateOnly(), HERMES_TEMPLATE)
    trained = [text for text, on in segments if on]
    assert trained == [
        'I search her.\n<tool_call>\n{"name": "search", "arguments": {"query": '
        '"Ilse Brandauer"}}\n</tool_call><|im_end|>',
        '<tool_call>\n{"name": "finish", "arguments": {"answer": "Kettwick"}}\n'
        '</tool_call><|im_end|>']
    context = "".join(text for text, on in segments if not on)
    assert "<tools>" in context and "Ilse Brandauer was born in Kettwick." in context
    assert context.endswith("<|im_start|>assistant\n")  # evaluation's generation prompt


def test_a_template_that_marks_no_assistant_turn_is_one_line():
    from fireact_eval.data.examples import to_row
    from fireact_eval.tool_calls import tool_segments

    unmarked = TemplateOnly()
    unmarked.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    with pytest.raises(FireactError, match=r"marks no assistant turns .* --tool-template hermes"):
        tool_segments(to_row(_example(), "tools"), unmarked, None)


def test_the_tiny_agent_trains_and_evaluates_in_the_tools_layout(untrained_model, tmp_path):
    """convert-made rows -> ``train --tool-template hermes`` -> the printed ``lm_eval``
    command's layout -> a run whose prompts carry the schemas."""
    from fireact_eval.data.examples import write_examples

    from conftest import cli, read_outputs, run_lm_eval

    rows = tmp_path / "tools.jsonl"
    write_examples([_example()] * 4, rows, "tools")
    out = tmp_path / "adapter"
    proc = cli("train", "--base", str(untrained_model), "--data", str(rows), "--out",
               str(out), "--tool-template", "hermes", "--max-steps", "1", "--batch-size", "2",
               "--save-steps", "1000", "--cutoff", "4096")  # the schemas: ~300 tokens more
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((out / "fireact_eval.json").read_text())
    assert card["data_format"] == "tools" and card["eval_format"] == "tools"
    assert '"format": "tools", "tool_template": "hermes"' in card["eval_commands"][0]
    run_lm_eval("--model", "hf", "--model_args", f"pretrained={untrained_model},peft={out}",
                "--tasks", "fireact_demo", "--device", "cpu", "--batch_size", "2", "--limit",
                "2", "--metadata", "shots=zeroshot,format=tools,tool_template=hermes,"
                "max_turns=2", "--gen_kwargs", "max_gen_toks=16", "--output_path",
                str(tmp_path / "run"), "--log_samples")
    metrics, samples = read_outputs(tmp_path / "run", "fireact_demo")
    assert len(samples) == 2 and all(
        json.loads(s["resps"][0][0])["turns"] >= 1 for s in samples), samples[0]["resps"]
    assert metrics["prompt_tokens,none"] > 300  # the schemas are counted in every turn


# ---------------------------------------------------------------- an OpenAI-compatible API

def _api_call(name: str, arguments: object, call_id: str = "Xy7Kp2Qa9") -> dict:
    # a Mistral-style 9-character id: its servers refuse a tool message with an id they
    # did not issue (the scripted server below does too)
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str)
                         else json.dumps(arguments)}}


MENTIONED = ('Not yet <tool_call>{"name": "finish", "arguments": {"answer": "x"}}'
             "</tool_call>, first I search.")
# each question's replies, turn by turn: well-formed, malformed, an unknown tool, two calls
API_SCRIPTS = {
    "demo-01": [{"content": "I look up the observatory.",
                 "tool_calls": [_api_call("search", {"query": "Velmora Observatory"})]},
                {"content": None, "tool_calls": [_api_call("finish", {"answer": "Kettwick"})]}],
    "demo-02": [{"content": "", "tool_calls": [_api_call("search", '{"query": "Saltm')]},
                {"content": None, "tool_calls": [_api_call("finish", {"answer": "x"})]}],
    "demo-03": [{"content": None, "tool_calls": [_api_call("lookup", {"term": "Saltmere"})]},
                {"content": None, "tool_calls": [_api_call("finish", {"answer": "x"})]}],
    "demo-04": [{"content": "Both at once.",
                 "tool_calls": [_api_call("search", {"query": "Alda Korvin"}, "aaaaaaaaa"),
                                _api_call("search", {"query": "Petrel"}, "bbbbbbbbb")]},
                {"content": None, "tool_calls": [_api_call("finish", {"answer": "Petrel"})]}],
    # content that mentions a call in Hermes' text is thought: the structured call runs
    "demo-05": [{"content": MENTIONED,
                 "tool_calls": [_api_call("search", {"query": "Saltmere"}, "Qw3Er5Ty7")]},
                {"content": None, "tool_calls": [_api_call("finish", {"answer": "y"})]}],
}


def test_an_openai_compatible_api_gets_tools_and_answers_with_tool_calls():
    """``local-chat-completions``: the schemas travel as the request's ``tools``, the
    conversation as chat messages with ``tool_calls`` (arguments as JSON strings) and
    ``tool`` results; a reply's ``tool_calls`` are the action: malformed JSON and an unknown
    tool are invalid actions, of two calls in one message the first runs and the next
    request carries that one call and its one result."""
    import lm_eval.models  # noqa: F401
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_model

    from fireact_eval.harness.backend import react_generate
    from fireact_eval.prompts import build_prompt
    from fireact_eval.questions import demo
    from fireact_eval.rollout_settings import RolloutRequest
    from fireact_eval.trajectory import Trajectory

    from openai_server import ChatServer

    docs = list(demo()["test"])[:5]
    by_question = {build_prompt(d["question"], shots="zeroshot", fmt="tools"): d["id"]
                   for d in docs}
    issued = {c["id"] for script in API_SCRIPTS.values() for reply in script
              for c in reply.get("tool_calls") or []}

    def respond(messages, tools):
        turn = sum(m["role"] == "assistant" for m in messages)
        for m in messages:  # as Mistral's servers do: an id it did not issue is refused
            ids = [m.get("tool_call_id")] if m["role"] == "tool" else [
                c["id"] for c in m.get("tool_calls") or []]
            assert all(i in issued for i in ids), f"unknown tool call id in {m}"
            assert m["role"] != "tool" or set(m) == {"role", "tool_call_id", "content"}
        return API_SCRIPTS[by_question[messages[0]["content"]]][turn]

    def usage(messages):  # the server's own counts, reported for every question but one
        if by_question[messages[0]["content"]] != "demo-01":
            return {"prompt_tokens": 1000 + len(messages), "completion_tokens": 7}

    server = ChatServer(respond, usage)
    settings_ = RolloutSettings(search="local", shots="zeroshot", format="tools", max_turns=4,
                                concurrency=1)
    gen_kwargs = {"until": ["\nObservation"], "max_gen_toks": 64, "do_sample": False}
    try:
        lm = get_model("local-chat-completions").create_from_arg_string(
            f"base_url={server.base_url},model=s,max_retries=1", {"batch_size": 1})
        pairs = enumerate(zip(docs, by_question, strict=True))
        outputs = react_generate(lm, [
            Instance("react_generate", d, (prompt, gen_kwargs, RolloutRequest(settings_)),
                     task_name="fireact_demo", idx=0, doc_id=i) for i, (d, prompt) in pairs])
    finally:
        server.close()
    assert "parse_generations" not in vars(lm)  # lm-eval's own reader is back
    trajs = {d["id"]: Trajectory.from_json(o) for d, o in zip(docs, outputs, strict=True)}
    bodies = {(by_question[b["messages"][0]["content"]],
               sum(m["role"] == "assistant" for m in b["messages"])): b for b in server.bodies}
    assert all(b["tools"] == tool_schemas(["search"]) for b in server.bodies)
    assert all(b["parallel_tool_calls"] is False for b in server.bodies)  # one call a turn

    good = trajs["demo-01"]
    assert (good.finished, good.answer, good.tool_calls, good.invalid_actions) == (
        True, "Kettwick", 1, 0)
    assert good.steps[0].thought == "I look up the observatory."
    _, call, result = bodies["demo-01", 1]["messages"]
    assert call["content"] == "I look up the observatory."
    [sent] = call["tool_calls"]
    assert json.loads(sent["function"]["arguments"]) == {"query": "Velmora Observatory"}
    assert result == {"role": "tool", "tool_call_id": "Xy7Kp2Qa9",  # the server's own id
                      "content": good.steps[0].observation}
    # a reply without usage: estimated from the messages and schemas (chars/4: no tokenizer)
    schema_tokens = len(json.dumps(tool_schemas(["search"]))) // 4
    assert good.prompt_tokens == sum(len(json.dumps(b["messages"], ensure_ascii=False)) // 4
                                     + schema_tokens for (q, _), b in bodies.items()
                                     if q == "demo-01")

    for key, wrote in (("demo-02", "made a malformed call (arguments are not JSON"),
                       ("demo-03", "called lookup")):
        traj = trajs[key]
        assert (traj.finished, traj.tool_calls, traj.invalid_actions) == (True, 0, 1)
        assert traj.steps[0].observation.startswith(f"Invalid action: you {wrote}")
        assert bodies[key, 1]["messages"][-1]["role"] == "user"  # no call to answer

    both = trajs["demo-04"]
    assert (both.finished, both.tool_calls, both.invalid_actions) == (True, 1, 0)
    assert both.steps[0].argument == "Alda Korvin"
    assert "Petrel" in both.steps[0].text  # the second call stays in the turn's text
    _, call, result = bodies["demo-04", 1]["messages"]
    assert [json.loads(c["function"]["arguments"]) for c in call["tool_calls"]] == [
        {"query": "Alda Korvin"}]
    assert result["tool_call_id"] == call["tool_calls"][0]["id"] == "aaaaaaaaa"
    mentioned = trajs["demo-05"]  # the finish in its content is its thought, not its action
    assert (mentioned.steps[0].action, mentioned.steps[0].argument) == ("search", "Saltmere")
    assert mentioned.answer == "y" and mentioned.tool_calls == 1
    # a reply with usage: the server's counts, turn by turn (2 turns: 1001 + 1003 tokens)
    assert (both.prompt_tokens, both.gen_tokens) == (
        sum(1000 + len(b["messages"]) for (q, _), b in bodies.items() if q == "demo-04"),
        7 * both.turns)


@pytest.mark.parametrize("backend", ["local-chat-completions", "local-completions"])
def test_an_api_backend_counts_tokens_with_its_tokenizer_not_characters(tiny_model, backend):
    """With ``tokenizer_backend=huggingface``, prompt and generation tokens are the
    tokenizer's: lm-eval's chat models hand the text back from ``tok_encode``, which once
    made every count on local-chat-completions a count of characters (~3x)."""
    from lm_eval.api.registry import get_model
    from transformers import AutoTokenizer

    from fireact_eval.harness.backend import _token_counter

    lm = get_model(backend).create_from_arg_string(
        f"base_url=http://127.0.0.1:9/v1,model=tiny,tokenizer_backend=huggingface,"
        f"tokenizer={tiny_model}", {"batch_size": 1})
    text = 'I need to search Velmora Observatory.\n<tool_call>{"name": "search"}</tool_call>'
    tokens = AutoTokenizer.from_pretrained(str(tiny_model))(text, add_special_tokens=False)
    assert _token_counter(lm)(text) == len(tokens.input_ids) < len(text) / 2


def test_a_text_api_run_takes_the_servers_token_counts_where_it_reports_them():
    """Not only the tools layout: a text completions server's ``usage`` is the trajectory's
    prompt and generation tokens (it alone knows what it tokenised); lm-eval's reader is
    back after the run."""
    import lm_eval.models  # noqa: F401
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_model

    from fireact_eval.harness.backend import react_generate
    from fireact_eval.rollout_settings import RolloutRequest
    from fireact_eval.trajectory import Trajectory

    from openai_server import CompletionServer

    def respond(prompt):
        return "Action: finish[Kettwick]" if "Observation" in prompt else "Action: search[x]"

    server = CompletionServer(None, respond=respond,
                              usage=lambda prompts: {"prompt_tokens": 40 * len(prompts[0]),
                                                     "completion_tokens": 5})
    try:
        lm = get_model("local-completions").create_from_arg_string(
            f"base_url={server.base_url},model=s,tokenized_requests=False,"
            "tokenizer_backend=None,max_retries=1", {"batch_size": 1})
        settings_ = RolloutSettings(search="local", shots="zeroshot", max_turns=3,
                                    concurrency=1)
        [out] = react_generate(lm, [Instance("react_generate", {"id": "q"}, (
            "Q?\n", {"until": ["\nObservation"], "max_gen_toks": 8},
            RolloutRequest(settings_)), task_name="fireact_demo", idx=0, doc_id=0)])
    finally:
        server.close()
    assert "parse_generations" not in vars(lm)
    traj = Trajectory.from_json(out)
    assert (traj.finished, traj.turns) == (True, 2)
    prompts = ["Q?\n", f"Q?\nAction: search[x]\nObservation: {traj.steps[0].observation}\n"]
    assert traj.prompt_tokens == sum(40 * len(p) for p in prompts)
    assert traj.gen_tokens == 5 * 2


def test_format_tools_on_a_text_completions_api_is_one_line():
    import lm_eval.models  # noqa: F401
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_model

    from fireact_eval.harness.backend import react_generate
    from fireact_eval.rollout_settings import RolloutRequest

    lm = get_model("local-completions").create_from_arg_string(
        "base_url=http://127.0.0.1:9/v1/completions,model=s,tokenized_requests=False,"
        "tokenizer_backend=None", {"batch_size": 1})
    request = Instance("react_generate", {"id": "q"}, (
        "Q?", {"until": [], "max_gen_toks": 8},
        RolloutRequest(RolloutSettings(search="local", format="tools"))),
        task_name="fireact_demo", idx=0, doc_id=0)
    with pytest.raises(FireactError, match="chat-completions endpoint"):
        react_generate(lm, [request])


def test_a_tools_run_converts_to_rows_of_every_layout_in_their_own_form(tmp_path):
    """A ``tools`` run logs what the model wrote (``<tool_call>`` JSON); its alpaca rows
    are the text grammar's turns, its tools rows the calls again."""
    from fireact_eval.convert import convert
    from fireact_eval.data.examples import read_examples
    from fireact_eval.harness.run_files import sample_record, write_run
    from fireact_eval.scoring import qa
    from fireact_eval.trajectory import Trajectory, tries_to_json

    metadata = {"dataset": "demo", "format": "tools"}
    steps = [call_step("I search her.\n" + hermes_call("search", query="Ilse Brandauer"),
                       hermes),
             call_step(hermes_call("finish", answer="Kettwick"), hermes)]
    steps[0].observation = "Ilse Brandauer was born in Kettwick."
    response = tries_to_json([Trajectory(steps, "Kettwick", True, turns=2)])
    doc = {"id": "q0", "question": "Where was Ilse Brandauer born?", "answer": "Kettwick"}
    write_run(tmp_path / "run", "fireact_demo", metadata,
              [sample_record(0, doc, doc["question"], metadata, response, qa(doc, [response]))],
              "run", "2026-12-04T10-00-00.000001")
    convert([tmp_path / "run"], tmp_path / "alpaca.json", "alpaca")
    [row] = json.loads((tmp_path / "alpaca.json").read_text())
    assert "<tool_call>" not in row["output"]
    assert row["output"].startswith("Thought: I search her.\nAction: search[Ilse Brandauer]\n")
    convert([tmp_path / "run"], tmp_path / "tools.jsonl", "tools")
    [example] = read_examples(tmp_path / "tools.jsonl")[0]
    assert [(s.action, s.argument) for s in example.steps] == [
        ("search", "Ilse Brandauer"), ("finish", "Kettwick")]
