"""Offline search: BM25 over a passage corpus, indexed once and memory-mapped after.

Two specs, one engine (``passage_index``), differing only in their default corpus:
- ``wiki``: HotpotQA's Wikipedia, 5.2M abstracts of the 2017 English Wikipedia, from the
  Hub on first use (the default for every task but the demo);
- ``local``: the embedded 48-passage demo corpus.
Either takes ``:SOURCE``: a JSONL or Parquet corpus, a Hub dataset id or local folder in
BEIR's layout, or a prebuilt index folder (``fireact-eval index wiki --out DIR``); and
``?max_chars=N`` (default 600).  The index of a corpus is built once into
``$FIREACT_EVAL_CACHE/index/`` (or wherever ``fireact-eval index wiki --out`` put it).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import parse_qsl

from fireact_eval.errors import FireactError
from fireact_eval.paths import cache_root
from fireact_eval.tasks import TASKS_DIR
from fireact_eval.tools import register_search
from fireact_eval.tools.corpus import WIKI_DATASET, CorpusSource
from fireact_eval.tools.passage_index import Passage, PassageIndex, build_index, is_index, trim

log = logging.getLogger(__name__)
DEMO_CORPUS = Path(TASKS_DIR) / "data" / "demo_corpus.jsonl"
NO_RESULT = "No results found."
DEFAULT_MAX_CHARS = 600
DISTRACTOR_DEPTH = 5  # hits read for a distractor: the clean one may rank anywhere in them


def index_path(source: CorpusSource) -> Path:
    """Where the index of ``source`` is cached."""
    return cache_root() / "index" / source.key()


def open_index(location: str | Path, out: Path | None = None,
               progress: bool = True, rebuild: bool = False) -> PassageIndex:
    """The index of a corpus: a prebuilt index folder as it is; else the cached one, built
    first if missing (or into ``out``; ``rebuild``: built again even if there)."""
    source = CorpusSource(str(location))
    if not source.is_hub and is_index(source.path):
        try:
            return PassageIndex(source.path)
        except (OSError, ValueError) as err:  # tantivy's errors for unreadable files
            raise FireactError(f"the search index {source.path} is damaged ({err}); rebuild it "
                               "with `fireact-eval index wiki --source CORPUS --out DIR`") from None
    target = Path(out) if out else index_path(source)
    if rebuild and is_index(target):
        shutil.rmtree(target)
    if is_index(target):
        try:
            return PassageIndex(target)
        except (OSError, ValueError) as err:  # ours to rebuild: say so and go on
            log.warning("search index %s is damaged (%s); rebuilding it", target, err)
            shutil.rmtree(target, ignore_errors=True)
    passages, total = source.passages()
    build_index(passages, target, total=total, source=source.location, progress=progress)
    return PassageIndex(target)


class _RenderedPool(Sequence[str]):
    """The index's passages as observations, fetched one at a time: a 5M-passage pool
    costs nothing until ``noise=random`` draws from it."""

    def __init__(self, search: LocalSearch) -> None:
        self._search = search

    def __len__(self) -> int:
        return len(self._search.index)

    def __getitem__(self, i):  # type: ignore[override]
        return self._search.render(self._search.index[i])


class LocalSearch:
    """``search(query)``: the passage titled exactly ``query`` if there is one, else the
    best BM25 passage, as ``"Title: text"`` cut at a sentence end near ``max_chars``."""

    def __init__(self, source: str | Path, max_chars: int = DEFAULT_MAX_CHARS,
                 progress: bool = True) -> None:
        self.max_chars = max_chars
        self.index = open_index(source, progress=progress)

    def render(self, passage: Passage) -> str:
        text = f"{passage.title}: {passage.text}" if passage.title else passage.text
        return trim(text, self.max_chars)

    @property
    def pool(self) -> Sequence[str]:
        """Every response this tool can give: what ``noise=random`` draws from."""
        return _RenderedPool(self)

    def __call__(self, query: str) -> str:
        passage = self.index.by_title(query)
        if passage is None:
            best = self.index.search(query, k=1)
            passage = best[0] if best else None
        return NO_RESULT if passage is None else self.render(passage)

    def batch(self, queries: Sequence[str]) -> list[str]:
        return [self(q) for q in queries]

    def distractor(self, query: str, observation: str) -> str | None:
        """The best-ranked passage for ``query`` that is not the clean result: a related
        but wrong one (``noise=distractor``); None when nothing else matches."""
        for passage in self.index.search(query, k=DISTRACTOR_DEPTH):
            rendered = self.render(passage)
            if rendered != observation:
                return rendered
        return None


def hotpotqa_passages(rows: Iterable[dict]) -> Iterable[dict[str, str]]:
    """HotpotQA's own context paragraphs (``context.title`` / ``context.sentences`` of the
    Hub dataset), one passage per distinct title: a small real corpus for its questions."""
    seen: set[str] = set()
    for row in rows:
        for title, sentences in zip(row["context"]["title"], row["context"]["sentences"],
                                    strict=True):
            if title not in seen:
                seen.add(title)
                yield {"title": title, "text": "".join(sentences).strip()}


def write_corpus(passages: Iterable[dict[str, str]], out: str | Path) -> int:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8") as fh:
        for passage in passages:
            fh.write(json.dumps(passage, ensure_ascii=False) + "\n")
            count += 1
    return count


def _make(argument: str, default: str | Path) -> LocalSearch:
    location, _, query = argument.partition("?")
    options = dict(parse_qsl(query))
    unknown = set(options) - {"max_chars"}
    if unknown:
        raise FireactError(f"unknown search option(s) {sorted(unknown)}; valid: max_chars")
    try:
        max_chars = int(options.get("max_chars", DEFAULT_MAX_CHARS))
    except ValueError:
        raise FireactError(f"max_chars must be an integer, got {options['max_chars']!r}") from None
    return LocalSearch(location or default, max_chars=max_chars)


@register_search("wiki")
def _make_wiki(argument: str) -> LocalSearch:
    """BM25 over HotpotQA's 5.2M Wikipedia abstracts: wiki[:SOURCE][?max_chars=N]"""
    return _make(argument, WIKI_DATASET)


@register_search("local")
def _make_local(argument: str) -> LocalSearch:
    """BM25 over the demo corpus, or any corpus: local[:SOURCE][?max_chars=N]"""
    return _make(argument, DEMO_CORPUS)
