"""The makespan lower bound of an apply: no schedule beats its operation DAG's critical path, nor the total
operation time spread over ``parallelism`` workers. Operation times are API latency only (calls made x the
emulator's latency per call), so the bound is what a zero-overhead engine would reach.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.engine import Graph

__all__ = ["Bound", "ideal_schedule", "lower_bound", "operation_seconds"]

N = TypeVar("N", bound=Hashable)


@dataclass(frozen=True)
class Bound:
    critical_path: float  # seconds along the longest dependency chain
    total: float  # seconds of every operation, one after another
    parallelism: int

    @property
    def seconds(self) -> float:
        return max(self.critical_path, self.total / self.parallelism)

    def as_dict(self) -> dict[str, Any]:
        return {
            "critical_path_s": round(self.critical_path, 4),
            "total_op_s": round(self.total, 4),
            "parallelism": self.parallelism,
            "bound_s": round(self.seconds, 4),
        }


def operation_seconds(
    calls: Mapping[str, int], *, latency: float, per_operation: Mapping[str, float] | None = None
) -> float:
    """Latency of one operation that made ``calls`` (API calls per operation id), one after another."""
    special = per_operation or {}
    return sum(count * special.get(op, latency) for op, count in calls.items())


def lower_bound(graph: Graph[Any], durations: Mapping[Any, float], parallelism: int) -> Bound:
    """``durations``: seconds per node (missing nodes take 0)."""
    if parallelism < 1:
        raise ValueError("parallelism must be >= 1")
    finish: dict[Any, float] = {}
    for node in graph.topological_order():  # dependencies first
        start = max((finish[dep] for dep in graph.dependencies(node)), default=0.0)
        finish[node] = start + durations.get(node, 0.0)
    return Bound(
        critical_path=max(finish.values(), default=0.0),
        total=sum(durations.get(node, 0.0) for node in graph),
        parallelism=parallelism,
    )


def ideal_schedule(graph: Graph[Any], durations: Mapping[Any, float], parallelism: int) -> float:
    """The makespan of the executor's own policy (ready nodes by height, then in sorted order; at most
    ``parallelism`` at once) when every operation takes exactly its latency and nothing else costs time.

    Not a lower bound: a diagnostic. ``lower_bound`` ignores that a DAG cannot keep every slot busy
    (while the base VM is forked, nothing else is ready); the gap between the two is the graph's, and the
    gap between this and a measured run is the engine's (and the machine's).
    """
    waiting = {node: len(graph.dependencies(node)) for node in graph}
    height = graph.heights()
    ready = sorted((-height[node], node) for node, count in waiting.items() if count == 0)
    running: list[tuple[float, int, Any]] = []  # (finish time, tie-breaker, node)
    now, started = 0.0, 0
    while ready or running:
        while ready and len(running) < parallelism:
            _, node = heapq.heappop(ready)
            heapq.heappush(running, (now + durations.get(node, 0.0), started, node))
            started += 1
        now, _, node = heapq.heappop(running)
        for dependent in graph.dependents(node):
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, (-height[dependent], dependent))
    return now
