"""Durable state recording during apply: every completed operation is in the backend before it returns.

Operations finish concurrently; writing the whole document once per operation would make a large apply
spend its time in fsync. The recorder coalesces: an operation updates the in-memory document and waits
for a write that started after its change. One write at a time runs (in a worker thread, so the event
loop keeps going), and it carries every change made before it started.

Inside :meth:`StateRecorder.deferring`, a final record (not an intent) or a forget does not wait: the
write starts at once and the scope collects it, so the operation can give up its parallelism slot and
wait for durability afterwards (``execute(settle=...)``). Intents are always durable before the call
that creates the object is sent: they are what lets a crashed run find its objects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from reconciler.providers.base import is_pending
from reconciler.state import ResourceState, StateBackend, StateDocument

__all__ = ["Deferred", "StateRecorder"]

_log = logging.getLogger(__name__)


class Deferred:
    """The writes an operation left in flight; :meth:`wait` returns once all of them are durable."""

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    def add(self, future: asyncio.Future[None]) -> None:
        self._futures.append(future)

    async def wait(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            # shield: a cancelled operation must not cancel the write other operations wait for.
            await asyncio.shield(future)


_scope: contextvars.ContextVar[Deferred | None] = contextvars.ContextVar("state_deferred", default=None)


@dataclass
class _Write:
    done: asyncio.Future[None]
    version: int  # the recorder version this write stores


class StateRecorder:
    """``ApplyContext`` for providers, backed by a ``StateBackend`` (see ``providers/base.py``)."""

    def __init__(self, backend: StateBackend, doc: StateDocument, *, stored: bool) -> None:
        self._backend = backend
        self._doc = doc
        self._expected: int | None = doc.serial if stored else None
        self._version = 0  # bumped on every in-memory change
        self._stored_version = 0
        self._writer: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.writes = 0

    @property
    def lineage(self) -> str:
        return self._doc.lineage

    @property
    def document(self) -> StateDocument:
        return self._doc

    def current(self, address: str) -> ResourceState | None:
        return self._doc.resources.get(address)

    @contextlib.contextmanager
    def deferring(self) -> Iterator[Deferred]:
        """Final records and forgets made in this block (this task) are collected instead of awaited."""
        deferred = Deferred()
        token = _scope.set(deferred)
        try:
            yield deferred
        finally:
            _scope.reset(token)

    async def record(self, resource: ResourceState) -> None:
        self._doc = self._doc.with_resource(resource)
        await self._durable(deferrable=not is_pending(resource))

    async def forget(self, address: str) -> None:
        if address in self._doc.resources:
            self._doc = self._doc.without(address)
            await self._durable(deferrable=True)

    async def record_many(self, resources: list[ResourceState]) -> None:
        """Record several entries with one durable write."""
        if resources:
            self._doc = self._doc.with_resources(resources)
            await self._durable()

    async def forget_many(self, addresses: list[str]) -> None:
        gone = [a for a in addresses if a in self._doc.resources]
        for address in gone:
            self._doc = self._doc.without(address)
        if gone:
            await self._durable()

    def replace_document(self, doc: StateDocument) -> None:
        """Make ``doc`` (same lineage) the whole state, e.g. after refresh resolved pending entries. Not
        durable until the next write: ``flush`` (or any record) stores it."""
        self._doc = doc.model_copy(update={"serial": self._doc.serial})
        self._version += 1

    async def _durable(self, *, deferrable: bool = False) -> None:
        self._version += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._version, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())
        scope = _scope.get() if deferrable else None
        if scope is not None:
            scope.add(future)
            return
        # shield: a cancelled operation must not cancel the write other operations wait for.
        await asyncio.shield(future)

    async def _write_loop(self) -> None:
        while self._stored_version < self._version:
            version = self._version
            doc = self._doc
            try:
                stored = await asyncio.to_thread(self._backend.write, doc, expected_serial=self._expected)
            except Exception as err:
                self._fail(err)
                return
            _log.debug("state: stored serial %d (%d resources)", stored.serial, len(stored.resources))
            self._expected = stored.serial
            self._doc = self._doc.model_copy(update={"serial": stored.serial})
            self._stored_version = version
            self.writes += 1
            remaining = []
            for wanted, future in self._waiters:
                if wanted <= version:
                    if not future.done():
                        future.set_result(None)
                else:
                    remaining.append((wanted, future))
            self._waiters = remaining

    def _fail(self, err: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for _, future in waiters:
            if not future.done():
                future.set_exception(err)
        # Later changes retry the write (a transient database error need not end the run).
        self._stored_version = self._version

    async def flush(self) -> None:
        if self._stored_version < self._version:
            await self._durable()
