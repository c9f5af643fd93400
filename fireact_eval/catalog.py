"""What fireact-eval knows by name, each fact once: every list, default and choice in the
package (task variants, flags, tables, the mixer, the trainer) reads it from here.

A new dataset is a row in ``DATASETS`` (and a loader in ``questions``, a scorer in
``scoring.DATASET_SCORERS``); a new method a name in
``METHODS`` (and its few-shot prompts in ``tasks/prompts/``).
"""

from __future__ import annotations

from pathlib import Path

# Datasets, in the order tables show them (FireAct's: HotpotQA, its held-out Bamboogle, then
# StrategyQA and MMLU); ``demo`` is the offline demo's fictional set, ``world`` the generated
# fictional world big enough to measure in (``tools.world``).
DATASETS = ("hotpotqa", "bamboogle", "strategyqa", "mmlu", "demo", "world")
OFFLINE_DATASETS = ("demo", "world")
PAPERS_DATASETS = tuple(d for d in DATASETS if d not in OFFLINE_DATASETS)  # ``fireact``
TRAINING_DATASETS = ("hotpotqa", "strategyqa", "mmlu")  # FireAct trains on these
HELD_OUT = ("bamboogle",)  # evaluated, never trained on: no training split

# Methods: how the agent is prompted.  io and cot answer in one turn with no tool; every
# method but io yields reasoning worth fine-tuning on.
METHODS = ("io", "cot", "react", "reflexion")
SINGLE_TURN_METHODS = ("io", "cot")
TRAINING_METHODS = ("react", "cot", "reflexion")
SHOTS = ("fewshot", "zeroshot")

# How a prompt is rendered (plain text, chat messages, FireAct's alpaca template, native tool
# calls), and the layouts of a training file: alpaca ``.json`` and chat ``.jsonl``, as FireAct
# released, and tools ``.jsonl`` (``messages`` + ``tools``, as TRL and HF datasets hold them).
PROMPT_FORMATS = ("plain", "chat", "alpaca", "tools")
DATA_FORMATS = ("alpaca", "chat", "tools")

# The agent's actions, as the transcript grammar writes them.
SEARCH, FINISH = "search", "finish"

# Tool faults (``perturb``): FireAct Table 3's ``None`` and random other response, an explicit
# error, a related but wrong passage, a passage cut before its fact; each drawn afresh per
# call (transient) or fixed per query within an episode (permanent).
NOISE_KINDS = ("off", "none", "random", "error", "distractor", "truncated")
NOISE_PERSISTENCE = ("transient", "permanent")
# The task variants (``fireact_<dataset>_noise_<name>``) and experiment conditions: name ->
# the metadata it sets besides noise_p 0.5 and noise_seed 0.
NOISE_CONDITIONS = {
    **{kind: {"noise": kind} for kind in NOISE_KINDS if kind != "off"},
    "distractor_permanent": {"noise": "distractor", "noise_persist": "permanent"},
    "mix": {"noise": "none:0.125+error:0.125+distractor:0.125+truncated:0.125"},
}

CUTOFF = 512  # tokens per training example (FireAct's)

# Tokens an agent may write per turn: the tasks' ``max_gen_toks`` (tasks/_default_template_yaml;
# a test holds it equal), and the shorter budget of the demo's turns and GRPO's rollouts,
# whose steps fit in it (measured on the demo: no oracle step is longer than 60 tokens).
TOKENS_PER_TURN = 160
SHORT_TOKENS_PER_TURN = 96
# who rolls out GRPO (train --loop): our engine through TRL's rollout_func (the evaluated
# loop), or TRL's own tool loop over our environment (trainers/environment_factory.py)
GRPO_LOOPS = ("rollout_func", "environment_factory")


def task_name(dataset: str) -> str:
    """The lm-eval task of a dataset: ``fireact_<dataset>``."""
    return f"fireact_{dataset}"


def data_format_of(path: str | Path) -> str:
    """A training file's layout by its name: alpaca for ``.json``, chat otherwise."""
    return "alpaca" if Path(path).suffix == ".json" else "chat"


def data_file_suffix(fmt: str) -> str:
    return "json" if fmt == "alpaca" else "jsonl"
