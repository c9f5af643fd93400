"""A persistent tool cache: one sqlite file, keyed by backend and query.

A rerun costs zero API calls.  WAL mode lets many readers (parallel runs) share the file
while one writes.  Failures are never cached, so a retry later can still succeed.  A cache
that cannot be used (a folder, an unwritable place, another program's database) is one
error when it opens, before any rollout: never a search failure on every call.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from fireact_eval.errors import FireactError
from fireact_eval.paths import cache_root
from fireact_eval.tools import Search, ToolError, ask

log = logging.getLogger(__name__)
COLUMNS = ["backend", "query", "observation"]


def default_cache_path() -> Path:
    """``$FIREACT_EVAL_TOOL_CACHE``, else ``tool_cache.sqlite`` in the cache folder."""
    return Path(os.environ.get("FIREACT_EVAL_TOOL_CACHE") or cache_root() / "tool_cache.sqlite")


class ToolCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        if self.path.is_dir():
            raise FireactError(f"tool cache {self.path} is a folder; give a file path "
                               "($FIREACT_EVAL_TOOL_CACHE or --path)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FireactError(f"tool cache {self.path}: cannot make its folder "
                               f"({err.strerror})") from None
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError):
                raise
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.warning("tool cache %s is damaged (%s); moved aside to %s, starting afresh",
                        self.path, err, aside)
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    part.replace(f"{aside}{suffix}")
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        """Connect and set up; a fresh file opened by two processes at once can report
        "database is locked" while the other one switches it to WAL: wait and retry."""
        db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        for attempt in range(50):
            try:
                with db:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute(
                        "CREATE TABLE IF NOT EXISTS calls (backend TEXT, query TEXT,"
                        " observation TEXT, PRIMARY KEY (backend, query))"
                    )
                    columns = [row[1] for row in db.execute("PRAGMA table_info(calls)")]
                if columns != COLUMNS:
                    db.close()
                    raise FireactError(
                        f"tool cache {self.path} is another database (its table 'calls' has "
                        f"columns {', '.join(columns)}); point $FIREACT_EVAL_TOOL_CACHE "
                        "at another file")
                return db
            except sqlite3.OperationalError as err:
                if "locked" in str(err) and attempt < 49:
                    time.sleep(0.05 + 0.05 * random.random())
                    continue
                db.close()
                raise FireactError(f"tool cache {self.path}: {err}") from None
            except sqlite3.DatabaseError:
                db.close()
                raise
        raise AssertionError("unreachable")

    def _run(self, sql: str, args: tuple = (), write: bool = False) -> list[tuple]:
        """One statement under the lock; sqlite's failure (a full disk, a file made read-only
        mid-run) is the run's error, not a failed search."""
        try:
            with self._lock:
                if not write:
                    return self._db.execute(sql, args).fetchall()
                with self._db:
                    return [(self._db.execute(sql, args).rowcount,)]
        except sqlite3.Error as err:
            raise FireactError(f"tool cache {self.path}: {err}") from None

    def get(self, backend: str, query: str) -> str | None:
        rows = self._run("SELECT observation FROM calls WHERE backend = ? AND query = ?",
                         (backend, query))
        return rows[0][0] if rows else None

    def put(self, backend: str, query: str, observation: str) -> None:
        self._run("INSERT OR REPLACE INTO calls VALUES (?, ?, ?)", (backend, query, observation),
                  write=True)

    def observations(self, backend: str) -> list[str]:
        """Distinct cached responses of a backend, in a stable order (a noise pool)."""
        return [r[0] for r in self._run("SELECT DISTINCT observation FROM calls WHERE backend = ?"
                                        " ORDER BY observation", (backend,))]

    def stats(self) -> dict[str, int]:
        return dict(self._run("SELECT backend, COUNT(*) FROM calls GROUP BY backend"))

    def clear(self, backend: str | None = None) -> int:
        if backend is None:
            return self._run("DELETE FROM calls", write=True)[0][0]
        return self._run("DELETE FROM calls WHERE backend = ?", (backend,), write=True)[0][0]


class CachedSearch:
    """Wraps a search tool: answers from the cache, else calls it and stores the answer.
    A batch asks the tool only for the queries not cached, once each."""

    def __init__(self, search: Search, backend: str, cache: ToolCache) -> None:
        self.search, self.backend, self.cache = search, backend, cache

    @property
    def pool(self) -> list[str]:
        return self.cache.observations(self.backend)

    def __call__(self, query: str) -> str:
        query = query.strip()
        hit = self.cache.get(self.backend, query)
        if hit is not None:
            return hit
        observation = self.search(query)  # a ToolError propagates and is not cached
        self.cache.put(self.backend, query, observation)
        return observation

    @property
    def distracts(self) -> bool:
        """Whether the wrapped tool gives distractors (``perturb.check_backend``)."""
        return callable(getattr(self.search, "distractor", None))

    def distractor(self, query: str, observation: str) -> str | None:
        """The wrapped tool's distractor, cached beside its answers (an empty string for
        none), so a rerun asks the backend nothing."""
        backend, query = f"{self.backend}#distractor", query.strip()
        hit = self.cache.get(backend, query)
        if hit is None:
            hit = self.search.distractor(query, observation) or ""  # type: ignore[attr-defined]
            self.cache.put(backend, query, hit)
        return hit or None

    def batch(self, queries: Sequence[str]) -> list[str | ToolError]:
        queries = [q.strip() for q in queries]
        answers: dict[str, str | ToolError] = {}
        for query in queries:
            hit = self.cache.get(self.backend, query)
            if hit is not None:
                answers[query] = hit
        missing = list(dict.fromkeys(q for q in queries if q not in answers))
        for query, answer in zip(missing, ask(self.search, missing), strict=True):
            answers[query] = answer
            if not isinstance(answer, ToolError):
                self.cache.put(self.backend, query, answer)
        return [answers[q] for q in queries]
