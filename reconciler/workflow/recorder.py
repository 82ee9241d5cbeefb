"""Durable state recording during apply: every completed operation is in the backend before it returns.

Operations finish concurrently; writing the whole document once per operation would make a large apply
spend its time in fsync. The recorder coalesces: an operation updates the in-memory document and waits
for a write that started after its change. One write at a time runs (in a worker thread, so the event
loop keeps going), and it carries every change made before it started.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from reconciler.state import ResourceState, StateBackend, StateDocument

__all__ = ["StateRecorder"]

_log = logging.getLogger(__name__)


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

    async def record(self, resource: ResourceState) -> None:
        self._doc = self._doc.with_resource(resource)
        await self._durable()

    async def forget(self, address: str) -> None:
        if address in self._doc.resources:
            self._doc = self._doc.without(address)
            await self._durable()

    async def record_many(self, resources: list[ResourceState]) -> None:
        """Record several entries with one durable write."""
        for resource in resources:
            self._doc = self._doc.with_resource(resource)
        if resources:
            await self._durable()

    async def forget_many(self, addresses: list[str]) -> None:
        gone = [a for a in addresses if a in self._doc.resources]
        for address in gone:
            self._doc = self._doc.without(address)
        if gone:
            await self._durable()

    async def replace_document(self, doc: StateDocument) -> None:
        """Store ``doc`` (same lineage) as the whole state, e.g. after refresh resolved pending entries."""
        self._doc = doc.model_copy(update={"serial": self._doc.serial})
        await self._durable()

    async def _durable(self) -> None:
        self._version += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._version, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())
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
