"""A tiny Llama that really acts as a ReAct agent, built and trained in seconds on CPU.

The tokenizer (byte-level BPE) and a 2-layer model are built in code, then trained on gold
trajectories for a handful of demo questions, with real observations from the demo search
tool, so that in tests it searches, reads and finishes like a fine-tuned agent.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from fireact_eval.demo import oracle_example
from fireact_eval.prompts import build_prompt, load_examples
from fireact_eval.questions import DEMO_QUESTIONS
from fireact_eval.tools import make_search
from fireact_eval.tools.local_search import DEMO_CORPUS
from fireact_eval.transcript import parse_transcript, render_messages, to_text

EOS = "<|endoftext|>"
TRAIN_IDS = tuple(f"demo-{i:02d}" for i in range(1, 9))  # the first 8 docs of fireact_demo
# ChatML-like: every message ends with EOS, so a chat agent stops after its action.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def demo_questions(ids=TRAIN_IDS) -> list[dict]:
    rows = [json.loads(line) for line in DEMO_QUESTIONS.read_text().splitlines() if line.strip()]
    return [r for r in rows if ids is None or r["id"] in ids]


def gold_trajectory(q: dict) -> str:
    """Search each supporting passage by its title, then finish with the answer."""
    return to_text(oracle_example(q, make_search("local")).steps)


def training_texts(tokenizer: PreTrainedTokenizerFast | None = None) -> list[str]:
    """Plain transcripts; with a tokenizer, also the same rollouts as chat transcripts."""
    texts = []
    for q in demo_questions():
        prompt, gold = build_prompt(q["question"], shots="zeroshot"), gold_trajectory(q)
        texts.append(prompt + gold + EOS)
        if tokenizer is not None:
            steps = parse_transcript(gold).steps
            context = tokenizer.apply_chat_template(
                render_messages(prompt, steps[:-1]), tokenize=False, add_generation_prompt=True
            )
            texts.append(context + steps[-1].text + EOS)
    return texts


def build_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500, special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    corpus = DEMO_CORPUS.read_text().splitlines()
    tok.train_from_iterator(texts + corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=EOS,
        chat_template=CHAT_TEMPLATE,
    )


def build_untrained(out_dir: Path, seed: int = 0) -> Path:
    """The untrained base: same tokenizer and shape, random weights (emits noise)."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(training_texts())
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=192, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def pretraining_texts() -> list[str]:
    """A stand-in for web text: the demo passages, the questions (one as a zero-shot alpaca prompt),
    and ReAct few-shot examples about *other* (fictional) questions, so that every token of
    the agent's format has a trained embedding, as it would in a real pretrained LM."""
    rows = [json.loads(line) for line in DEMO_CORPUS.read_text().splitlines()]
    questions = [q["question"] for q in demo_questions(ids=None)]
    prompts = questions[1:] + [build_prompt(questions[0], shots="zeroshot", fmt="alpaca")]
    examples = load_examples("react", "qa").split("\n\n")
    return ([f"{r['title']}: {r['text']}{EOS}" for r in rows] + [p + EOS for p in prompts]
            + [e + EOS for e in examples])


def _packed(tokenizer: PreTrainedTokenizerFast, texts: list[str], block: int) -> dict:
    """Texts concatenated and cut into equal blocks, as in LM pretraining: no padding."""
    ids = [t for text in texts for t in tokenizer(text)["input_ids"]]
    ids = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def train(model_dir: Path, steps: int = 300, lr: float = 3e-3,
          texts: list[str] | None = None, pack: int | None = None) -> list[float]:
    """Full-batch next-token training (default: on the gold trajectories, one row each;
    ``pack=N``: blocks of N tokens); returns the losses."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir)
    texts = training_texts(tokenizer) if texts is None else texts
    batch = (_packed(tokenizer, texts, pack) if pack
             else tokenizer(texts, return_tensors="pt", padding=True))
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optim = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
        losses.append(loss.item())
    model.save_pretrained(model_dir)
    return losses
