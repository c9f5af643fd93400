"""A BM25 passage index on disk (tantivy): built streaming, opened memory-mapped.

Why tantivy rather than bm25s (measured in ``benchmarks/bench_search.py``, table in the
README): it indexes from a stream with a fixed writer heap, so 5.2M Wikipedia abstracts fit
in a few hundred MB of RAM where bm25s holds every token list at once; it builds ~5x faster
on one core; and it keeps positions, which the bigram boost below needs.

Ranking: BM25 over ``title + text`` (Snowball English stemming, NLTK's English stopwords),
plus each adjacent pair of query words as a phrase within one word of each other, boosted
by ``BIGRAM_BOOST``.  On 2,067 real Wikipedia paragraphs with one SQuAD question each the
gold paragraph comes first for 80.4 % of the questions (unigrams alone: 78.7 %; with
tantivy's 33-word stopword list: 77.2 %).  A query that is exactly an article's title
(case and spacing aside) returns that article, as ReAct's Wikipedia ``search[entity]`` does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from fireact_eval.errors import FireactError

INDEX_VERSION = "2"  # bump when the schema or analysis changes: old indexes are rebuilt
MANIFEST = "fireact_index.json"  # written last: an index folder without it is not an index
BIGRAM_BOOST, BIGRAM_SLOP = 0.3, 1
WRITER_HEAP_BYTES = 256_000_000  # tantivy flushes a segment to disk when this fills

# NLTK's English stopword list, the words the simple tokenizer can produce (no apostrophes).
STOPWORDS = sorted("""
a about above after again against ain all am an and any are aren as at be because been before
being below between both but by can couldn d did didn do does doesn doing don down during each
few for from further had hadn has hasn have haven having he her here hers herself him himself
his how i if in into is isn it its itself just ll m ma me mightn more most mustn my myself
needn no nor not now o of off on once only or other our ours ourselves out over own re s same
shan she should shouldn so some such t than that the their theirs them themselves then there
these they this those through to too under until up ve very was wasn we were weren what when
where which while who whom why will with won wouldn y you your yours yourself yourselves
""".split())


@dataclass(frozen=True)
class Passage:
    title: str
    text: str
    id: str = ""


def normalize_title(text: str) -> str:
    """The exact-title key: case, surrounding quotes and runs of spaces do not count."""
    return " ".join(text.strip().strip("\"'").split()).casefold()


def _analyzer():
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.custom_stopword(STOPWORDS))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=False, tokenizer_name="en")  # title + text, ranked
    builder.add_text_field("key", stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("ord", stored=False, indexed=True, fast=True)  # corpus order
    builder.add_bytes_field("passage", stored=True)  # JSON [title, text, id]: stored only
    return builder.build()


def _open(path: Path):
    import tantivy

    index = tantivy.Index(_schema(), path=str(path), reuse=True)
    index.register_tokenizer("en", _analyzer())
    return index


def is_index(path: Path) -> bool:
    """A finished index of this version (the manifest is written after the last commit)."""
    try:
        return json.loads((path / MANIFEST).read_text())["version"] == INDEX_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ours_to_replace(path: Path) -> bool:
    """Whether ``path`` may be removed to put an index there: nothing, an empty folder, or a
    folder an index build made (its manifest, of any version).  Anything else is a user's."""
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    return not any(path.iterdir()) or (path / MANIFEST).is_file()


def build_index(
    passages: Iterable[Passage], out: Path, total: int | None = None, source: str = "",
    progress: bool = True,
) -> int:
    """Index ``passages`` into ``out`` and return how many were indexed.

    Streams: memory is the writer heap (``WRITER_HEAP_BYTES``), whatever the corpus size.
    Built in a temporary sibling folder and renamed into place, so a crash never leaves
    half an index at ``out``; if another process finished the same index first, theirs
    is kept.  A folder at ``out`` that no index build made is never removed: it is refused
    before anything is read (issue 45: it held a user's notes, results, even the corpus).
    """

    out = Path(out)
    if not ours_to_replace(out):
        raise FireactError(f"{out} holds files that are not a search index; give an empty "
                           "or new folder for the index")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
    try:
        count = _write(passages, tmp, total, progress)
        if count == 0:
            raise FireactError(f"search corpus is empty: {source or out}")
        (tmp / MANIFEST).write_text(json.dumps(
            {"version": INDEX_VERSION, "passages": count, "source": source}))
        tmp.chmod(0o755)
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished first (or a stale index is in the way)
            if not is_index(out):
                if not ours_to_replace(out):  # appeared while we built
                    raise FireactError(f"{out} holds files that are not a search index; "
                                       "give an empty or new folder for the index") from None
                shutil.rmtree(out, ignore_errors=True)
                os.replace(tmp, out)
        return count
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write(passages: Iterable[Passage], folder: Path, total: int | None, progress: bool) -> int:
    """Add every passage and commit.  If anything fails (or is interrupted) half way, the
    writer is rolled back and its threads joined before the caller removes the folder, so
    no thread of it writes there afterwards."""
    import tantivy

    writer = _open(folder).writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)
    count = 0
    try:
        for passage in tqdm(passages, total=total, desc="indexing passages", unit="passage",
                            unit_scale=True, disable=not progress, mininterval=1.0):
            doc = tantivy.Document()
            doc.add_text("body", f"{passage.title} {passage.text}")
            doc.add_text("key", normalize_title(passage.title))
            doc.add_unsigned("ord", count)
            doc.add_bytes("passage", json.dumps([passage.title, passage.text, passage.id],
                                                ensure_ascii=False).encode())
            writer.add_document(doc)
            count += 1
        if count and progress:
            print(f"committing and merging the index of {count:,} passages ...",
                  file=sys.stderr, flush=True)
        writer.commit()
    except BaseException:
        writer.rollback()
        writer.wait_merging_threads()
        raise
    writer.wait_merging_threads()
    return count


class PassageIndex(Sequence[Passage]):
    """A built index, opened read-only (tantivy memory-maps its files).

    Also a read-only sequence of its passages in corpus order, without loading them:
    ``noise=random`` draws from it.
    """

    def __init__(self, path: Path) -> None:
        import tantivy

        self._tantivy = tantivy
        self.path = Path(path)
        if not is_index(self.path):
            raise FireactError(f"not a fireact-eval search index (or an older version): {path}")
        self.manifest = json.loads((self.path / MANIFEST).read_text())
        self._index = _open(self.path)
        self._schema = self._index.schema
        self._analyzer = _analyzer()
        self._searcher = self._index.searcher()

    def __len__(self) -> int:
        return int(self.manifest["passages"])

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        query = self._tantivy.Query.term_query(self._schema, "ord", i % len(self))
        [(_, address)] = self._searcher.search(query, 1, count=False).hits
        return self._passage(address)

    def __iter__(self) -> Iterator[Passage]:
        return (self[i] for i in range(len(self)))

    def _passage(self, address) -> Passage:
        return Passage(*json.loads(self._searcher.doc(address)["passage"][0]))

    def _hits(self, query, limit: int, by_ord: bool = False):
        if by_ord:  # the first of several passages with one title: the article's opening
            return self._searcher.search(query, limit, count=False, order_by_field="ord",
                                         order=self._tantivy.Order.Asc).hits
        return self._searcher.search(query, limit, count=False).hits

    def by_title(self, query: str) -> Passage | None:
        """The passage whose title is exactly ``query`` (case and spacing aside)."""
        key = normalize_title(query)
        if not key:
            return None
        hits = self._hits(self._tantivy.Query.term_query(self._schema, "key", key), 1, True)
        return self._passage(hits[0][1]) if hits else None

    def search(self, query: str, k: int = 1) -> list[Passage]:
        """The ``k`` best passages by BM25 with the bigram boost; [] when no word matches."""
        Query, should = self._tantivy.Query, self._tantivy.Occur.Should
        words = self._analyzer.analyze(query)
        if not words:
            return []
        clauses = [(should, Query.term_query(self._schema, "body", w)) for w in words]
        clauses += [
            (should, Query.boost_query(
                Query.phrase_query(self._schema, "body", [a, b], slop=BIGRAM_SLOP), BIGRAM_BOOST))
            for a, b in zip(words, words[1:], strict=False) if a != b
        ]
        hits = self._hits(Query.boolean_query(clauses), k)
        return [self._passage(address) for score, address in hits if score > 0]


_SENTENCE_START = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")  # between sentences
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)")


def trim(text: str, max_chars: int) -> str:
    """Cut at the last sentence end within ``max_chars`` (if that keeps at least half of
    it), else at a word boundary with `` ...``."""
    if len(text) <= max_chars:
        return text
    head = text[: max_chars + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= max_chars // 2:
        return head[: ends[-1]]
    return text[:max_chars].rsplit(" ", 1)[0] + " ..."


def cut_short(text: str) -> str:
    """A passage cut before its answer-bearing part, as a snippet cut short ends (`` ...``):
    its first sentence of several, or the first half of a single one (``noise=truncated``
    where the backend does not know where its facts are)."""
    sentences = _SENTENCE_START.split(text.strip(), maxsplit=1)
    if len(sentences) > 1:
        return f"{sentences[0]} ..."
    words = text.split()
    return " ".join(words[:max(1, len(words) // 2)]) + " ..."
