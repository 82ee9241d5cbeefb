"""The replay floor of benchmark 1: the requests an apply sent, sent again with no engine at all.

The apply under test is recorded at the exchange (method, URL, headers, body and answer of every call,
by operation). After the emulator is reset, the same calls are replayed in the same dependency order and
parallelism (a pool of workers taking ready operations by height, as the executor does), through the same
HTTP/1.1 client, with nothing else: no manifests, planning, provider, pydantic models or state writes. The
ids the emulator hands out are substituted as the answers come back. The pool is a few lines of its own
rather than ``engine.execute``: the executor's bookkeeping (outcomes, events, settles) is arkerctl's cost,
which the floor must leave out.

What the replay takes is what this host, the emulator and the HTTP client cost before any engine does:
the floor. ``measured / floor`` is then arkerctl's own overhead, apart from the machine's.
"""

from __future__ import annotations

import asyncio
import heapq
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler.engine import Operation
from reconciler.engine.dag import Graph
from reconciler.providers._exchange import Exchange, Params, RawReply
from reconciler.providers._h1 import H1Exchange

__all__ = ["Call", "Recorder", "replay"]

# The ids the emulator generates, as they appear in its answers.
_IDS = re.compile(rb'"(?:vm_id|filesystem_id|mount_id)"\s*:\s*"([^"]+)"')


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    url: str
    params: Params | None
    headers: Mapping[str, str]
    content: bytes | None
    answer: bytes


@dataclass
class Recorder:
    """An exchange that records every call by the operation running it (``operation`` says which)."""

    inner: Exchange
    operation: Any  # () -> the current Operation or None
    calls: dict[Operation | None, list[Call]] = field(default_factory=dict)

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Params | None,
        headers: Mapping[str, str],
        content: bytes | None,
        cap: int,
    ) -> RawReply:
        reply = await self.inner.exchange(
            method, url, params=params, headers=headers, content=content, cap=cap
        )
        call = Call(method, url, params, headers, content, reply.content)
        self.calls.setdefault(self.operation(), []).append(call)
        return reply

    def warm(self, url: str, connections: int) -> None:
        self.inner.warm(url, connections)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Ids:
    """Recorded ids -> the replay's, learned from the answers in the order they come.

    Which recorded ids a call carries is found before the replay starts (``prepare``): scanning every
    call for every known id while replaying would bill the floor with CPU no engine needs."""

    def __init__(self) -> None:
        self._new: dict[str, str] = {}

    @staticmethod
    def prepare(calls: Mapping[Operation | None, list[Call]]) -> dict[Operation | None, list[_Prepared]]:
        known = sorted(
            {
                found.decode()
                for batch in calls.values()
                for call in batch
                for found in _IDS.findall(call.answer)
            },
            key=len,
            reverse=True,  # a longer id containing a shorter one is replaced first
        )

        def carried(call: Call) -> tuple[str, ...]:
            text = " ".join([call.url, *call.headers.values(), call.content.decode() if call.content else ""])
            return tuple(old for old in known if old in text)

        return {op: [_Prepared(call, carried(call)) for call in batch] for op, batch in calls.items()}

    def learn(self, recorded: bytes, replayed: bytes) -> None:
        for old, new in zip(_IDS.findall(recorded), _IDS.findall(replayed), strict=False):
            if old != new:
                self._new[old.decode()] = new.decode()

    def text(self, value: str, carried: tuple[str, ...]) -> str:
        for old in carried:
            new = self._new.get(old)
            if new is not None and old in value:
                value = value.replace(old, new)
        return value

    def call(self, prepared: _Prepared) -> tuple[str, dict[str, str], bytes | None]:
        call, carried = prepared.call, prepared.carried
        if not carried:
            return call.url, dict(call.headers), call.content
        content = self.text(call.content.decode(), carried).encode() if call.content else call.content
        headers = {k: self.text(v, carried) for k, v in call.headers.items()}
        return self.text(call.url, carried), headers, content


@dataclass(frozen=True, slots=True)
class _Prepared:
    call: Call
    carried: tuple[str, ...]  # the recorded ids that appear in the call


async def replay(
    graph: Graph[Operation], calls: Mapping[Operation | None, list[Call]], parallelism: int
) -> float:
    """Send ``calls`` again in ``graph``'s order, ``parallelism`` operations at a time; the seconds from
    the first request to the last answer. Raises if any answer is not a success."""
    exchange = H1Exchange(max_connections=parallelism, timeout=httpx.Timeout(60.0), user_agent="replay")
    ids = _Ids()
    prepared = ids.prepare(calls)
    heights = graph.heights()
    waiting = {node: len(graph.dependencies(node)) for node in graph}
    ready = [(-heights[node], node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    workers: set[asyncio.Task[None]] = set()
    finished = asyncio.get_running_loop().create_future()
    remaining = len(waiting)

    async def perform(operation: Operation) -> None:
        for one in prepared.get(operation, ()):
            call = one.call
            url, headers, content = ids.call(one)
            reply = await exchange.exchange(
                call.method, url, params=call.params, headers=headers, content=content, cap=1 << 26
            )
            if not 200 <= reply.status < 300:
                raise RuntimeError(f"replay: {call.method} {url} answered {reply.status}")
            ids.learn(call.answer, reply.content)

    async def work() -> None:
        nonlocal remaining
        while ready:
            _, operation = heapq.heappop(ready)
            await perform(operation)
            remaining -= 1
            for dependent in sorted(graph.dependents(operation)):
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    heapq.heappush(ready, (-heights[dependent], dependent))
                    if len(workers) < parallelism:
                        start()
        if remaining == 0 and not finished.done():
            finished.set_result(None)

    def start() -> None:
        task = asyncio.ensure_future(work())
        workers.add(task)
        task.add_done_callback(workers.discard)
        task.add_done_callback(_fail_on_error)

    def _fail_on_error(task: asyncio.Task[None]) -> None:
        """A worker that raised fails the whole replay (one cancelled on the way out does not)."""
        if task.cancelled() or finished.done():
            return
        error = task.exception()
        if error is not None:
            finished.set_exception(error)

    try:
        started = time.perf_counter()
        # As the apply does: the first wave's connections open while its first operations run.
        exchange.warm(_origin(calls), min(parallelism, len(waiting)))
        for _ in range(min(parallelism, len(ready))):
            start()
        await finished
        return time.perf_counter() - started
    finally:
        for task in list(workers):
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await exchange.aclose()


def _origin(calls: Mapping[Operation | None, list[Call]]) -> str:
    return next(call.url for found in calls.values() for call in found)
