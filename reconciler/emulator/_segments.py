"""Path templates matched by whole segments: the first template (in the order added) that matches a path,
found with a dict lookup per shape of template rather than a scan of them all.

A template is indexable when each ``/``-separated segment is literal text or one ``{name}`` parameter (of
Starlette's default type); a parameter matches any non-empty segment, so an index answers what a scan of
the templates' regexes in order (``{name}`` as ``[^/]+``, anchored at both ends) would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Generic, TypeVar

__all__ = ["SegmentIndex", "parse_template"]

V = TypeVar("V")

_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")  # Starlette's parameter name, default (str) type

# (position, literal text) pairs, (position, parameter name) pairs
_Parsed = tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]]
# order added, parameters, value
_Hit = tuple[int, tuple[tuple[int, str], ...], Any]
# literal positions, their getter, literal texts -> first template with them
_Group = tuple[tuple[int, ...], Callable[[list[str]], Any], dict[Any, _Hit]]


def parse_template(template: str) -> _Parsed | None:
    """The literal and parameter segments of ``template``; None when it is not indexable."""
    literal: list[tuple[int, str]] = []
    params: list[tuple[int, str]] = []
    for position, segment in enumerate(template.split("/")):
        if "{" not in segment and "}" not in segment:
            literal.append((position, segment))
        elif _PARAM.fullmatch(segment):
            params.append((position, segment[1:-1]))
        else:
            return None
    return tuple(literal), tuple(params)


class SegmentIndex(Generic[V]):
    """Templates grouped by segment count and by which positions are literal; each group maps its literal
    texts to the first template added with them."""

    def __init__(self) -> None:
        self._groups: dict[int, list[_Group]] = {}
        self._added = 0

    def add(self, template: str, value: V, *, order: int | None = None) -> bool:
        """Index ``template`` (``order``: its rank among all candidates, default the count added so far);
        False, and nothing indexed, when it is not indexable."""
        parsed = parse_template(template)
        if parsed is None:
            return False
        literal, params = parsed
        rank = self._added if order is None else order
        self._added += 1
        positions = tuple(position for position, _ in literal)
        groups = self._groups.setdefault(len(template.split("/")), [])
        group = next((g for g in groups if g[0] == positions), None)
        if group is None:
            group = (positions, itemgetter(*positions), {})
            groups.append(group)
        _, getter, table = group
        table.setdefault(getter(template.split("/")), (rank, params, value))
        return True

    def find(self, path: str) -> tuple[int, V, dict[str, str]] | None:
        """(order, value, parameters) of the first template matching ``path``, or None."""
        segments = path.split("/")
        best: _Hit | None = None
        for _, getter, table in self._groups.get(len(segments), ()):
            hit = table.get(getter(segments))
            if (
                hit is not None
                and (best is None or hit[0] < best[0])
                and all(segments[position] for position, _ in hit[1])
            ):
                best = hit
        if best is None:
            return None
        rank, params, value = best
        return rank, value, {name: segments[position] for position, name in params}
