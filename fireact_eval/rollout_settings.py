"""What ``--metadata`` may set for a rollout: one schema, in three option groups.

Every field is an ``option`` (default, type, help, group), so parsing, the error for a bad
value and the list of valid keys come from the one declaration.  The result files record
``as_metadata()`` (every setting, defaults included), which ``results`` reads back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from fireact_eval.catalog import (
    METHODS,
    NOISE_KINDS,
    NOISE_PERSISTENCE,
    PROMPT_FORMATS,
    SEARCH,
    SHOTS,
    SINGLE_TURN_METHODS,
)
from fireact_eval.errors import FireactError
from fireact_eval.options import from_known_keys, option
from fireact_eval.perturb import NoiseSpec, check_backend, make_perturbation, parse_noise
from fireact_eval.prompts import check_prompt
from fireact_eval.questions import QuestionSource
from fireact_eval.rollout import (
    DEFAULT_MAX_TURNS,
    Episode,
    never_reflect,
    reflect_before,
)
from fireact_eval.tool_calls import TOOL_PARSERS, TOOL_TEMPLATES
from fireact_eval.tools import make_search, response_pool, search_factory

__all__ = ["RolloutSettings", "CheckedMetadata", "check_metadata", "valid_metadata_keys",
           "DEFAULT_REFLECT_AT"]

DEFAULT_REFLECT_AT = (6, 10)  # FireAct's Reflexion turns
# Other keys a fireact task's metadata may hold: which questions it runs (questions'
# QuestionSource), and what lm-eval itself puts there.
DATA_KEYS = tuple(f.name for f in fields(QuestionSource))
LM_EVAL_KEYS = ("version", "config_source")
# A ReAct prompt grows by a turn and an observation per step: past this many turns it has
# outgrown any context these agents run with (FireAct stops at 11), so more is a typo.
MAX_TURNS_LIMIT = 100
MAX_REPEATS = 64  # tries of one question: pass^k at k = 64 already needs 64 right in a row


@dataclass(frozen=True)
class RolloutSettings:
    """One task's rollout, checked before any model call."""

    # prompt: what the agent is shown
    method: str = option("react", "io, cot, react or reflexion (FireAct's methods)", "prompt",
                         choices=METHODS)
    shots: str = option("fewshot", "few-shot examples (prompted agents) or zeroshot (the "
                        "bare question, for fine-tuned ones)", "prompt", choices=SHOTS)
    format: str = option("plain", "plain text, chat messages, FireAct's alpaca template, or "
                         "tools: native tool calls through the chat template", "prompt",
                         choices=PROMPT_FORMATS)
    tool_template: str = option("model", "format=tools: the model's own chat template, or "
                                "hermes (shipped, for a model whose template has no tools)",
                                "prompt", choices=TOOL_TEMPLATES)
    tool_parser: str = option("auto", "format=tools: how replies are read: auto (the "
                              "tokenizer's response schema, else its template's convention), "
                              "hermes, llama3 or mistral", "prompt", choices=TOOL_PARSERS)
    family: str = option("qa", "which few-shot examples: tasks/prompts/{method}_{family}.txt",
                         "prompt")
    # loop: how long it runs
    max_turns: int = option(DEFAULT_MAX_TURNS, "turns before an unfinished agent is stopped "
                            "(FireAct: 11)", "loop")
    reflect_at: tuple[int, ...] = option(DEFAULT_REFLECT_AT, "reflexion: ask for a "
                                         "reflection before these turns", "loop")
    repeats: int = option(1, "tries of every question, batched together (sample with "
                          "--gen_kwargs do_sample=True,temperature=T); scored per question: "
                          "mean EM, pass_at_k (any try right), pass_hat_k (every try right)",
                          "loop")
    concurrency: int = option(0, "API backends: trajectories in flight at once, each "
                              "advancing on its own reply (0: lm-eval's num_concurrent; 1: "
                              "all advance together, turn by turn)", "loop",
                              changes_results=False)
    # tool: what search answers
    search: str = option("wiki", "search spec: wiki, local, replay:PATH, retriever:URL, "
                         "serpapi (fireact_demo sets local)", "tool")
    noise: str = option("off", "tool faults: a kind (" + ", ".join(NOISE_KINDS[1:]) + ") "
                        "with probability noise_p, or a mixture kind:P+kind:P (one draw a "
                        "call picks the kind)", "tool")
    noise_p: float = option(0.5, "probability that a search observation is faulted (a "
                            "mixture: the sum of its kinds')", "tool")
    noise_seed: int = option(0, "seed of the faults (with the doc id and turn, or query)",
                             "tool")
    noise_persist: str = option("transient", "transient: each call draws afresh; permanent: "
                                "the same query keeps its fault all episode", "tool",
                                choices=NOISE_PERSISTENCE)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None,
                      strict: bool = False) -> RolloutSettings:
        """The settings among a task's metadata (other keys are ``check_metadata_keys``'
        business), parsed and checked: the prompt exists, the search backend is known and
        searches the questions' world.  Checking builds nothing (``build_tools`` does).
        ``strict``: from a typed file (YAML), where ``"3"`` is no integer."""
        settings = from_known_keys(cls, metadata, strict)
        if not 1 <= settings.max_turns <= MAX_TURNS_LIMIT:
            raise FireactError(f"max_turns must be from 1 to {MAX_TURNS_LIMIT} (FireAct: 11), "
                               f"got {settings.max_turns}")
        if not 1 <= settings.repeats <= MAX_REPEATS:
            raise FireactError(f"repeats must be from 1 to {MAX_REPEATS}, got {settings.repeats}")
        if any(turn < 1 for turn in settings.reflect_at):
            raise FireactError(f"reflect_at turns start at 1, got {list(settings.reflect_at)}")
        if settings.concurrency < 0:
            raise FireactError(f"concurrency must be 0 (lm-eval's num_concurrent) or more, "
                               f"got {settings.concurrency}")
        check_prompt(settings.method, settings.shots, settings.format, settings.family)
        settings = settings._with_noise_spec(metadata or {})
        if settings.method not in SINGLE_TURN_METHODS:  # they call no tool
            search_factory(settings.search)  # a known backend; nothing is built here
            _same_world(settings.search, (metadata or {}).get("dataset"))
        return settings

    def _with_noise_spec(self, metadata: Mapping[str, Any]) -> RolloutSettings:
        """The noise settings as one spec records them: a mixture's ``noise_p`` is the sum of
        its kinds' (a different one given is an error), and ``persist=`` inside the spec
        is ``noise_persist`` (given both ways, one value or an error)."""
        spec = parse_noise(self.noise, self.noise_p, self.noise_persist)
        if "noise_p" in metadata and ":" in self.noise and spec.p != self.noise_p:
            raise FireactError(f"noise={self.noise}: a mixture gives each kind its "
                               f"probability (they add up to {spec.p:g}); "
                               f"noise_p={self.noise_p} contradicts it")
        if "noise_persist" in metadata and spec.persist != self.noise_persist:
            raise FireactError(f"noise={self.noise} says persist={spec.persist}; "
                               f"noise_persist={self.noise_persist} contradicts it")
        if "noise_persist" in metadata and not spec.kinds and spec.persist != "transient":
            raise FireactError("noise_persist=permanent needs a fault (noise=none, "
                               "distractor, ...); noise is off")
        return replace(self, noise=spec.name, noise_p=spec.p if spec.kinds else self.noise_p,
                       noise_persist=spec.persist)

    @property
    def noise_spec(self) -> NoiseSpec:
        return parse_noise(self.noise, self.noise_p, self.noise_persist)

    def build_tools(self) -> None:
        """Build the search tool now (an index from its corpus, a connection), so a missing
        corpus, or a fault the backend cannot produce, fails before the model loads, not
        mid-run; the preflight calls it once per task, and the rollouts reuse what it
        built."""
        if self.method not in SINGLE_TURN_METHODS:
            search = make_search(self.search)
            spec = self.noise_spec
            check_backend(spec, search, response_pool(search) if spec.has("random") else (),
                          self.search)

    def as_metadata(self) -> dict[str, Any]:
        """Every setting as a JSON-ready value, as result files record it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def episode(self, prompt: str, gen_kwargs: dict, doc_key: str, pools: dict) -> Episode:
        """The rollout of one doc: single-turn methods get no tools and one turn."""
        if self.method in SINGLE_TURN_METHODS:
            return Episode(prompt, tools={}, max_turns=1, gen_kwargs=gen_kwargs)
        search = make_search(self.search)
        spec = self.noise_spec
        if spec.has("random") and self.search not in pools:
            # a snapshot before any call (a cache's pool grows); an index's is read lazily
            pools[self.search] = response_pool(search)
        return Episode(
            prompt,
            tools={SEARCH: search},
            max_turns=self.max_turns,
            gen_kwargs=gen_kwargs,
            observe=make_perturbation(spec, self.noise_p, self.noise_seed, doc_key,
                                      pools.get(self.search, ()), tool=search),
            reflect=reflect_before(self.reflect_at) if self.method == "reflexion"
            else never_reflect,
        )


def _same_world(search: str, dataset: Any) -> None:
    """``search=world:SEED`` names a world; the world's questions are the default seed's, so
    another seed would search a world none of them is about (0 of 20 second hops were)."""
    from fireact_eval.tools.world import WORLD_SEED, world_seed

    name, _, argument = str(search).partition(":")
    if name != "world":
        return
    seed = world_seed(argument)
    if dataset == "world" and seed != WORLD_SEED:
        raise FireactError(f"search=world:{argument}: fireact_world's questions are those of "
                           f"world {WORLD_SEED}; another seed's passages answer none of them "
                           f"(give search=world, or your own questions=PATH about world "
                           f"{seed})")


@dataclass(frozen=True)
class CheckedMetadata:
    """A task's metadata as every door checks it: the rollout settings and the questions."""

    settings: RolloutSettings
    source: QuestionSource


def check_metadata(metadata: Mapping[str, Any], *, where: str = "--metadata",
                   strict: bool = False, allowed: Sequence[str] = (),
                   training: bool = False, train_on_test: bool = False) -> CheckedMetadata:
    """The one check of a task's metadata, at every door where settings enter (``lm_eval
    --metadata`` through the preflight, ``generate``, ``train --method grpo``, each section
    of an experiment): no key that nobody reads, every value of its type and range, the
    search agreeing with the questions; for ``training`` (a teacher's or GRPO's questions),
    no test questions unless ``train_on_test``.  One line naming ``where``."""
    if training:  # a training door reads the training questions unless told otherwise
        metadata = {"split": "train", **metadata}
    unknown = sorted(set(metadata) - set(valid_metadata_keys()) - set(LM_EVAL_KEYS)
                     - set(allowed))
    try:
        if unknown:
            raise FireactError(f"unknown key(s) {', '.join(unknown)}; valid keys: "
                               f"{', '.join(valid_metadata_keys())}")
        settings = RolloutSettings.from_metadata(metadata, strict=strict)
        source = QuestionSource.from_metadata(dict(metadata), strict=strict)
    except FireactError as err:
        raise FireactError(f"{where}: {err}" if where else str(err)) from None
    if training and source.split == "test" and not source.questions and not train_on_test:
        raise FireactError(f"{where}: split=test trains on the evaluation questions; training "
                           "reads split=train (give --train-on-test, or train_on_test: true "
                           "in an experiment, only if that is what you mean)")
    return CheckedMetadata(settings, source)


class RolloutRequest(dict):
    """What one request carries to ``react_generate``: the task's settings, built and checked
    once in ``ReactTask``, as the typed object (``settings``, ``chat``), while lm-eval sees
    the plain dict it is (every setting, and whether the prompt is chat), which it logs as
    ``arguments.gen_args_0.arg_2`` and hashes for ``--use_cache``."""

    def __init__(self, settings: RolloutSettings, chat: bool = False) -> None:
        super().__init__({"chat": chat, **settings.as_metadata()})
        self.settings, self.chat = settings, chat


def valid_metadata_keys() -> list[str]:
    """Every key a user may put in a fireact task's ``--metadata``."""
    return [f.name for f in fields(RolloutSettings)] + list(DATA_KEYS)
