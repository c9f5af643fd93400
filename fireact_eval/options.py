"""Settings schemas: a dataclass whose fields are documented options, and what is generated
from it (parsing a ``--metadata`` mapping, argparse flags in groups), so each setting is
declared once with its default, type, help and group.

Modelled on inspect_ai's small typed option groups: ``option(default, "help", group)`` on
each field; ``from_mapping`` parses and checks values by the field's type (``2.7`` is not an
integer, ``"two"`` is not a number, an unknown key is an error naming the valid ones);
``add_arguments`` / ``from_namespace`` give a command line with one argparse group per
option group.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from fireact_eval.errors import FireactError


def option(default: Any, help: str, group: str, *, choices: Sequence[str] = (),
           flags: Sequence[str] = (), changes_results: bool = True) -> Any:
    """A dataclass field that is a documented option: its ``help`` line, its ``group``
    (``prompt``, ``loop``, ``tool`` ...), the values it may take, extra CLI ``flags``
    (the first generated one is ``--field-name``), and whether it can change a run's
    numbers (one that only changes its speed is no part of a run's identity)."""
    metadata = {"help": help, "group": group, "choices": tuple(choices), "flags": tuple(flags),
                "changes_results": changes_results}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _integer(name: str, value: Any) -> int:
    """``2`` and ``"2"`` are integers; ``2.7``, ``"two"`` and ``True`` are not (``int()``
    would silently floor ``2.7``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise FireactError(f"{name} must be an integer, got {value!r}")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise FireactError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FireactError(f"{name} must be a number, got {value!r}") from None


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "1", "yes"):
        return True
    if str(value).strip().lower() in ("false", "0", "no"):
        return False
    raise FireactError(f"{name} must be true or false, got {value!r}")


def _items(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [v for v in str(value).split(",") if v.strip()] if isinstance(value, str) else [value]


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number"}


def _strictly(name: str, kind: Any, value: Any) -> None:
    """A typed file (YAML) gives a number as a number and a boolean as a boolean: the
    string ``"3"`` or ``"yes"`` there is a quoting slip, refused (a command line's words
    are all strings, and are parsed)."""
    if kind in _KIND_NAMES and isinstance(value, str):
        raise FireactError(f"{name} must be {_KIND_NAMES[kind]} (unquoted), got the string "
                           f"{value!r}")
    if kind in (int, float) and isinstance(value, bool):
        raise FireactError(f"{name} must be {_KIND_NAMES[kind]}, got {value!r}")


def parse_value(name: str, kind: Any, value: Any, choices: Sequence[str] = (),
                strict: bool = False) -> Any:
    """``value`` (from YAML, ``--metadata`` or a command line) as the field's type;
    ``strict``: from a typed file, where a string is no number or boolean."""
    if strict:
        _strictly(name, kind, value)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is bool:
        parsed: Any = _boolean(name, value)
    elif kind is int:
        parsed = _integer(name, value)
    elif kind is float:
        parsed = _number(name, value)
    elif origin is tuple and args and args[0] is int:
        parsed = tuple(_integer(name, v) for v in _items(value))
    elif list[str] in (kind, *args):  # a comma list; or, typed ``list[str] | str``, a word
        items = [str(v).strip() for v in _items(value)]
        keep_word = str in args and isinstance(value, str) and value in choices
        parsed = value if keep_word else items
    else:
        parsed = str(value)
    if choices and kind is str and parsed not in choices:
        raise FireactError(f"unknown {name}={parsed!r}; valid values: {', '.join(choices)}")
    return parsed


def parse_pairs(items: str | Sequence[str], flag: str, strict: bool = True) -> dict[str, str]:
    """``k=v,k=v`` (or its items already split) as a mapping, the one reader of that syntax
    (``--metadata``, ``--model_args`` as lm-eval records them).  ``strict``: an item with no
    ``=`` is an error naming ``flag``; otherwise it is skipped (a file another tool wrote)."""
    found = {}
    for item in items.split(",") if isinstance(items, str) else items:
        key, sep, value = item.partition("=")
        if not sep:
            if strict:
                raise FireactError(f"{flag} takes key=value, got {item!r}")
            continue
        found[key.strip()] = value
    return found


def _fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def from_mapping(cls: type, values: Mapping[str, Any], ignore: Sequence[str] = (),
                 strict: bool = False) -> Any:
    """An instance of ``cls`` from ``values``: each present key parsed by its field's type,
    the rest defaulted; a key that is no field (and not in ``ignore``) is an error;
    ``strict``: the values come from a typed file (no string for a number or boolean)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known - set(ignore))
    if unknown:
        raise FireactError(f"unknown key(s): {', '.join(unknown)}; valid keys: "
                           f"{', '.join(f.name for f in dataclasses.fields(cls))}")
    kwargs = {}
    for f, kind in _fields(cls):
        if f.name in values:
            kwargs[f.name] = parse_value(f.name, kind, values[f.name], f.metadata.get("choices"),
                                         strict)
        elif _default(f) is dataclasses.MISSING:
            raise FireactError(f"{f.name} is required")
    return cls(**kwargs)


def from_known_keys(cls: type, values: Mapping[str, Any] | None, strict: bool = False) -> Any:
    """``from_mapping`` of the keys that are fields of ``cls``: for a mapping that several
    schemas share (a task's metadata holds rollout, data and lm-eval keys)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return from_mapping(cls, {k: v for k, v in (values or {}).items() if k in names},
                        strict=strict)


def add_arguments(parser: argparse.ArgumentParser, cls: type,
                  exclude: Sequence[str] = ()) -> None:
    """A ``--field-name`` flag per option of ``cls``, in one argparse group per option group;
    fields without a default are required; a boolean that defaults to False is a switch."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f, kind in _fields(cls):
        if f.name in exclude or "help" not in f.metadata:
            continue
        group_name = f.metadata["group"]
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(f"{group_name} options")
        group = groups[group_name]
        flags = [f"--{f.name.replace('_', '-')}", *f.metadata["flags"]]
        default = _default(f)
        help_text = f.metadata["help"]
        if default is dataclasses.MISSING:
            group.add_argument(*flags, dest=f.name, required=True, help=help_text)
        elif kind is bool and default is False:
            group.add_argument(*flags, dest=f.name, action="store_true", help=help_text)
        else:
            shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            group.add_argument(*flags, dest=f.name, default=None,
                               choices=f.metadata["choices"] if kind is str and
                               f.metadata["choices"] else None,
                               help=f"{help_text} (default: {shown})" if shown not in ("", None)
                               else help_text)


def from_namespace(cls: type, namespace: argparse.Namespace, **fixed: Any) -> Any:
    """An instance of ``cls`` from the flags ``add_arguments`` made (unset ones default)."""
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)
              if getattr(namespace, f.name, None) is not None}
    return from_mapping(cls, {**values, **fixed})
