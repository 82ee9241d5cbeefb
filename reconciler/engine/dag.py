"""A small directed acyclic graph: nodes, dependency edges, topological order, cycles.

It knows nothing of VMs or addresses: nodes are any hashable, orderable values.
An edge ``add_edge(a, b)`` means "a depends on b": b comes first in ``topological_order``.
Every iteration is sorted so that output is deterministic.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["CycleError", "Graph"]


class _Orderable(Hashable, Protocol):
    # ``Any``, not ``object``: ``str.__lt__`` only accepts ``str``, so an ``object`` parameter would make
    # mypy reject ``Graph[str]`` (parameters are contravariant).
    def __lt__(self, other: Any, /) -> bool: ...


N = TypeVar("N", bound=_Orderable)


class CycleError(ValueError):
    """The graph has cycles; ``cycles`` holds each one as a closed path (first node repeated last)."""

    def __init__(self, cycles: tuple[tuple[object, ...], ...]) -> None:
        self.cycles = cycles
        text = "; ".join(" -> ".join(str(n) for n in cycle) for cycle in cycles)
        super().__init__(f"dependency cycle: {text}")


# The adjacency of a node without edges: shared, so that a graph of 20,000 mostly edge-less nodes does not
# hold 40,000 empty sets (216 bytes each). A node gets a set of its own with its first edge.
_NO_EDGES: frozenset[Any] = frozenset()


def _own_set(table: dict[N, AbstractSet[N]], node: N) -> set[N]:
    current = table[node]
    if isinstance(current, set):
        return current
    owned: set[N] = set(current)
    table[node] = owned
    return owned


class Graph(Generic[N]):
    """Mutable while being built; read with the query methods."""

    def __init__(self, nodes: Iterable[N] = ()) -> None:
        self._deps: dict[N, AbstractSet[N]] = {}
        self._dependents: dict[N, AbstractSet[N]] = {}
        self._cycles: tuple[tuple[N, ...], ...] | None = None  # known answer of ``cycles``; reset by edits
        for node in nodes:
            self.add_node(node)

    def add_node(self, node: N) -> None:
        self._cycles = None
        self._deps.setdefault(node, _NO_EDGES)
        self._dependents.setdefault(node, _NO_EDGES)

    def add_edge(self, node: N, dependency: N) -> None:
        """Record that ``node`` depends on ``dependency`` (both are added if missing)."""
        # ``add_node`` inlined: planning a large fleet adds tens of thousands of edges.
        self._cycles = None
        deps, dependents = self._deps, self._dependents
        for member in (node, dependency):
            if member not in deps:
                deps[member] = dependents[member] = _NO_EDGES
        _own_set(deps, node).add(dependency)
        _own_set(dependents, dependency).add(node)

    def __contains__(self, node: object) -> bool:
        return node in self._deps

    def __len__(self) -> int:
        return len(self._deps)

    def __iter__(self) -> Iterator[N]:
        return iter(sorted(self._deps))

    @property
    def nodes(self) -> tuple[N, ...]:
        return tuple(sorted(self._deps))

    @property
    def edges(self) -> tuple[tuple[N, N], ...]:
        """Every ``(node, dependency)`` pair, sorted."""
        return tuple(sorted((n, d) for n, deps in self._deps.items() for d in deps))

    def dependencies(self, node: N) -> tuple[N, ...]:
        return tuple(sorted(self._deps[node]))

    def dependents(self, node: N) -> tuple[N, ...]:
        return tuple(sorted(self._dependents[node]))

    def ancestors(self, node: N) -> frozenset[N]:
        """Everything ``node`` depends on, directly or not."""
        return self._reach(node, self._deps)

    def descendants(self, node: N) -> frozenset[N]:
        """Everything that depends on ``node``, directly or not."""
        return self._reach(node, self._dependents)

    @staticmethod
    def _reach(start: N, adjacency: dict[N, AbstractSet[N]]) -> frozenset[N]:
        seen: set[N] = set()
        stack = list(adjacency[start])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(adjacency[current])
        return frozenset(seen)

    def subgraph(self, keep: Iterable[N]) -> Graph[N]:
        """The induced graph on ``keep``."""
        kept = set(keep)
        sub: Graph[N] = Graph(kept)
        for node in kept:
            for dep in self._deps[node] & kept:
                sub.add_edge(node, dep)
        return sub

    def reversed(self) -> Graph[N]:
        """The same nodes with every edge flipped (destroy order)."""
        rev: Graph[N] = Graph(self._deps)
        for node, dep in self.edges:
            rev.add_edge(dep, node)
        return rev

    def cycles(self) -> tuple[tuple[N, ...], ...]:
        """One closed path per strongly connected component that is a cycle, deterministic.

        Remembered until the graph changes: building an apply graph checks it, and so does the executor.
        """
        if self._cycles is None:
            self._cycles = () if self._peels() else self._find_cycles()
        return self._cycles

    def _peels(self) -> bool:
        """Whether removing dependency-free nodes one by one empties the graph (Kahn): true exactly when it
        is acyclic, and several times cheaper than finding the components."""
        remaining = {node: len(deps) for node, deps in self._deps.items()}
        stack = [node for node, count in remaining.items() if count == 0]
        removed = 0
        while stack:
            node = stack.pop()
            removed += 1
            for dependent in self._dependents[node]:
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    stack.append(dependent)
        return removed == len(remaining)

    def _find_cycles(self) -> tuple[tuple[N, ...], ...]:
        found: list[tuple[N, ...]] = []
        for component in self._strongly_connected():
            members = set(component)
            if len(component) == 1 and component[0] not in self._deps[component[0]]:
                continue
            start = min(members)
            path = self._cycle_path(start, members)
            found.append((*path, start))
        return tuple(sorted(found))

    def _cycle_path(self, start: N, members: set[N]) -> list[N]:
        # Shortest path back to start inside the component (BFS), so the reported cycle is minimal.
        parents: dict[N, N] = {}
        frontier = [start]
        while frontier:
            nxt: list[N] = []
            for node in frontier:
                for dep in sorted(self._deps[node] & members):
                    if dep == start:
                        path = [node]
                        while path[-1] != start:
                            path.append(parents[path[-1]])
                        return list(reversed(path))
                    if dep not in parents:
                        parents[dep] = node
                        nxt.append(dep)
            frontier = nxt
        return [start]  # pragma: no cover - a component always closes

    def _strongly_connected(self) -> list[list[N]]:
        # Tarjan's algorithm, iterative so deep chains do not hit the recursion limit.
        index: dict[N, int] = {}
        low: dict[N, int] = {}
        on_stack: set[N] = set()
        stack: list[N] = []
        result: list[list[N]] = []
        counter = 0
        for root in sorted(self._deps):
            if root in index:
                continue
            work: list[tuple[N, Iterator[N]]] = [(root, iter(sorted(self._deps[root])))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                node, children = work[-1]
                advanced = False
                for child in children:
                    if child not in index:
                        index[child] = low[child] = counter
                        counter += 1
                        stack.append(child)
                        on_stack.add(child)
                        work.append((child, iter(sorted(self._deps[child]))))
                        advanced = True
                        break
                    if child in on_stack:
                        low[node] = min(low[node], index[child])
                if advanced:
                    continue
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[N] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    result.append(sorted(component))
        return result

    def heights(self) -> dict[N, int]:
        """Per node, the number of nodes on its longest chain of dependents, itself included (a node
        nothing depends on has height 1). The graph must be acyclic (nodes on a cycle are left out)."""
        # The adjacency sets unsorted: a height does not depend on the order of the walk.
        dependents = self._dependents
        remaining = {node: len(dependents[node]) for node in self._deps}
        stack = [node for node, count in remaining.items() if count == 0]
        height: dict[N, int] = {}
        while stack:
            node = stack.pop()
            height[node] = 1 + max((height[d] for d in dependents[node]), default=0)
            for dependency in self._deps[node]:
                remaining[dependency] -= 1
                if remaining[dependency] == 0:
                    stack.append(dependency)
        return height

    def topological_order(self) -> tuple[N, ...]:
        """Dependencies first; ties broken by sort order. Raises ``CycleError`` naming every cycle."""
        return tuple(n for level in self.levels() for n in level)

    def levels(self) -> tuple[tuple[N, ...], ...]:
        """Nodes grouped by depth: level k depends only on levels < k."""
        cycles = self.cycles()
        if cycles:
            raise CycleError(cycles)
        remaining = {n: len(deps) for n, deps in self._deps.items()}
        ready = sorted(n for n, count in remaining.items() if count == 0)
        levels: list[tuple[N, ...]] = []
        while ready:
            levels.append(tuple(ready))
            nxt: set[N] = set()
            for node in ready:
                for dependent in self._dependents[node]:
                    remaining[dependent] -= 1
                    if remaining[dependent] == 0:
                        nxt.add(dependent)
            ready = sorted(nxt)
        return tuple(levels)
