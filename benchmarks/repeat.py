"""Repeated measurements: rounds alternate between parallelisms, and the median round is reported.

These machines are shared (steal time, page-cache reclaim): one apply of the same fleet moved by +-3% from
run to run. Each benchmark therefore measures every parallelism several times in one ``make bench``, in
alternating rounds so that a slow spell of the host falls on all of them alike, and reports the run with
the median figure, with every round's figure beside it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = ["median_run", "rounds"]


async def rounds(
    parallelisms: Sequence[int], repeats: int, measure: Callable[[int], Awaitable[dict[str, Any]]]
) -> list[list[dict[str, Any]]]:
    """``repeats`` rounds of ``measure(p)`` for every parallelism; the results by parallelism."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    by_parallelism: list[list[dict[str, Any]]] = [[] for _ in parallelisms]
    for _ in range(repeats):
        for i, parallelism in enumerate(parallelisms):
            by_parallelism[i].append(await measure(parallelism))
    return by_parallelism


def median_run(runs: Sequence[dict[str, Any]], key: str, *, keep: Sequence[str]) -> dict[str, Any]:
    """The run with the median ``key`` (the lower middle for an even count), plus each run's ``keep``
    figures as ``<name>_runs`` lists in measurement order."""
    if not runs:
        raise ValueError("no runs")
    ordered = sorted(runs, key=lambda run: run[key])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["repeats"] = len(runs)
    for name in keep:
        chosen[f"{name}_runs"] = [run[name] for run in runs]
    return chosen
