"""The ``StateBackend`` contract, checked on the local file backend and on PostgreSQL alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.state import (
    LocalStateBackend,
    LockHeldError,
    LockLostError,
    LockMismatchError,
    LockRequest,
    PostgresBackend,
    StateBackend,
    StateConflictError,
    StateDocument,
    StateLineageError,
    _process,
)

from .helpers import document, vm

APPLY = LockRequest(operation="apply", stack="fleet")


@pytest.fixture(params=["local", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateBackend]:
    if request.param == "local":
        yield LocalStateBackend(tmp_path / "state.json")
        return
    pg_url: Callable[..., str] = request.getfixturevalue("pg_url")
    with PostgresBackend.from_url(pg_url()) as pg:
        yield pg


def test_is_a_state_backend(backend: StateBackend) -> None:
    assert isinstance(backend, StateBackend)


def test_empty_state_reads_none_and_first_write_bumps_the_serial(backend: StateBackend) -> None:
    assert backend.read() is None
    doc = document(3)
    stored = backend.write(doc, expected_serial=None)
    assert stored.serial == doc.serial + 1
    assert stored == doc.model_copy(update={"serial": 1})
    assert backend.read() == stored


def test_each_write_bumps_the_serial_whatever_the_document_says(backend: StateBackend) -> None:
    stored = backend.write(document(1), expected_serial=None)
    for expected in range(2, 6):
        stored = backend.write(stored.model_copy(update={"serial": 99}), expected_serial=stored.serial)
        assert stored.serial == expected
    read = backend.read()
    assert read is not None and read.serial == 5


def test_compare_and_swap_rejects_a_stale_writer(backend: StateBackend) -> None:
    first = backend.write(document(1), expected_serial=None)
    mine = first.with_resource(vm(7))
    theirs = backend.write(first.with_resource(vm(8)), expected_serial=first.serial)
    with pytest.raises(StateConflictError) as info:
        backend.write(mine, expected_serial=first.serial)
    assert (info.value.expected_serial, info.value.actual_serial) == (1, 2)
    assert "expected serial 1, found serial 2" in str(info.value)
    assert backend.read() == theirs
    with pytest.raises(StateConflictError) as nothing:
        backend.write(mine, expected_serial=None)
    assert nothing.value.actual_serial == 2


def test_expecting_a_serial_on_an_empty_state_is_a_conflict(backend: StateBackend) -> None:
    with pytest.raises(StateConflictError) as info:
        backend.write(document(1), expected_serial=3)
    assert (info.value.expected_serial, info.value.actual_serial) == (3, None)
    assert backend.read() is None


def test_another_lineage_is_refused(backend: StateBackend) -> None:
    stored = backend.write(document(1), expected_serial=None)
    stranger = StateDocument(stack="fleet")
    with pytest.raises(StateLineageError) as info:
        backend.write(stranger, expected_serial=stored.serial)
    assert info.value.stored_lineage == stored.lineage
    assert info.value.written_lineage == stranger.lineage
    assert backend.read() == stored


def test_a_large_state_round_trips(backend: StateBackend) -> None:
    doc = document(2000).with_resource(vm(5, note='naïve ☃ "quoted" \\ back', ratio=0.1, big=2**62))
    stored = backend.write(doc, expected_serial=None)
    assert backend.read() == stored
    assert backend.read() == doc.model_copy(update={"serial": 1})


def test_lock_records_the_holder_and_blocks_others(backend: StateBackend) -> None:
    with backend.lock(APPLY, timeout=0) as lock:
        assert backend.current_lock() == lock.info
        assert (lock.info.pid, lock.info.host, lock.info.operation) == (
            _process.current_pid(),
            _process.hostname(),
            "apply",
        )
        assert lock.info.path == backend.describe()
        assert lock.taken_over is None
        started = time.monotonic()
        with pytest.raises(LockHeldError) as info:
            backend.lock(LockRequest(operation="plan"), timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 3
        assert info.value.holder == lock.info
        message = str(info.value)
        for fact in (lock.info.who, lock.info.host, str(lock.info.pid), lock.info.created_at, lock.id):
            assert fact in message
        assert f"arkerctl force-unlock {lock.id}" in message
    assert lock.released
    assert backend.current_lock() is None
    assert lock.release() is False


def test_waiter_gets_the_lock_when_it_is_released(backend: StateBackend) -> None:
    first = backend.lock(APPLY, timeout=0)
    timer = threading.Timer(0.3, first.release)
    timer.start()
    try:
        started = time.monotonic()
        with backend.lock(LockRequest(operation="plan"), timeout=5) as second:
            assert 0.25 < time.monotonic() - started < 3
            assert backend.current_lock() == second.info
    finally:
        timer.join()


def test_force_unlock(backend: StateBackend) -> None:
    with pytest.raises(LockMismatchError) as nothing:
        backend.force_unlock("abc")
    assert nothing.value.current is None
    lock = backend.lock(APPLY, timeout=0)
    with pytest.raises(LockMismatchError) as wrong:
        backend.force_unlock("not-the-id")
    assert wrong.value.current == lock.info
    assert backend.current_lock() == lock.info
    backend.force_unlock(lock.id)
    assert backend.current_lock() is None
    with pytest.raises(LockLostError):
        lock.verify()
    second = backend.lock(LockRequest(operation="plan"), timeout=0)
    with pytest.raises(LockLostError) as info:
        lock.verify()
    assert info.value.current == second.info
    assert lock.release() is False  # never removes someone else's lock
    assert backend.current_lock() == second.info
    assert second.release() is True
