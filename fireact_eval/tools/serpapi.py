"""Google search through SerpAPI (``google-search-results``, imported as ``serpapi``).

The key is read only from ``SERPAPI_API_KEY``: never from model args or metadata, which
lm-eval writes into result files, and it is scrubbed from every error message.  The client
library neither checks HTTP status nor sets a sane timeout, so both are done here, with
retries (exponential backoff with jitter) on connection errors, timeouts, truncated or
badly encoded bodies, 429, 5xx, malformed JSON, replies of an unexpected shape and
``{"error": ...}`` replies.  A rejected key or an exhausted quota stops the run at once
(``FatalToolError``): every later call would fail the same way, and a run whose searches
all failed is not a result.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, quote_plus

from fireact_eval.errors import FireactError
from fireact_eval.tools import NULL_OBSERVATION, register_search
from fireact_eval.tools.cache import CachedSearch, ToolCache
from fireact_eval.tools.retry import Retryable, RetryPolicy

DEFAULT_BASE_URL = "https://serpapi.com"
NO_RESULTS_ERROR = "hasn't returned any results"  # SerpAPI's way of saying "nothing found"
# SerpAPI's error texts for a bad key and for a used-up plan (HTTP 401 / 429 with these)
FATAL_ERRORS = ("invalid api key", "run out of searches", "searches for the month are exhausted")


class FatalToolError(FireactError):
    """The search backend refuses every call (bad key, quota): stop the run."""


def extract_observation(data: dict[str, Any]) -> str:
    """FireAct's order: answer box answer, snippet, first highlighted word, then the first
    organic snippet; ``None`` when there is none of these.  A reply of another shape raises
    ``Retryable`` (it says so)."""
    box = data.get("answer_box") or {}
    organic = data.get("organic_results") or []
    words = box.get("snippet_highlighted_words") if isinstance(box, dict) else None
    if (not isinstance(box, dict) or not isinstance(organic, list)
            or not all(isinstance(r, dict) for r in organic[:1])
            or not isinstance(words or [], list)):
        raise Retryable(f"reply of an unexpected shape: {str(data)[:100]}")
    if box.get("answer"):
        return str(box["answer"])
    if box.get("snippet"):
        return str(box["snippet"])
    if words:
        return str(words[0])
    if organic and organic[0].get("snippet"):
        return str(organic[0]["snippet"])
    return NULL_OBSERVATION


class SerpApiSearch:
    """``search(query)``: one Google query (gl=us, hl=en) with retries; raises ToolError."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = RetryPolicy.timeout,
        retries: int = RetryPolicy.retries,
        backoff: float = RetryPolicy.backoff,
    ) -> None:
        self.api_key, self.base_url = api_key, base_url.rstrip("/")
        self.policy = RetryPolicy(timeout=timeout, retries=retries, backoff=backoff)

    @classmethod
    def from_env(cls) -> SerpApiSearch:
        key = os.environ.get("SERPAPI_API_KEY", "").strip()
        if not key:
            raise FireactError(
                "search=serpapi needs a SerpAPI key in the SERPAPI_API_KEY environment variable "
                "(never in model args or --metadata: lm-eval writes those into result files)"
            )
        try:
            timeout = float(os.environ.get("SERPAPI_TIMEOUT", "10"))
        except ValueError:
            raise FireactError("SERPAPI_TIMEOUT must be a number of seconds") from None
        return cls(key, base_url=os.environ.get("SERPAPI_BASE_URL", DEFAULT_BASE_URL),
                   timeout=timeout)

    def _scrub(self, text: str) -> str:
        """The key out of a message, as it is and as it appears in a URL."""
        for form in {self.api_key, quote(self.api_key, safe=""), quote_plus(self.api_key)}:
            text = text.replace(form, "***")
        return text

    def _fetch(self, query: str) -> str:
        data = self._reply(query)
        return data if isinstance(data, str) else extract_observation(data)

    def _reply(self, query: str) -> dict | str:
        """The reply's JSON, or the observation of a search that found nothing."""
        import requests
        from serpapi import GoogleSearch

        client = GoogleSearch({"q": query, "api_key": self.api_key, "gl": "us", "hl": "en"})
        client.BACKEND, client.timeout = self.base_url, self.policy.timeout
        try:
            response = client.get_response()
            data = response.json()
        except requests.RequestException as err:  # connection, timeout, truncated, encoding
            raise Retryable(type(err).__name__) from None
        except ValueError:
            data = None
        error = str(data.get("error", "")) if isinstance(data, dict) else ""
        if response.status_code in (401, 403) or any(e in error.lower() for e in FATAL_ERRORS):
            raise FatalToolError(self._scrub(
                f"SerpAPI refused the search (HTTP {response.status_code}"
                f"{': ' + error if error else ''}); check SERPAPI_API_KEY and the plan's quota"))
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        if data is None:
            raise Retryable(f"malformed JSON (HTTP {response.status_code})")
        if not isinstance(data, dict):
            raise Retryable("unexpected reply")
        if error:
            if NO_RESULTS_ERROR in error:
                return NULL_OBSERVATION
            raise Retryable(f"error reply: {error}")
        return data

    def distractor(self, query: str, observation: str) -> str | None:
        """The first organic result whose snippet is not the clean observation (Google's
        next result: ``noise=distractor``)."""
        data = self.policy.run(lambda: self._reply(query), "SerpAPI", self._scrub)
        organic = data.get("organic_results") if isinstance(data, dict) else None
        for result in organic if isinstance(organic, list) else []:
            snippet = result.get("snippet") if isinstance(result, dict) else None
            if snippet and str(snippet) != observation:
                return str(snippet)
        return None

    def __call__(self, query: str) -> str:
        return self.policy.run(lambda: self._fetch(query), "SerpAPI", self._scrub)


@register_search("serpapi")
def _make_serpapi(argument: str) -> CachedSearch:
    """Google via SerpAPI, key from SERPAPI_API_KEY, cached on disk: serpapi"""
    return CachedSearch(SerpApiSearch.from_env(), "serpapi:google", ToolCache())
