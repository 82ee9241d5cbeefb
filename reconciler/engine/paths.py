"""Field paths inside comparable values: format, parse, and prefix matching.

Syntax (what users write in ``lifecycle.ignore_changes`` and what plans show):

* identifier keys are joined with dots: ``resources.vcpu``;
* any other key is bracketed and JSON-quoted: ``files["/home/user/.env"]``, ``ssh_keys["alice"]``;
* list positions are bracketed integers: ``ports[0]`` (rare: lists are normally compared whole).

A path *covers* every path below it, so ``resources`` covers ``resources.vcpu``; that single rule serves
``force_new``, ``sensitive``, ``exact`` and ``ignore_changes`` alike.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "Part",
    "PathError",
    "PathSet",
    "covered",
    "covers",
    "format_path",
    "parse_path",
    "parse_paths",
    "under",
]

Part = str | int
"""One step of a path: a mapping key or a list position."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"-?[0-9]+")


class PathError(ValueError):
    """A path string that does not follow the syntax above."""


def _format_part(part: Part, first: bool) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    if _IDENTIFIER.fullmatch(part):
        return part if first else "." + part
    return "[" + json.dumps(part, ensure_ascii=False) + "]"


def format_path(parts: Sequence[Part]) -> str:
    """``("files", "/etc/x")`` -> ``files["/etc/x"]``; the empty path is ``""`` (the whole value)."""
    return "".join(_format_part(part, i == 0) for i, part in enumerate(parts))


@functools.lru_cache(maxsize=4096)  # the same few paths are parsed for every resource of a plan
def parse_path(text: str) -> tuple[Part, ...]:
    """The inverse of ``format_path``; raises ``PathError`` naming the offending position."""
    parts: list[Part] = []
    pos = 0
    decoder = json.JSONDecoder()
    while pos < len(text):
        char = text[pos]
        if char == "[":
            if text.startswith('"', pos + 1):
                try:
                    key, end = decoder.raw_decode(text, pos + 1)
                except ValueError as err:
                    raise PathError(f"unterminated quoted key at column {pos + 1} in {text!r}") from err
                parts.append(key)
                pos = end
            else:
                match = _INDEX.match(text, pos + 1)
                if match is None:
                    raise PathError(f'expected "key" or an index at column {pos + 2} in {text!r}')
                parts.append(int(match.group()))
                pos = match.end()
            if not text.startswith("]", pos):
                raise PathError(f"expected ']' at column {pos + 1} in {text!r}")
            pos += 1
            continue
        if char == ".":
            if not parts:
                raise PathError(f"path {text!r} cannot start with '.'")
            pos += 1
        elif parts:
            raise PathError(f"expected '.' or '[' at column {pos + 1} in {text!r}")
        match = _IDENTIFIER.match(text, pos)
        if match is None:
            raise PathError(f"expected a field name at column {pos + 1} in {text!r}")
        parts.append(match.group())
        pos = match.end()
    if not parts:
        raise PathError("empty path")
    return tuple(parts)


def parse_paths(texts: Iterable[str]) -> tuple[tuple[Part, ...], ...]:
    """Parse several paths at once, sorted and without duplicates."""
    return tuple(sorted({parse_path(t) for t in texts}, key=format_path))


def covers(prefix: Sequence[Part], path: Sequence[Part]) -> bool:
    """True when ``path`` is ``prefix`` itself or lies below it."""
    return len(prefix) <= len(path) and tuple(path[: len(prefix)]) == tuple(prefix)


def covered(path: Sequence[Part], prefixes: Iterable[Sequence[Part]]) -> bool:
    """True when any of ``prefixes`` covers ``path``."""
    return any(covers(prefix, path) for prefix in prefixes)


def under(path: Sequence[Part], prefixes: Iterable[Sequence[Part]]) -> bool:
    """True when any of ``prefixes`` lies strictly below ``path`` (a whole value that contains it)."""
    return any(len(prefix) > len(path) and covers(path, prefix) for prefix in prefixes)


class PathSet:
    """A set of paths answering ``covers``/``below`` in O(depth) instead of O(len(set)) per query."""

    __slots__ = ("_inner", "_lengths", "_paths")

    def __init__(self, paths: Iterable[Sequence[Part]] = ()) -> None:
        self._paths = frozenset(tuple(p) for p in paths)
        self._lengths = tuple(sorted({len(p) for p in self._paths}))
        # Every proper prefix of every member (the empty path included when the set is not empty).
        self._inner = frozenset(p[:i] for p in self._paths for i in range(len(p)))

    @classmethod
    def parse(cls, texts: Iterable[str]) -> PathSet:
        if isinstance(texts, (tuple, frozenset)):
            # Configs hand the same few tuples/frozensets of paths to every comparison: parse each once
            # (a PathSet is immutable, so sharing one is safe).
            return _parsed(texts)
        return cls(parse_path(t) for t in texts)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def covers(self, path: tuple[Part, ...]) -> bool:
        """Some member is ``path`` or lies above it (``covered(path, members)``)."""
        if not self._paths:
            return False
        return any(path[:n] in self._paths for n in self._lengths if n <= len(path))

    def below(self, path: tuple[Part, ...]) -> bool:
        """Some member lies strictly below ``path`` (``under(path, members)``)."""
        return path in self._inner


@functools.lru_cache(maxsize=1024)
def _parsed(texts: tuple[str, ...] | frozenset[str]) -> PathSet:
    return PathSet(parse_path(t) for t in texts)
