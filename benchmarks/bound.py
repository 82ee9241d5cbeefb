"""The makespan lower bound of an apply: no schedule beats its operation DAG's critical path, nor the total
operation time spread over ``parallelism`` workers. Operation times are API latency only (calls made x the
emulator's latency per call), so the bound is what a zero-overhead engine would reach.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from reconciler.engine import Graph

__all__ = ["Bound", "lower_bound", "operation_seconds"]

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
