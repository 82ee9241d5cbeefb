"""The platform-neutral part of the emulators' operation tables: the spec row, name resolution for
``--latency-op`` and the (method, path) -> operation matcher the fault layer uses.

Each platform's ``operations`` module keeps its own table, aliases and URL prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._segments import SegmentIndex

__all__ = ["OperationMatcher", "OperationSpec", "resolve_operation"]


@dataclass(frozen=True)
class OperationSpec:
    method: str
    path: str  # Starlette template, e.g. /v1/vms/{id}
    operation_id: str


def resolve_operation(
    name: str, operations: Iterable[OperationSpec], aliases: Mapping[str, str], *, what: str = "operation"
) -> str:
    """Resolve an operation id or alias (case-insensitive) to the operation id; ValueError if unknown."""
    specs = tuple(operations)
    wanted = name.strip().lower().replace("-", "").replace("_", "")
    for spec in specs:
        if spec.operation_id.lower() == wanted:
            return spec.operation_id
    if wanted in aliases:
        return aliases[wanted]
    known = ", ".join(sorted({s.operation_id for s in specs} | set(aliases)))
    raise ValueError(f"unknown {what} {name!r}; known: {known}")


def _template_regex(template: str) -> re.Pattern[str]:
    # ``{name:path}`` spans segments; ``{name}`` is one segment.
    pattern = re.sub(r"\{[a-z_]+:path\}", ".+", template)
    return re.compile(re.sub(r"\{[a-z_]+\}", "[^/]+", pattern) + "$")


class OperationMatcher:
    """Find the operation of (method, path): O(1) for literal paths, a :class:`SegmentIndex` lookup for
    templates of whole-segment parameters, a regex scan for the others (``{name:path}``), the first
    matching spec in table order winning. Every spec is served under each of ``prefixes``."""

    def __init__(self, specs: Iterable[OperationSpec], prefixes: Iterable[str] = ("",)) -> None:
        self._literal: dict[tuple[str, str], str] = {}
        self._indexed: dict[str, SegmentIndex[str]] = {}
        self._templated: list[tuple[int, str, re.Pattern[str], str]] = []  # the rest, with their rank
        roots = tuple(prefixes)
        rank = 0
        for spec in specs:
            for prefix in roots:
                path = prefix + spec.path
                if "{" not in path:
                    self._literal[(spec.method, path)] = spec.operation_id
                    continue
                index = self._indexed.setdefault(spec.method, SegmentIndex())
                if not index.add(path, spec.operation_id, order=rank):
                    self._templated.append((rank, spec.method, _template_regex(path), spec.operation_id))
                rank += 1

    def operation_for(self, method: str, path: str) -> str | None:
        found = self._literal.get((method, path))
        if found is not None:
            return found
        index = self._indexed.get(method)
        hit = index.find(path) if index is not None else None
        for rank, spec_method, regex, operation_id in self._templated:
            if hit is not None and rank > hit[0]:
                break
            if spec_method == method and regex.match(path):
                return operation_id
        return hit[1] if hit is not None else None
