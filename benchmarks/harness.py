"""Driving arkerctl's own workflow (the code the CLI runs) against an emulator, with per-operation counts.

Per-operation API calls come from the client's ``CallStats``: every call is credited to the operation
running in the current task (a context variable set around each provider operation), so concurrent
operations are told apart exactly.
"""

from __future__ import annotations

import contextvars
import dataclasses
import gc
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from reconciler.engine import Operation, PlanOptions, build_operation_graph
from reconciler.engine.dag import Graph
from reconciler.providers._http_core import CallStats, HttpCoreBase
from reconciler.providers.base import Provider
from reconciler.state import open_backend
from reconciler.workflow import (
    ApplyResult,
    Planned,
    RunSettings,
    Workspace,
    apply_planned,
    connected,
    make_plan,
    open_workspace,
)

from .replay import Call, Recorder

__all__ = ["Attribution", "FleetRun", "fleet_run"]

_current: contextvars.ContextVar[Operation | None] = contextvars.ContextVar("bench_operation", default=None)


class _ClientHooks(Protocol):
    """What the benchmark hooks reach on a provider's API client (the Arker and FastVM clients both have
    these; ``_core`` is a private seam, used by the benchmarks only)."""

    @property
    def stats(self) -> CallStats: ...

    @property
    def _core(self) -> HttpCoreBase: ...


@runtime_checkable
class _WithClient(Protocol):
    """A provider with an API client, as both real providers are (the ``Provider`` protocol has none)."""

    @property
    def client(self) -> _ClientHooks: ...


def _client_of(provider: Provider) -> _ClientHooks:
    if not isinstance(provider, _WithClient):
        raise TypeError(
            f"the benchmark hooks need a provider with an API client, not {type(provider).__name__}"
        )
    return provider.client


@dataclass
class Attribution:
    """API calls per operation (and those made outside any operation, under ``None``).

    ``record`` runs inside every measured API call, so it only appends; ``calls`` counts afterwards. (A
    ``Counter`` per call cost ~5% of the engine's CPU in the apply it measured.)"""

    _log: list[tuple[Operation | None, str]] = field(default_factory=list)

    def record(self, operation_id: str) -> None:
        self._log.append((_current.get(), operation_id))

    @property
    def calls(self) -> dict[Operation | None, Counter[str]]:
        counted: dict[Operation | None, Counter[str]] = {}
        for operation, operation_id in self._log:
            counts = counted.get(operation)
            if counts is None:
                counts = counted[operation] = Counter()
            counts[operation_id] += 1
        return counted

    def clear(self) -> None:
        self._log.clear()


class _Attributing:
    """Wraps a provider: each create/update/delete runs with its operation in the context."""

    def __init__(self, inner: Provider) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create(self, config: Any, ctx: Any, *, replacing: str | None) -> None:
        token = _current.set(Operation(config.address, "create"))
        try:
            await self._inner.create(config, ctx, replacing=replacing)
        finally:
            _current.reset(token)

    async def update(self, config: Any, current: Any, live: Any, ctx: Any) -> None:
        token = _current.set(Operation(config.address, "update"))
        try:
            await self._inner.update(config, current, live, ctx)
        finally:
            _current.reset(token)

    async def delete(self, current: Any, ctx: Any) -> None:
        token = _current.set(Operation(current.address, "delete"))
        try:
            await self._inner.delete(current, ctx)
        finally:
            _current.reset(token)


@dataclass
class FleetRun:
    """One stack, connected: plan and apply with timings and call counts."""

    workspace: Workspace
    providers: list[Any]
    attribution: Attribution
    recorders: list[Recorder] = field(default_factory=list)

    def recorded(self) -> dict[Operation | None, list[Call]]:
        """The calls kept since the last ``reset_calls``, by operation (with ``record_calls``)."""
        merged: dict[Operation | None, list[Call]] = {}
        for recorder in self.recorders:
            for operation, calls in recorder.calls.items():
                merged.setdefault(operation, []).extend(calls)
        return merged

    def total_calls(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for counts in self.attribution.calls.values():
            total.update(counts)
        return dict(sorted(total.items()))

    def reset_calls(self) -> None:
        self.attribution.clear()
        for recorder in self.recorders:
            recorder.calls.clear()

    async def plan(self) -> tuple[Planned, float]:
        """Read the state cold (a fresh backend, as a command's first read), refresh and plan."""
        stack = self.workspace.desired.stack
        fresh = open_backend(stack.state, root=stack.root, stack=stack.name)
        workspace = dataclasses.replace(self.workspace, backend=fresh)
        _as_a_fresh_process()
        started = time.perf_counter()
        planned = await make_plan(workspace, self.providers, PlanOptions())
        return planned, time.perf_counter() - started

    def graph(self, planned: Planned) -> Graph[Operation]:
        return build_operation_graph(planned.plan, planned.configs, planned.state)

    async def apply(self, planned: Planned) -> tuple[ApplyResult, float]:
        _as_a_fresh_process()
        started = time.perf_counter()
        result = await apply_planned(self.workspace, self.providers, planned)
        return result, time.perf_counter() - started


def _as_a_fresh_process() -> None:
    """Collect the garbage of earlier runs before a measured one. A command runs in its own process and
    defers full collections to its end (``workflow/loop.py``); the benchmarks run many commands in one
    process, whose leftovers would otherwise weigh on every later run."""
    gc.collect()


@asynccontextmanager
async def fleet_run(
    root: Path,
    environ: Mapping[str, str],
    *,
    parallelism: int,
    transport_factory: Callable[[], Any] | None = None,
    record_calls: bool = False,
) -> AsyncIterator[FleetRun]:
    """Open the stack at ``root`` against ``environ``'s API; ``record_calls`` keeps every request and
    answer by operation (``FleetRun.recorded``, for ``replay.py``)."""
    settings = RunSettings(
        paths=(root,), environ={}, parallelism=parallelism, transport_factory=transport_factory
    )
    workspace = open_workspace(settings)
    attribution = Attribution()
    recorders: list[Recorder] = []
    async with connected(workspace, environ=dict(environ)) as providers:
        for provider in providers:
            client = _client_of(provider)
            stats = client.stats
            original = stats.record_call

            def record(operation_id: str, _original: Callable[[str], None] = original) -> None:
                _original(operation_id)
                attribution.record(operation_id)

            # Benchmark-only hook, credit each call to its operation (mypy refuses assigning to a method).
            stats.record_call = record  # type: ignore[method-assign]
            if record_calls:
                # Benchmark-only too: the client's exchange (a private seam) wrapped to keep each call.
                core = client._core
                recorders.append(Recorder(core.exchange, _current.get))
                core.exchange = recorders[-1]
        yield FleetRun(workspace, [_Attributing(p) for p in providers], attribution, recorders)
