"""A generated offline world: fictional two-hop QA big enough to measure in.

The demo's 36 hand-written questions give a 95 % interval of +-0.15: only a difference of
about a third of them is beyond noise.  This world is written by code from one seed:
provinces with their towns, people and institutions, one passage per entity, and two-hop
questions over them ("In which town was the founder of Tessaly Observatory born?": the
institution's passage names its founder, the founder's names the town).  Every name is
made of invented syllables, so no model answers from memory: search is needed.

Each province (a *cluster*: its towns, people and institutions, mentioned by no other
cluster's passages) goes whole to the test or the training split, so the two share no
entity.  A question is kept only if the search tool the agent uses reaches its answer in
two searches, each by the name the step before it gave (``reachable``, run on the real
index of the world's corpus).  Same seed, same world, byte for byte.

The files live under the cache (``world_folder``): ``corpus.jsonl`` (the ``world`` search
backend's passages), ``test.jsonl`` and ``train.jsonl`` (the ``fireact_world`` task's splits,
each question with its ``supporting`` titles for an oracle teacher).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fireact_eval.errors import FireactError
from fireact_eval.paths import cache_root
from fireact_eval.tools import Search, register_search

__all__ = ["WORLD_SEED", "World", "generate_world", "reachable", "world_folder", "world_seed"]

WORLD_VERSION = 1  # bump when what a seed generates changes: a new cache folder
WORLD_SEED = 2310
# clusters per split; at about 40 questions a cluster: ~1,200 test and ~4,400 training
TEST_CLUSTERS, TRAIN_CLUSTERS = 30, 110

_ONSETS = ["B", "Br", "C", "D", "Dr", "F", "G", "Gr", "H", "K", "L", "M", "N", "P", "R", "S",
           "St", "T", "Th", "V", "W", "Z", "El", "Is", "Or", "Al", "Ev", "Ul"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "ia", "y"]
_CODAS = ["", "n", "r", "l", "s", "th", "nd", "rk", "ll", "m", "v", "st", "x"]
_TOWN_ENDS = ["wick", "mere", "ford", "holm", "by", "ton", "stead", "vale", "bridge",
              "haven", "moor", "thorpe", "ness", "field"]
_PROVINCE_ENDS = ["ia", "and", "mark", "shire", "ora", "essa"]
_SURNAME_ENDS = ["son", "er", "ov", "ard", "ley", "mont", "ic", "ane", "ell", "ow"]
_KINDS = [("Observatory", "an astronomical observatory"), ("Institute", "a research institute"),
          ("Museum", "a museum of natural history"), ("Library", "a public library"),
          ("Conservatory", "a music conservatory"), ("Foundry", "an iron foundry"),
          ("Academy", "a naval academy"), ("Shipyard", "a shipyard"),
          ("Press", "a printing house"), ("Theatre", "a theatre company")]
_OCCUPATIONS = ["astronomer", "engineer", "painter", "botanist", "cartographer", "composer",
                "physician", "merchant", "architect", "chemist", "poet", "shipwright"]
_PRODUCTS = ["slate quarries", "apple orchards", "wool", "glassworks", "salt marshes",
             "clockmakers", "lace", "copper mines", "cider", "boatyards", "cheese", "pottery"]
_FEATURES = ["its lakes", "its vineyards", "its mountain passes", "its river ports",
             "its forests", "its coastal cliffs"]


@dataclass
class _Cluster:
    """One province and everything that lives in it."""

    province: str
    towns: list[str]
    capital: str
    governor: str
    people: list[dict] = field(default_factory=list)  # name, born, died, occupation, town, org
    orgs: list[dict] = field(default_factory=list)  # name, kind, what, town, year, founder


@dataclass(frozen=True)
class Entity:
    """What the world knows of one passage's entity: its kind (province, town, person,
    org), its province and split (test or train), and where in its passage's text the
    first fact stands (a name of another entity or a number: what a question's hop reads
    from it)."""

    kind: str
    province: str
    split: str
    first_fact: int


@dataclass(frozen=True)
class World:
    """The passages (``{"title", "text"}``) and the candidate questions of each split
    (``{"id", "question", "answer", "supporting"}``), before the reachability filter;
    ``entities``: each passage's entity by its title."""

    seed: int
    passages: list[dict]
    test: list[dict]
    train: list[dict]
    entities: dict[str, Entity] = field(default_factory=dict)


class _Names:
    """Invented names, each used once in the world (and none inside another word)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def _syllable(self) -> str:
        return self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)

    def new(self, make: Callable[[], str]) -> str:
        while True:
            name = make()
            words = name.split()
            if name not in self.used and all(len(w) > 3 for w in words[:1]):
                self.used.add(name)
                return name

    def word(self, ends: list[str] | None = None, syllables: int = 2) -> str:
        body = "".join(self._syllable() for _ in range(syllables))
        return (body + (self.rng.choice(ends) if ends else "")).lower().capitalize()

    def person(self) -> str:
        return self.new(lambda: f"{self.word()} {self.word(_SURNAME_ENDS, 1)}")

    def town(self) -> str:
        return self.new(lambda: self.word(_TOWN_ENDS, 1))

    def province(self) -> str:
        return self.new(lambda: self.word(_PROVINCE_ENDS, 1))

    def org(self, kind: str) -> str:
        return self.new(lambda: f"{self.word(syllables=2)} {kind}")


def _cluster(rng: random.Random, names: _Names) -> _Cluster:
    towns = [names.town() for _ in range(5)]
    people = []
    for _ in range(10):
        born = rng.randint(1790, 1950)
        people.append({"name": names.person(), "born": born, "died": born + rng.randint(45, 95),
                       "occupation": rng.choice(_OCCUPATIONS), "town": rng.choice(towns),
                       "pronoun": rng.choice(["He", "She"]), "org": None})
    cluster = _Cluster(names.province(), towns, towns[0], people[-1]["name"], people)
    for founder in rng.sample(people[:-1], 5):
        kind, what = rng.choice(_KINDS)
        cluster.orgs.append({"name": names.org(kind), "kind": kind.lower(), "what": what,
                             "town": rng.choice(towns), "year": rng.randint(1820, 1990),
                             "founder": founder["name"]})
    for person in people[:-1]:
        if rng.random() < 0.6:
            person["org"] = rng.choice(cluster.orgs)["name"]
    rng.shuffle(cluster.towns)
    return cluster


def _passages(c: _Cluster, rng: random.Random) -> list[dict]:
    out = [{"title": c.province, "text": (
        f"{c.province} is a province with its capital at {c.capital}. Its governor is "
        f"{c.governor}, and it is known for {rng.choice(_FEATURES)}.")}]
    for town in c.towns:
        out.append({"title": town, "text": (
            f"{town} is a town in the province of {c.province}, known for its "
            f"{rng.choice(_PRODUCTS)}. It has a population of about "
            f"{rng.randrange(400, 40000, 100):,}.")})
    for p in c.people:
        work = f" {p['pronoun']} worked at {p['org']} for many years." if p["org"] else ""
        out.append({"title": p["name"], "text": (
            f"{p['name']} ({p['born']}-{p['died']}) was {_article(p['occupation'])}. "
            f"{p['pronoun']} was born in {p['town']}.{work}")})
    for o in c.orgs:
        out.append({"title": o["name"], "text": (
            f"{o['name']} is {o['what']} in {o['town']}. It was founded in {o['year']} by "
            f"{o['founder']}.")})
    return out


def _entities(c: _Cluster, passages: list[dict], split: str) -> dict[str, Entity]:
    kinds = {c.province: "province", **{t: "town" for t in c.towns},
             **{p["name"]: "person" for p in c.people}, **{o["name"]: "org" for o in c.orgs}}
    found = {}
    for passage in passages:
        title, text = passage["title"], passage["text"]
        starts = [m.start() for name in kinds if name != title
                  for m in [re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)] if m]
        starts += [m.start() for m in re.finditer(r"\d", text)][:1]
        found[title] = Entity(kinds[title], c.province, split, min(starts, default=len(text)))
    return found


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _questions(c: _Cluster) -> list[tuple[str, str, list[str]]]:
    """(question, answer, supporting titles): the first title is named in the question,
    the second in the first's passage, the answer in the second's."""
    people = {p["name"]: p for p in c.people}
    orgs = {o["name"]: o for o in c.orgs}
    found = []
    for o in c.orgs:
        founder = people[o["founder"]]
        found += [
            (f"In which town was the founder of {o['name']} born?", founder["town"],
             [o["name"], founder["name"]]),
            (f"In what year was the founder of {o['name']} born?", str(founder["born"]),
             [o["name"], founder["name"]]),
            (f"In which province is the town where {o['name']} is located?", c.province,
             [o["name"], o["town"]]),
        ]
    for town in c.towns:
        found.append((f"Who is the governor of the province that {town} is in?", c.governor,
                      [town, c.province]))
        if town != c.capital:
            found.append((f"What is the capital of the province that {town} is in?",
                          c.capital, [town, c.province]))
    for p in c.people:
        if p["org"]:
            org = orgs[p["org"]]
            found.append((f"In which town is the {org['kind']} where {p['name']} worked?",
                          org["town"], [p["name"], org["name"]]))
        found.append((f"In which province was {p['name']} born?", c.province,
                      [p["name"], p["town"]]))
    return found


def generate_world(seed: int = WORLD_SEED, test_clusters: int = TEST_CLUSTERS,
                   train_clusters: int = TRAIN_CLUSTERS) -> World:
    """The world of ``seed``: a pure function of its arguments."""
    rng = random.Random(seed)
    names = _Names(rng)
    passages: list[dict] = []
    entities: dict[str, Entity] = {}
    splits: dict[str, list[dict]] = {"test": [], "train": []}
    for number in range(test_clusters + train_clusters):
        cluster = _cluster(rng, names)
        written = _passages(cluster, rng)
        passages += written
        split = "test" if number < test_clusters else "train"
        entities |= _entities(cluster, written, split)
        splits[split] += [{"question": q, "answer": a, "supporting": s}
                          for q, a, s in _questions(cluster)]
    rng.shuffle(passages)
    for split, rows in splits.items():
        rng.shuffle(rows)  # so --limit k and n=k take questions from every province
        for i, row in enumerate(rows):
            row["id"] = f"world-{split}-{i}"
    return World(seed, passages, splits["test"], splits["train"], entities)


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def reachable(question: dict, search: Search) -> bool:
    """Whether two searches reach the answer: the first by the name the question gives,
    whose result names the second; the second's result holds the answer."""
    first, second = question["supporting"]
    return (_mentions(search(first), second)
            and _mentions(search(second), question["answer"]))


def world_folder(seed: int = WORLD_SEED) -> Path:
    """The world's files, written once into the cache (whole, or not at all): the corpus,
    and each split's questions that ``reachable`` keeps, through the ``local`` search over
    that corpus (the tool the agent gets)."""
    folder = cache_root() / "world" / f"v{WORLD_VERSION}-seed{seed}"
    if (folder / "train.jsonl").is_file():
        return folder
    from fireact_eval.tools.local_search import LocalSearch

    world = generate_world(seed)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        _write_jsonl(staging / "corpus.jsonl", world.passages)
        search = LocalSearch(staging / "corpus.jsonl", progress=False)
        for split in ("test", "train"):
            rows = [q for q in getattr(world, split) if reachable(q, search)]
            _write_jsonl(staging / f"{split}.jsonl", rows)
        # the index is cached by the corpus' name and content: the moved copy reuses it
        try:
            os.rename(staging, folder)
        except OSError:  # another process wrote the same world first: keep theirs
            if not (folder / "train.jsonl").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                            for r in rows), encoding="utf-8")


def world_seed(argument: str) -> int:
    """The seed of a ``world[:SEED]`` search spec, or one line saying what it takes."""
    if not argument:
        return WORLD_SEED
    if not argument.strip().isdigit():
        raise FireactError(f"search=world:{argument}: the world's seed is a whole number "
                           f"(world:{WORLD_SEED} is the default world)")
    return int(argument)


@register_search("world")
def _make_world(argument: str) -> Search:
    """BM25 over the generated world's passages: world[:SEED]"""
    from fireact_eval.tools.local_search import LocalSearch
    from fireact_eval.tools.passage_index import cut_short

    class WorldSearch(LocalSearch):
        """The world's search, whose faults know the world: a distractor is a passage
        about another entity of the same kind in the same province (a town for a town, a
        founder for a founder), a truncated passage stops before its first fact."""

        def __init__(self, seed: int) -> None:
            super().__init__(world_folder(seed) / "corpus.jsonl", progress=False)
            self.entities = generate_world(seed).entities
            self.by_kind: dict[tuple[str, str], list[str]] = {}
            for title, entity in sorted(self.entities.items()):
                self.by_kind.setdefault((entity.kind, self._where(entity)), []).append(title)

        @staticmethod
        def _where(entity: Entity) -> str:
            """Where a distractor comes from: its province; for a province, its split (a
            training row never shows a test province)."""
            return entity.split if entity.kind == "province" else entity.province

        def _entity(self, observation: str) -> tuple[str, Entity | None]:
            title = observation.partition(": ")[0]
            return title, self.entities.get(title)

        def distractor(self, query: str, observation: str) -> str | None:
            title, entity = self._entity(observation)
            if entity is None:  # not an entity's passage: the next-ranked one
                return super().distractor(query, observation)
            others = [t for t in self.by_kind[entity.kind, self._where(entity)] if t != title]
            if not others:
                return super().distractor(query, observation)
            key = " ".join(query.casefold().split())
            other = others[zlib.crc32(key.encode()) % len(others)]  # fixed by the query
            passage = self.index.by_title(other)
            return None if passage is None else self.render(passage)

        def truncate(self, observation: str) -> str:
            title, entity = self._entity(observation)
            if entity is None:
                return cut_short(observation)
            cut = observation[:len(title) + 2 + entity.first_fact].rstrip(" (,")
            return f"{cut} ..."

    return WorldSearch(world_seed(argument))
