"""Search tools, chosen by one string spec (``--metadata search=...``).

A search tool is any ``Callable[[str], str]``: query in, observation text out.  Backends
register a factory under a name; ``make_search("name:argument")`` builds one.  Built
tools are memoised per spec, so every task and turn in a run shares one loaded index.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from fireact_eval.errors import FireactError

Search = Callable[[str], str]
NULL_OBSERVATION = "None"  # what FireAct's search says when it finds nothing


class ToolError(Exception):
    """A tool call failed after its retries; the agent sees it as an observation, the run
    goes on, and it is counted per sample as ``tool_errors``."""


_FACTORIES: dict[str, Callable[[str], Search]] = {}


def register_search(name: str):
    """Decorator: ``@register_search("local")`` on a ``factory(argument: str) -> Search``."""

    def decorate(factory: Callable[[str], Search]) -> Callable[[str], Search]:
        _FACTORIES[name] = factory
        return factory

    return decorate


@cache
def make_search(spec: str) -> Search:
    """Build the search tool named by ``spec``: ``"backend"`` or ``"backend:argument"``."""
    name, _, argument = str(spec).partition(":")
    if name not in _FACTORIES:
        raise FireactError(
            f"unknown search spec {spec!r}; valid backends: "
            + ", ".join(f"{n} ({f.__doc__.strip().splitlines()[0]})" for n, f in _FACTORIES.items())
        )
    return _FACTORIES[name](argument)


# Importing the backends registers them.
from fireact_eval.tools import local_search, replay, serpapi  # noqa: E402,F401
