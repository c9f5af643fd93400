"""Search tools, chosen by one string spec (``--metadata search=...``).

A search tool is called with a query and returns the observation text (``Search``).  It may
also answer a whole turn's queries in one call (``BatchSearch.batch``: one HTTP request to a
retrieval server for every live trajectory) and list the responses it can give
(``PooledSearch.pool``: what ``noise=random`` draws from).  Backends register a factory under
a name; the built-in ones are imported only when first asked for (``BUILTIN``), so a run that
searches a local index never imports the HTTP clients.  ``make_search("name:argument")``
builds one; built tools are memoised per spec, so every task and turn in a run shares one
loaded index.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Protocol, runtime_checkable

from fireact_eval.errors import FireactError

__all__ = [  # the public API (docs/python-api.md)
    "Search",
    "BatchSearch",
    "PooledSearch",
    "ToolError",
    "NULL_OBSERVATION",
    "ask",
    "as_tool_error",
    "register_search",
    "search_factory",
    "make_search",
    "response_pool",
]

NULL_OBSERVATION = "None"  # what FireAct's search says when it finds nothing
MAX_CONCURRENT_CALLS = 32  # a turn's queries wait on the network together, up to this many


class Search(Protocol):
    """The one thing every tool does: a query in, the observation text out; a failure
    raises (``ToolError`` after its own retries; any other exception is made one)."""

    def __call__(self, query: str) -> str: ...


@runtime_checkable
class BatchSearch(Protocol):
    """A tool that answers many queries in one call, in order; a failed query comes back
    as its ``ToolError`` in its place."""

    def batch(self, queries: Sequence[str]) -> list[str | ToolError]: ...


@runtime_checkable
class PooledSearch(Protocol):
    """A tool that can list the responses it gives: ``noise=random`` replaces an
    observation with one of these (FireAct: "a random other result")."""

    @property
    def pool(self) -> Sequence[str]: ...


def response_pool(tool: Search) -> Sequence[str]:
    """The tool's responses for ``noise=random``; empty when it cannot list them."""
    return tool.pool if isinstance(tool, PooledSearch) else ()


class ToolError(Exception):
    """A tool call failed after its retries; the agent sees it as an observation, the run
    goes on, and it is counted per sample as ``tool_errors``."""


def ask(tool: Search, queries: Sequence[str]) -> list[str | ToolError]:
    """One turn's queries to one tool, answers in order, a failed query as its ToolError:
    in one call where the tool takes a batch, else concurrently (network latency is then
    paid about once per turn, not once per query)."""
    if isinstance(tool, BatchSearch):
        try:
            return tool.batch(queries)
        except Exception as err:  # the whole batch failed
            return [as_tool_error(err)] * len(queries)

    def call(query: str) -> str | ToolError:
        try:
            return tool(query)
        except Exception as err:
            return as_tool_error(err)

    if len(queries) <= 1:
        return [call(q) for q in queries]
    with ThreadPoolExecutor(min(MAX_CONCURRENT_CALLS, len(queries))) as pool:
        return list(pool.map(call, queries))


def as_tool_error(err: Exception) -> ToolError:
    """Any failure inside one tool call is that call's tool error, so one odd reply never
    loses the other trajectories; a ``FireactError`` (a bad key, an exhausted quota: every
    later call would fail too) is fatal and stops the run."""
    if isinstance(err, FireactError):
        raise err
    if isinstance(err, ToolError):
        return err
    return ToolError(f"{type(err).__name__}: {err}")


# Built-in backends: name -> the module whose import registers it.
BUILTIN = {
    "wiki": "fireact_eval.tools.local_search",
    "local": "fireact_eval.tools.local_search",
    "replay": "fireact_eval.tools.replay",
    "retriever": "fireact_eval.tools.retriever",
    "serpapi": "fireact_eval.tools.serpapi",
    "world": "fireact_eval.tools.world",
}
_FACTORIES: dict[str, Callable[[str], Search]] = {}


def register_search(name: str):
    """Decorator: ``@register_search("local")`` on a ``factory(argument: str) -> Search``;
    its docstring's first line is what the list of valid specs shows.  A name registered
    twice, or a built-in name claimed by another module, is refused."""

    def decorate(factory: Callable[[str], Search]) -> Callable[[str], Search]:
        if name in _FACTORIES or BUILTIN.get(name, factory.__module__) != factory.__module__:
            raise ValueError(f"search backend {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return decorate


def _factory(name: str) -> Callable[[str], Search] | None:
    if name not in _FACTORIES and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    return _FACTORIES.get(name)


def search_factory(spec: str) -> tuple[Callable[[str], Search], str]:
    """The factory and argument ``spec`` names (``"backend"`` or ``"backend:argument"``),
    without building anything: an unknown backend is one error listing the valid ones."""
    name, _, argument = str(spec).partition(":")
    factory = _factory(name)
    if factory is None:
        valid = {n: _factory(n) for n in [*BUILTIN, *_FACTORIES]}
        raise FireactError(
            f"unknown search spec {spec!r}; valid backends: "
            + ", ".join(f"{n} ({f.__doc__.strip().splitlines()[0]})" for n, f in valid.items())
        )
    return factory, argument


@cache
def make_search(spec: str) -> Search:
    """Build the search tool named by ``spec`` (once per process: an index opens once)."""
    factory, argument = search_factory(spec)
    return factory(argument)
