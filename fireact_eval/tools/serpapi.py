"""Google search through SerpAPI (``google-search-results``, imported as ``serpapi``).

The key is read only from ``SERPAPI_API_KEY``: never from model args or metadata, which
lm-eval writes into result files, and it is scrubbed from every error message.  The client
library neither checks HTTP status nor sets a sane timeout, so both are done here, with
retries (exponential backoff with jitter) on connection errors, timeouts, 429, 5xx,
malformed JSON and ``{"error": ...}`` replies.
"""

from __future__ import annotations

import os
from typing import Any

from fireact_eval.errors import FireactError
from fireact_eval.tools import NULL_OBSERVATION, register_search
from fireact_eval.tools.cache import CachedSearch, ToolCache
from fireact_eval.tools.retry import Retryable, RetryPolicy

DEFAULT_BASE_URL = "https://serpapi.com"
NO_RESULTS_ERROR = "hasn't returned any results"  # SerpAPI's way of saying "nothing found"


def extract_observation(data: dict[str, Any]) -> str:
    """FireAct's order: answer box answer, snippet, first highlighted word, then the first
    organic snippet; ``None`` when there is none of these."""
    box = data.get("answer_box") or {}
    if box.get("answer"):
        return str(box["answer"])
    if box.get("snippet"):
        return str(box["snippet"])
    if box.get("snippet_highlighted_words"):
        return str(box["snippet_highlighted_words"][0])
    organic = data.get("organic_results") or []
    if organic and organic[0].get("snippet"):
        return str(organic[0]["snippet"])
    return NULL_OBSERVATION


class SerpApiSearch:
    """``search(query)``: one Google query (gl=us, hl=en) with retries; raises ToolError."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
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
        return cls(key, base_url=os.environ.get("SERPAPI_BASE_URL", DEFAULT_BASE_URL))

    def _scrub(self, text: str) -> str:
        return text.replace(self.api_key, "***")

    def _fetch(self, query: str) -> str:
        import requests
        from serpapi import GoogleSearch

        client = GoogleSearch({"q": query, "api_key": self.api_key, "gl": "us", "hl": "en"})
        client.BACKEND, client.timeout = self.base_url, self.policy.timeout
        try:
            response = client.get_response()
        except (requests.ConnectionError, requests.Timeout) as err:
            raise Retryable(type(err).__name__) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            raise Retryable(f"malformed JSON (HTTP {response.status_code})") from None
        if not isinstance(data, dict):
            raise Retryable("unexpected reply")
        if "error" in data:
            if NO_RESULTS_ERROR in str(data["error"]):
                return NULL_OBSERVATION
            raise Retryable(f"error reply: {data['error']}")
        return extract_observation(data)

    def __call__(self, query: str) -> str:
        return self.policy.run(lambda: self._fetch(query), "SerpAPI", self._scrub)


@register_search("serpapi")
def _make_serpapi(argument: str) -> CachedSearch:
    """Google via SerpAPI, key from SERPAPI_API_KEY, cached on disk: serpapi"""
    return CachedSearch(SerpApiSearch.from_env(), "serpapi:google", ToolCache())
