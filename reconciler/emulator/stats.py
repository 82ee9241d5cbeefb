"""Per-operation request counters, read by reliability tests through ``GET /_emulator/stats``."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["OperationStats"]

# Outcome names, in the order they are reported.
_OUTCOMES = ("requests", "injected_unavailable", "injected_rate_limited", "dropped")


class OperationStats:
    """Thread-safe counters keyed by operation id.

    ``requests`` counts every request that matched an operation (including those failed or dropped by
    fault injection); ``statuses`` counts the status codes actually sent (a dropped request sends none).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: dict[str, Counter[str]] = {}
        self._statuses: dict[str, Counter[int]] = {}

    def count(self, operation: str, outcome: str) -> None:
        with self._lock:
            counts = self._outcomes.get(operation)
            if counts is None:  # not setdefault: it would build a Counter per call
                counts = self._outcomes[operation] = Counter()
            counts[outcome] += 1

    def status(self, operation: str, status: int) -> None:
        with self._lock:
            counts = self._statuses.get(operation)
            if counts is None:
                counts = self._statuses[operation] = Counter()
            counts[status] += 1

    def reset(self) -> None:
        with self._lock:
            self._outcomes.clear()
            self._statuses.clear()

    def requests(self, operation: str) -> int:
        with self._lock:
            return self._outcomes.get(operation, Counter())["requests"]

    def snapshot(self) -> dict[str, Any]:
        """``{"operations": {op: {...}}, "totals": {...}}`` with sorted keys and status codes as strings."""
        with self._lock:
            operations: dict[str, Any] = {}
            totals: Counter[str] = Counter()
            total_statuses: Counter[int] = Counter()
            for op in sorted(set(self._outcomes) | set(self._statuses)):
                outcomes = self._outcomes.get(op, Counter())
                statuses = self._statuses.get(op, Counter())
                entry: dict[str, Any] = {name: outcomes[name] for name in _OUTCOMES}
                entry["statuses"] = {str(code): statuses[code] for code in sorted(statuses)}
                operations[op] = entry
                totals.update(outcomes)
                total_statuses.update(statuses)
            total: dict[str, Any] = {name: totals[name] for name in _OUTCOMES}
            total["statuses"] = {str(code): total_statuses[code] for code in sorted(total_statuses)}
            return {"operations": operations, "totals": total}
