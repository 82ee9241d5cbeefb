"""``gather_limited``: bounded, ordered, and stops starting calls after a failure."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import pytest

from reconciler.providers._entries import gather_limited


def test_results_in_call_order_with_at_most_n_in_flight() -> None:
    in_flight = peak = 0

    async def call(i: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (i % 3))
        in_flight -= 1
        return i * 10

    calls: list[Callable[[], Awaitable[int]]] = [functools.partial(call, i) for i in range(25)]
    assert asyncio.run(gather_limited(calls, 4)) == [i * 10 for i in range(25)]
    assert peak == 4
    assert asyncio.run(gather_limited([], 4)) == []


def test_the_first_failure_is_raised_and_later_calls_are_not_started() -> None:
    started: list[int] = []

    async def call(i: int) -> int:
        started.append(i)
        await asyncio.sleep(0)
        if i == 2:
            raise LookupError("boom")
        await asyncio.sleep(0.01)
        return i

    async def run() -> None:
        calls: list[Callable[[], Awaitable[int]]] = [functools.partial(call, i) for i in range(50)]
        with pytest.raises(LookupError, match="boom"):
            await gather_limited(calls, 3)
        await asyncio.sleep(0.05)  # nothing keeps running in the background

    asyncio.run(run())
    assert sorted(started) == [0, 1, 2]
