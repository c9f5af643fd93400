"""Train/eval parity: the tokens the trainer trains on are exactly the tokens the model
generated when the same trajectory was evaluated, in every training format; and the
context before each of them is exactly the context evaluation sent."""

from __future__ import annotations

import json

import pytest

from fireact_eval.data.examples import Example, to_row
from fireact_eval.data.segments import alpaca_segments, chat_segments
from fireact_eval.prompts import build_prompt
from fireact_eval.rollout import Episode, reflect_before, run_episodes
from fireact_eval.trainers.encode import IGNORE, build_examples
from fireact_eval.transcript import render_messages, render_text

QUESTION = "Where was the founder of Velmora Observatory born?"
SCRIPT = [
    "Thought: I need the founder first.\nAction: search[Velmora Observatory]",
    "Thought: Try again.\nAction: search[Velmora founder]",
    " I searched too broadly; search the founder's name.",  # after "Reflection:"
    "Thought: Now her birthplace.\nAction: search[Ilse Brandauer]",
    "Thought: She was born in Kettwick.\nAction: finish[Kettwick]",
]


@pytest.fixture(scope="module")
def tokenizer(untrained_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(untrained_model)


def evaluate(fmt: str, tokenizer) -> tuple[list[str], list[str], Example]:
    """Run the script through the engine as ``lm_eval`` would (zero-shot, this format):
    the contexts it sent, what the model generated, and the logged rollout."""
    prompt = build_prompt(QUESTION, shots="zeroshot", fmt=fmt)
    if fmt == "chat":
        def render(p, steps, reflect):
            return tokenizer.apply_chat_template(render_messages(p, steps, reflect),
                                                 tokenize=False, add_generation_prompt=True)
    else:
        render = render_text
    contexts: list[str] = []
    script = list(SCRIPT)
    if fmt == "chat":  # asked for a reflection in a message, the model writes the label too
        script[2] = "Reflection:" + script[2]
    generated = iter(script)

    def generate(requests):
        contexts.extend(context for context, _ in requests)
        return [next(generated) for _ in requests]

    episode = Episode(prompt, {"search": lambda q: f"Passage about {q}."}, max_turns=5,
                      reflect=reflect_before((3,)), render=render)
    [trajectory] = run_episodes([episode], generate, progress=False)
    assert trajectory.finished and len(contexts) == len(script)
    return contexts, script, Example(QUESTION, trajectory.steps, "demo", "reflexion")


@pytest.mark.parametrize("fmt", ["alpaca", "chat"])
def test_trained_spans_are_what_evaluation_generated(fmt, tokenizer, tmp_path):
    contexts, generations, sample = evaluate(fmt, tokenizer)
    row = to_row(sample, fmt)
    segments = alpaca_segments(row) if fmt == "alpaca" else chat_segments(row, tokenizer)
    label = ("\nObservation:", True)  # how a text turn ends: the stop string cuts it there
    trained = [i for i, (_, trainable) in enumerate(segments) if trainable
               and segments[i] != label]
    assert len(trained) == len(generations)
    # each label trained follows a turn it ends, and an observation follows it
    ends = [i for i, segment in enumerate(segments) if segment == label]
    assert all(i - 1 in trained and not segments[i + 1][1] for i in ends)
    for position, context, generation in zip(trained, contexts, generations, strict=True):
        # what came before the span is what the model was shown ...
        assert "".join(text for text, _ in segments[:position]) == context
        # ... and the span is what it wrote (chat: then the template's end-of-turn)
        assert segments[position][0].startswith(generation.strip() if fmt == "chat"
                                                else generation)
        if fmt == "alpaca":
            assert segments[position][0] == generation

    # the same holds in tokens, through the file the trainer reads
    path = tmp_path / ("t.json" if fmt == "alpaca" else "t.jsonl")
    path.write_text(json.dumps([row]) if fmt == "alpaca" else json.dumps(row) + "\n")
    [example], detected = build_examples(path, tokenizer)
    assert detected == fmt
    labels = [t for t in example["labels"] if t != IGNORE]
    expected = [t for i in sorted([*trained, *ends])
                for t in tokenizer(segments[i][0], add_special_tokens=False)["input_ids"]]
    assert labels == [*expected, tokenizer.eos_token_id]


def test_an_indented_observation_is_context_not_trained(tokenizer):
    """The grammar reads an indented label as a label everywhere: the trainer once trained
    on ``  Observation: ...`` lines its own regex did not recognise."""
    row = {"instruction": "Q", "input": "",
           "output": "Thought: look\nAction: search[x]\n  Observation: SECRET passage\n"
                     "Thought: done\nAction: finish[y]"}
    segments = alpaca_segments(row)
    trained = "".join(text for text, trainable in segments if trainable)
    assert "SECRET" not in trained and "finish[y]" in trained and "search[x]" in trained
    assert "".join(text for text, _ in segments).count("Observation: SECRET passage") == 1


def test_fireact_closing_observation_is_not_part_of_the_transcript(tokenizer):
    """FireAct's files end with ``Observation: Episode finished, reward = True``, which no
    agent sees at evaluation: the trainer's last trained tokens are the finish turn."""
    text = ("Thought: a\nAction: search[b]\nObservation: c\nThought: d\nAction: finish[e]\n"
            "Observation: Episode finished, reward = True\n")
    segments = alpaca_segments({"instruction": "Q", "output": text})
    assert segments[-1] == ("Thought: d\nAction: finish[e]", True)
    messages = [{"role": "user", "content": "Q"},
                {"role": "assistant", "content": "Thought: d\nAction: finish[e]"},
                {"role": "user", "content": "Observation: Episode finished, reward = True"}]
    assert "Episode finished" not in "".join(t for t, _ in chat_segments({"messages": messages},
                                                                           tokenizer))
