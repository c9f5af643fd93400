"""Passage corpora for the local search backends: where they come from and what key their
index is cached under.

A source is one of:
- a JSONL file of ``{"title", "text"}`` rows (``_id`` optional), read line by line;
- a Parquet file with ``title`` / ``text`` (/ ``_id``) columns, read in record batches;
- a Hugging Face dataset with a ``corpus`` config and split, as BEIR's corpora are laid out
  on the Hub (``mteb/hotpotqa``), or a local folder in the same layout; read through
  ``datasets`` (so ``HF_HUB_OFFLINE`` and the datasets cache apply), memory-mapped Arrow.

Every reader streams: nothing holds the whole corpus in memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import iter_jsonl
from fireact_eval.tools.passage_index import Passage

# HotpotQA's Wikipedia: the intro paragraphs of the 2017 English Wikipedia that its questions
# were written from, 5,233,329 abstracts (BEIR's `hotpotqa` corpus, ~1.6 GB; CC BY-SA 4.0).
WIKI_DATASET = "mteb/hotpotqa"
HUB_CONFIG = HUB_SPLIT = "corpus"
_BATCH = 8192
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def _passage(row: Any, where: str) -> Passage:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise FireactError(f"{where}: expected a row with a string 'text' field "
                           f"(and 'title', optional '_id'), got {str(row)[:120]!r}")
    title = row.get("title")
    return Passage("" if title is None else str(title), row["text"],
                   str(row.get("_id", row.get("id", "")) or ""))


@dataclass(frozen=True)
class CorpusSource:
    """Where a corpus comes from: a local file or folder, or a Hub dataset id."""

    location: str

    @property
    def path(self) -> Path:
        return Path(self.location).expanduser()

    @property
    def is_hub(self) -> bool:
        """``owner/name`` that is not a local path: a Hugging Face dataset id."""
        return (not self.path.exists() and _HUB_ID.fullmatch(self.location) is not None
                and self.path.suffix not in (".jsonl", ".json", ".parquet"))

    def key(self) -> str:
        """What the index is cached under: the content of local files (so an edited corpus
        is re-indexed), the id of a Hub dataset (so a built index is found offline)."""
        if self.is_hub:
            return "hub-" + self.location.replace("/", "--")
        if not self.path.exists():
            raise FireactError(f"search corpus not found: {self.path}")
        digest = hashlib.sha256()
        files = [self.path] if self.path.is_file() else sorted(
            p for p in self.path.rglob("*") if p.is_file())
        for file in files:
            digest.update(str(file.relative_to(self.path.parent)).encode() + b"\0")
            with file.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        return f"{self.path.stem}-{digest.hexdigest()[:20]}"

    def passages(self) -> tuple[Iterator[Passage], int | None]:
        """The passages, streamed, and their count when it is known up front."""
        if self.is_hub or self.path.is_dir():
            return self._dataset()
        if not self.path.is_file():
            raise FireactError(f"search corpus not found: {self.path}")
        if self.path.suffix == ".parquet":
            return self._parquet()
        return self._jsonl(), None

    def _jsonl(self) -> Iterator[Passage]:
        for line_no, row in iter_jsonl(self.path, what="search corpus"):
            yield _passage(row, f"{self.path}, line {line_no}")

    def _parquet(self) -> tuple[Iterator[Passage], int]:
        import pyarrow.parquet as pq

        try:
            file = pq.ParquetFile(self.path)
        except Exception as err:  # pyarrow raises several types for an unreadable file
            raise FireactError(f"{self.path}: not a readable Parquet file ({err})") from None
        if "text" not in file.schema_arrow.names:
            raise FireactError(f"{self.path}: no 'text' column (has: "
                               f"{', '.join(file.schema_arrow.names)})")
        rows = (row for batch in file.iter_batches(_BATCH) for row in batch.to_pylist())
        return self._rows(rows), file.metadata.num_rows

    def _dataset(self) -> tuple[Iterator[Passage], int]:
        import datasets

        try:
            ds = datasets.load_dataset(self.location, HUB_CONFIG, split=HUB_SPLIT)
        except Exception as err:  # network, offline mode, missing repo: all one message
            raise CorpusUnavailable(self.location, err) from None
        if "text" not in ds.column_names:
            raise FireactError(f"{self.location}: the '{HUB_CONFIG}' split has no 'text' "
                               f"column (has: {', '.join(ds.column_names)})")
        rows = (dict(zip(batch, values, strict=True)) for batch in ds.iter(batch_size=_BATCH)
                for values in zip(*batch.values(), strict=True))
        return self._rows(rows), len(ds)

    def _rows(self, rows: Iterable[Any]) -> Iterator[Passage]:
        for row_no, row in enumerate(rows):
            yield _passage(row, f"{self.location}, row {row_no}")


class CorpusUnavailable(FireactError):
    """The corpus cannot be loaded (no network, offline mode, no such dataset)."""

    def __init__(self, location: str, cause: BaseException) -> None:
        reason = " ".join(str(cause).split())[:300] or type(cause).__name__
        super().__init__(
            f"the search corpus {location!r} could not be loaded and no index of it is built "
            f"({type(cause).__name__}: {reason}). Ways out: (1) a local corpus file: "
            "--metadata search=wiki:PATH (JSONL or Parquet rows of title, text); (2) a prebuilt "
            "index: run `fireact-eval index wiki` where the Hub is reachable (same "
            "FIREACT_EVAL_CACHE, or --out DIR and then search=wiki:DIR); (3) another search "
            "backend: search=serpapi (SERPAPI_API_KEY) or search=replay:PATH"
        )
