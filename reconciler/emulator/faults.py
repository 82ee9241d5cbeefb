"""Fault injection for reliability tests: latency, transient failures and ambiguous drops.

The middleware is platform-neutral. A platform supplies a :class:`FaultTarget` that names the operation
a request addresses (requests that address none, such as ``/_emulator/*``, pass through untouched) and
renders an injected failure in its own error format.

Per matched request, in order:

1. count it in :class:`~reconciler.emulator.stats.OperationStats`;
2. start its latency clock (per-operation value if set, else the global one);
3. draw one uniform number ``u`` from the seeded generator: ``u < fail_rate`` answers a failure *without
   doing the work* (429 ``rate_limited`` for a ``rate_limited_share`` of them, else 503 ``unavailable``,
   both with ``Retry-After``); ``fail_rate <= u < fail_rate + ambiguous_rate`` *does the work* and then
   drops the connection without sending a byte; otherwise the request is served normally.

The answer (or the drop) leaves no earlier than the latency after the request arrived, and the work runs
while the clock runs: the latency is the time to answer, as a remote API's is, rather than the latency
plus the emulator's own CPU (which would bill the emulator's Python cost to the client in benchmarks).
"Arrived" is when the server read the request's first bytes, where the server says so (the scope
extension ``ARRIVAL``: our uvicorn protocol sets it), else when the request reaches this layer: a request
that waited in the socket while the single-threaded emulator served a burst of others is not answered
that much later. Where the server offers to hold the answer (the scope extension ``HOLD``: our uvicorn
protocol does), the layer asks it to and the request's task ends at once; the server writes the answer at
its time, with every other answer then due. Elsewhere the task sleeps until then.

One draw per request keeps each rate exact on its own, and a fixed ``seed`` makes a sequential run
reproducible.
"""

from __future__ import annotations

import asyncio
import enum
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .stats import OperationStats

__all__ = ["ARRIVAL", "HOLD", "FaultInjector", "FaultKind", "FaultPlan", "FaultTarget", "InjectedResponse"]

# Scope extension a server may set: ``{"time": <event loop clock when the request's first bytes were read>}``.
ARRIVAL = "arkerctl.arrival"
# Scope extension a server may set: ``{"arrived": <time.monotonic() when the request's first bytes were
# read>, "until": <callable(t): the response leaves no earlier than time.monotonic() t>}``. With it the
# latency needs no sleeping task: the server holds the answer (our uvicorn protocol sets it).
HOLD = "arkerctl.hold"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class FaultKind(str, enum.Enum):
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class InjectedResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    kind: FaultKind  # what was actually answered (a platform may downgrade a kind an operation lacks)


class FaultTarget(Protocol):
    def operation_for(self, method: str, path: str) -> str | None:
        """The operation id a request addresses, or None when fault injection must not touch it."""

    def injected_failure(self, operation: str, kind: FaultKind, retry_after_seconds: int) -> InjectedResponse:
        """The platform's rendering of an injected transient failure."""


@dataclass
class FaultPlan:
    """Resolved fault configuration (operation names already canonical) plus the seeded generator."""

    latency_seconds: float = 0.0
    latency_by_op: Mapping[str, float] = field(default_factory=dict)  # seconds
    fail_rate: float = 0.0
    ambiguous_rate: float = 0.0
    rate_limited_share: float = 0.5
    retry_after_seconds: int = 1
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reseed(self) -> None:
        with self._lock:
            self._rng = random.Random(self.seed)

    def latency_for(self, operation: str) -> float:
        return self.latency_by_op.get(operation, self.latency_seconds)

    def decide(self) -> FaultKind | str | None:
        """None (serve), ``"drop"`` (serve, then drop) or the FaultKind to answer instead of serving."""
        if self.fail_rate <= 0 and self.ambiguous_rate <= 0:
            return None
        with self._lock:
            u = self._rng.random()
            if u < self.fail_rate:
                limited = self._rng.random() < self.rate_limited_share
                return FaultKind.RATE_LIMITED if limited else FaultKind.UNAVAILABLE
        if u < self.fail_rate + self.ambiguous_rate:
            return "drop"
        return None


class FaultInjector:
    """ASGI middleware applying a :class:`FaultPlan`; it must be the outermost layer (see ``_drop``)."""

    def __init__(self, app: ASGIApp, target: FaultTarget, plan: FaultPlan, stats: OperationStats) -> None:
        self.app = app
        self.target = target
        self.plan = plan
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        operation = self.target.operation_for(scope["method"], scope["path"])
        if operation is None:
            await self.app(scope, receive, send)
            return
        stats = self.stats
        stats.count(operation, "requests")
        delay = self.plan.latency_for(operation)
        decision = self.plan.decide()
        hold = scope.get("extensions", {}).get(HOLD) if delay > 0 and decision != "drop" else None
        if hold is not None:
            # Never later than now: the stamp is ``time.monotonic()``, read before the request's bytes.
            hold["until"](min(hold["arrived"], time.monotonic()) + delay)
            deadline = None
        else:
            deadline = _arrival(scope) + delay if delay > 0 else None

        if isinstance(decision, FaultKind):
            injected = self.target.injected_failure(operation, decision, self.plan.retry_after_seconds)
            stats.count(operation, f"injected_{injected.kind.value}")
            stats.status(operation, injected.status)
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in injected.headers]
            headers.append((b"content-length", str(len(injected.body)).encode()))
            await _until(deadline)
            await send({"type": "http.response.start", "status": injected.status, "headers": headers})
            await send({"type": "http.response.body", "body": injected.body})
            return

        if decision == "drop":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            stats.count(operation, "dropped")
            await _until(deadline)
            await _drop(send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                stats.status(operation, message["status"])
                if deadline is not None:  # held by the server otherwise
                    await _until(deadline)
            await send(message)

        await self.app(scope, receive, counting_send)


def _arrival(scope: Scope) -> float:
    now = asyncio.get_running_loop().time()
    stamp = scope.get("extensions", {}).get(ARRIVAL)
    # Never later than now (a stamp from another clock must not push answers out).
    return min(now, stamp["time"]) if stamp is not None else now


async def _until(deadline: float | None) -> None:
    """Sleep until the loop's clock reads ``deadline`` (no-op when it is ``None`` or already past)."""
    if deadline is not None:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining > 0:
            await asyncio.sleep(remaining)


async def _drop(send: Send) -> None:
    """Close the client connection without a response.

    Under uvicorn, ``send`` is bound to the connection's request cycle, which holds the transport:
    aborting it makes the client see "server disconnected without sending a response". In process (an
    ASGI transport has no socket) the closest equivalent is raising the error an HTTP client would.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
        # Let the server notice the lost connection before the app returns, or it answers a 500.
        for _ in range(3):
            await asyncio.sleep(0)
        return
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
