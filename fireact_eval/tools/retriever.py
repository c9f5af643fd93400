"""A served retriever, for scale-out: ``search=retriever:URL``.

Speaks the retrieval-server protocol of Search-R1 / FlashRAG-style and veRL agent setups:
``POST URL`` with ``{"queries": [...], "topk": k, "return_scores": true}``, reply
``{"result": [[{"document": {"contents": "\\"Title\\"\\ntext", ...}, "score": s}, ...], ...]}``
(one list of hits per query).  One request carries all of a turn's queries.  This is how a
dense index of 21M passages on a GPU box (E5 + FAISS) sits behind the harness.  Timeouts,
retries and the on-disk tool cache as for SerpAPI; a reply of the wrong shape is a tool
error naming the URL and what was wrong (not retried: the server will not change its mind).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.tools import ToolError, register_search
from fireact_eval.tools.cache import CachedSearch, ToolCache
from fireact_eval.tools.local_search import DEFAULT_MAX_CHARS, DISTRACTOR_DEPTH, NO_RESULT
from fireact_eval.tools.passage_index import trim
from fireact_eval.tools.retry import Retryable, RetryPolicy

log = logging.getLogger(__name__)


class WrongShape(ToolError):
    pass


def render_hit(hit: Any, where: str) -> str:
    """One hit as ``"Title: text"``: FlashRAG's ``contents`` is the quoted title, a newline,
    then the text; ``title`` / ``text`` fields are taken as well."""
    doc = hit.get("document", hit) if isinstance(hit, dict) else None
    if not isinstance(doc, dict):
        raise WrongShape(f"{where}: a hit is not an object with a 'document'")
    if isinstance(doc.get("contents"), str):
        first, sep, rest = doc["contents"].partition("\n")
        title, text = (first.strip().strip('"'), rest.strip()) if sep else ("", first.strip())
    elif isinstance(doc.get("text"), str):
        title, text = str(doc.get("title") or ""), doc["text"]
    else:
        raise WrongShape(f"{where}: a document has neither 'contents' nor 'text'")
    return f"{title}: {text}" if title else text


class RetrieverSearch:
    """``batch(queries)``: one POST for all of them; the best hit of each, rendered."""

    def __init__(self, url: str, max_chars: int = DEFAULT_MAX_CHARS,
                 policy: RetryPolicy | None = None) -> None:
        self.url, self.max_chars = url, max_chars
        self.policy = policy or RetryPolicy()

    def _post(self, queries: list[str], topk: int = 1) -> Any:
        import requests

        try:
            response = requests.post(self.url, json={"queries": queries, "topk": topk,
                                                     "return_scores": True},
                                     timeout=self.policy.timeout)
        except (requests.ConnectionError, requests.Timeout) as err:
            raise Retryable(type(err).__name__) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ToolError(f"retriever {self.url}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise Retryable(f"malformed JSON (HTTP {response.status_code})") from None

    def batch(self, queries: Sequence[str]) -> list[str | ToolError]:
        queries = list(queries)
        if not queries:
            return []
        data = self.policy.run(lambda: self._post(queries), f"retriever {self.url}")
        try:
            return self._observations(data, len(queries))
        except WrongShape as err:
            log.warning("%s", err)
            raise

    def _observations(self, data: Any, n: int) -> list[str | ToolError]:
        where = f"retriever {self.url} answered the wrong shape"
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list) or len(result) != n:
            got = f"{len(result)} lists" if isinstance(result, list) else repr(data)[:100]
            raise WrongShape(f"{where}: expected {{'result': [one list of hits per query]}} "
                             f"for {n} queries, got {got}")
        observations: list[str | ToolError] = []
        for hits in result:
            if not isinstance(hits, list):
                raise WrongShape(f"{where}: a query's hits are not a list")
            observations.append(trim(render_hit(hits[0], where), self.max_chars)
                                 if hits else NO_RESULT)
        return observations

    def distractor(self, query: str, observation: str) -> str | None:
        """The best-ranked hit that is not the clean one (``noise=distractor``)."""
        where = f"retriever {self.url} answered the wrong shape"
        data = self.policy.run(lambda: self._post([query], DISTRACTOR_DEPTH),
                               f"retriever {self.url}")
        self._observations(data, 1)  # the shape checked
        for hit in data["result"][0]:
            rendered = trim(render_hit(hit, where), self.max_chars)
            if rendered != observation:
                return rendered
        return None

    def __call__(self, query: str) -> str:
        [answer] = self.batch([query])
        if isinstance(answer, ToolError):
            raise answer
        return answer


@register_search("retriever")
def _make_retriever(argument: str) -> CachedSearch:
    """a retrieval server (Search-R1 / FlashRAG protocol), cached on disk: retriever:URL"""
    if not argument.startswith(("http://", "https://")):
        raise FireactError(f"search=retriever needs a URL: retriever:http://HOST:PORT/retrieve, "
                           f"got {argument!r}")
    return CachedSearch(RetrieverSearch(argument), f"retriever:{argument}", ToolCache())
