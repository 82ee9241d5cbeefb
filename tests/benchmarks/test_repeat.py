"""Repeated benchmark rounds: alternating order, the median run reported with every run's figure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from benchmarks.repeat import median_run, rounds


def test_rounds_alternate_between_parallelisms() -> None:
    order: list[int] = []

    async def measure(parallelism: int) -> dict[str, Any]:
        order.append(parallelism)
        return {"parallelism": parallelism, "n": len(order)}

    found = asyncio.run(rounds((10, 32), 3, measure))
    assert order == [10, 32, 10, 32, 10, 32]  # a slow spell of the host falls on both alike
    assert [[r["n"] for r in runs] for runs in found] == [[1, 3, 5], [2, 4, 6]]
    with pytest.raises(ValueError):
        asyncio.run(rounds((10,), 0, measure))


def test_the_median_run_is_reported_with_each_runs_figures() -> None:
    runs = [
        {"measured_s": 2.0, "efficiency": 0.80, "calls": 1},
        {"measured_s": 1.9, "efficiency": 0.84, "calls": 2},
        {"measured_s": 2.1, "efficiency": 0.77, "calls": 3},
    ]
    chosen = median_run(runs, "measured_s", keep=("measured_s", "efficiency"))
    assert chosen["calls"] == 1 and chosen["efficiency"] == 0.80  # the middle one, whole
    assert chosen["repeats"] == 3
    assert chosen["efficiency_runs"] == [0.80, 0.84, 0.77]  # in measurement order
    assert chosen["measured_s_runs"] == [2.0, 1.9, 2.1]
    assert median_run(runs[:2], "measured_s", keep=())["calls"] == 2  # even count: the lower middle
    assert all("repeats" not in run for run in runs)  # the measured runs themselves are left as they were
    with pytest.raises(ValueError):
        median_run([], "measured_s", keep=())
