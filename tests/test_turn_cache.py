"""The turn cache (``--use_cache``) keeps only real replies: a failed one is asked again."""

from __future__ import annotations

from types import SimpleNamespace

from fireact_eval.harness.backend import _cached_generate


class _Backend:
    """An lm-eval LM as ``_cached_generate`` sees it: a cache and a ``generate_until``
    whose replies are scripted per call."""

    def __init__(self, replies: list[list[str | None]]) -> None:
        self.cache_hook = SimpleNamespace(dbdict={})
        self.replies, self.calls = replies, []

    def generate_until(self, instances, disable_tqdm=False):
        self.calls.append([inst.args[0] for inst in instances])
        return self.replies.pop(0)


def test_failed_or_empty_replies_are_not_cached():
    requests = [("ctx-a", {}), ("ctx-b", {}), ("ctx-c", {})]
    lm = _Backend([[None, "", "Thought: ok"], ["Thought: a", "Thought: b"]])
    assert _cached_generate(lm, requests) == [None, "", "Thought: ok"]
    assert len(lm.cache_hook.dbdict) == 1
    # the rerun against a healthy server asks again for exactly the two that failed
    assert _cached_generate(lm, requests) == ["Thought: a", "Thought: b", "Thought: ok"]
    assert lm.calls[-1] == ["ctx-a", "ctx-b"]


def test_an_empty_entry_of_an_older_cache_is_a_miss():
    earlier = _Backend([["Thought: kept"]])
    _cached_generate(earlier, [("ctx", {})])
    lm = _Backend([["Thought: fresh"]])
    lm.cache_hook.dbdict = {k: "" for k in earlier.cache_hook.dbdict}  # as older runs left it
    assert _cached_generate(lm, [("ctx", {})]) == ["Thought: fresh"]
