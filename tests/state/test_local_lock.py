from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import __version__
from reconciler.state import (
    LocalStateBackend,
    LockCorruptError,
    LockHeldError,
    LockInfo,
    LockLostError,
    LockMismatchError,
    LockRequest,
    _process,
)

from .helpers import Holder

APPLY = LockRequest(operation="apply", stack="fleet")


@pytest.fixture
def backend(tmp_path: Path) -> LocalStateBackend:
    return LocalStateBackend(tmp_path / ".arkerctl" / "state.json")


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.close()


def _dead_pid() -> int:
    """A pid that just belonged to a process of ours and is now reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _forge(backend: LocalStateBackend, **fields: object) -> LockInfo:
    """Write a lock file as if another run had taken the lock."""
    info = LockInfo.for_this_process(LockRequest(operation="destroy", who="bob@ci"), path=backend.describe())
    info = info.model_copy(update=fields)
    backend.lock_path.parent.mkdir(parents=True, exist_ok=True)
    backend.lock_path.write_text(info.model_dump_json())
    return info


def test_lock_records_the_holder_and_release_removes_it(backend: LocalStateBackend) -> None:
    with backend.lock(APPLY, timeout=0) as lock:
        stored = json.loads(backend.lock_path.read_text())
        assert stored["id"] == lock.id
        assert backend.current_lock() == lock.info
        info = lock.info
        assert info.pid == os.getpid()
        assert info.host == _process.hostname()
        assert info.who == f"{_process.username()}@{info.host}"
        assert (info.operation, info.stack, info.version) == ("apply", "fleet", __version__)
        assert info.path == backend.describe()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info.created_at)
        assert lock.taken_over is None
    assert lock.released
    assert not backend.lock_path.exists()
    assert backend.current_lock() is None
    assert lock.release() is False  # idempotent


def test_who_can_be_overridden(backend: LocalStateBackend) -> None:
    with backend.lock(LockRequest(operation="plan", who="ci-job-42"), timeout=0) as lock:
        assert lock.info.who == "ci-job-42"


def test_held_lock_fails_at_once_with_zero_timeout(backend: LocalStateBackend) -> None:
    with backend.lock(APPLY, timeout=0) as first:
        started = time.monotonic()
        with pytest.raises(LockHeldError) as info:
            backend.lock(LockRequest(operation="plan"), timeout=0)
        assert time.monotonic() - started < 0.5
        assert info.value.holder == first.info
    assert backend.lock(APPLY, timeout=0).release()


def test_waiter_gets_the_lock_when_it_is_released_within_the_timeout(backend: LocalStateBackend) -> None:
    first = backend.lock(APPLY, timeout=0)
    timer = threading.Timer(0.3, first.release)
    timer.start()
    try:
        started = time.monotonic()
        with backend.lock(LockRequest(operation="plan"), timeout=5) as second:
            assert 0.25 < time.monotonic() - started < 3
            assert second.info.operation == "plan"
    finally:
        timer.join()


def test_lock_contention_between_processes(backend: LocalStateBackend, holders: list[Holder]) -> None:
    holder = Holder(backend.path, operation="apply")
    holders.append(holder)
    started = time.monotonic()
    with pytest.raises(LockHeldError) as info:
        backend.lock(LockRequest(operation="plan"), timeout=0.5)
    waited = time.monotonic() - started
    assert 0.5 <= waited < 3
    held = info.value.holder
    assert (held.id, held.pid, held.operation, held.host) == (
        holder.lock_id,
        holder.pid,
        "apply",
        _process.hostname(),
    )
    message = str(info.value)
    for fact in (held.who, held.host, str(held.pid), held.created_at, "apply", held.id):
        assert fact in message
    assert f"arkerctl force-unlock {held.id}" in message
    assert "--lock-timeout" in message
    # A live holder on this host is never taken over, however often we ask.
    assert backend.current_lock() == held
    # Once the holder releases, a waiting run gets the lock.
    holder.release()
    with backend.lock(APPLY, timeout=5) as lock:
        assert lock.taken_over is None


def test_lock_of_a_killed_process_is_taken_over(
    backend: LocalStateBackend, holders: list[Holder], caplog: pytest.LogCaptureFixture
) -> None:
    holder = Holder(backend.path, operation="destroy")
    holders.append(holder)
    holder.kill()
    assert backend.lock_path.exists()  # SIGKILL left it behind
    with caplog.at_level(logging.WARNING, logger="reconciler.state"), backend.lock(APPLY, timeout=0) as lock:
        assert lock.taken_over is not None
        assert (lock.taken_over.id, lock.taken_over.pid) == (holder.lock_id, holder.pid)
        assert backend.current_lock() == lock.info
    assert any(holder.lock_id in record.getMessage() for record in caplog.records)


def test_lock_of_a_live_process_on_this_host_is_not_taken_over(backend: LocalStateBackend) -> None:
    forged = _forge(backend, pid=os.getppid(), process_start=_process.start_time(os.getppid()))
    with pytest.raises(LockHeldError) as info:
        backend.lock(APPLY, timeout=0)
    assert info.value.holder == forged


def test_lock_from_another_host_is_never_taken_over(backend: LocalStateBackend) -> None:
    forged = _forge(backend, host="some-other-host", pid=_dead_pid())
    with pytest.raises(LockHeldError) as info:
        backend.lock(APPLY, timeout=0.1)
    assert info.value.holder == forged
    assert backend.current_lock() == forged


@pytest.mark.skipif(_process.pid_namespace() is None, reason="needs /proc")
def test_lock_from_another_pid_namespace_is_never_taken_over(backend: LocalStateBackend) -> None:
    # Same hostname (e.g. containers with host networking) but the pid belongs to another namespace.
    forged = _forge(backend, pid=_dead_pid(), process_start=None, pid_namespace="pid:[1]")
    with pytest.raises(LockHeldError) as info:
        backend.lock(APPLY, timeout=0)
    assert info.value.holder == forged


@pytest.mark.skipif(_process.start_time(os.getpid()) is None, reason="needs /proc")
def test_recycled_pid_is_recognised_by_its_start_time(backend: LocalStateBackend) -> None:
    # The lock names a live pid, but that pid started at another time than the lock's holder did.
    mine = _process.start_time(os.getpid())
    assert mine is not None
    forged = _forge(backend, pid=os.getpid(), process_start=mine - 1)
    with backend.lock(APPLY, timeout=0) as lock:
        assert lock.taken_over == forged


@pytest.mark.skipif(_process.start_time(os.getpid()) is None, reason="needs /proc")
def test_zombie_holder_counts_as_gone(backend: LocalStateBackend) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while _process.pid_exists(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # exited but not reaped: a zombie
        forged = _forge(backend, pid=child.pid, process_start=None)
        with backend.lock(APPLY, timeout=0) as lock:
            assert lock.taken_over == forged
    finally:
        child.wait()


def test_only_one_of_many_racing_takers_gets_a_stale_lock(backend: LocalStateBackend) -> None:
    _forge(backend, pid=_dead_pid(), process_start=None)
    barrier = threading.Barrier(8)
    won: list[str] = []
    lost: list[str] = []

    def take() -> None:
        barrier.wait()
        try:
            won.append(backend.lock(APPLY, timeout=0).id)
        except LockHeldError as exc:
            lost.append(exc.holder.id)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 7
    assert set(lost) == set(won)
    current = backend.current_lock()
    assert current is not None and current.id == won[0]


def test_force_unlock(backend: LocalStateBackend) -> None:
    with pytest.raises(LockMismatchError) as nothing:
        backend.force_unlock("abc")
    assert nothing.value.current is None
    assert "not locked" in str(nothing.value)

    lock = backend.lock(APPLY, timeout=0)
    with pytest.raises(LockMismatchError) as wrong:
        backend.force_unlock("not-the-id")
    assert wrong.value.current == lock.info
    assert lock.id in str(wrong.value)
    assert backend.current_lock() == lock.info

    backend.force_unlock(lock.id)
    assert backend.current_lock() is None
    with pytest.raises(LockLostError):
        lock.verify()


def test_release_removes_only_our_own_lock(backend: LocalStateBackend) -> None:
    first = backend.lock(APPLY, timeout=0)
    first.verify()
    backend.force_unlock(first.id)
    second = backend.lock(LockRequest(operation="plan"), timeout=0)
    with pytest.raises(LockLostError) as info:
        first.verify()
    assert info.value.current == second.info
    assert first.release() is False
    assert backend.current_lock() == second.info
    assert second.release() is True


def test_unreadable_lock_file_is_reported_not_taken_over(backend: LocalStateBackend) -> None:
    backend.lock_path.parent.mkdir(parents=True)
    backend.lock_path.write_text("garbage")
    old = time.time() - 60
    os.utime(backend.lock_path, (old, old))
    for attempt in (lambda: backend.lock(APPLY, timeout=0), backend.current_lock):
        with pytest.raises(LockCorruptError) as info:
            attempt()
        assert str(backend.lock_path) in str(info.value)
    with pytest.raises(LockCorruptError):
        backend.force_unlock("anything")
    assert backend.lock_path.read_text() == "garbage"


def test_a_lock_file_still_being_written_is_waited_for(backend: LocalStateBackend) -> None:
    # Another run has just created the file (O_EXCL) and not yet written its content.
    backend.lock_path.parent.mkdir(parents=True)
    backend.lock_path.touch()
    other = LockInfo.for_this_process(LockRequest(operation="apply"), path=backend.describe())
    timer = threading.Timer(0.2, lambda: backend.lock_path.write_text(other.model_dump_json()))
    timer.start()
    try:
        with pytest.raises(LockHeldError) as info:
            backend.lock(APPLY, timeout=0)
        assert info.value.holder == other
    finally:
        timer.join()


def test_negative_timeout_is_refused(backend: LocalStateBackend) -> None:
    with pytest.raises(ValueError, match="negative"):
        backend.lock(APPLY, timeout=-1)


def test_lock_info_from_a_newer_version_with_extra_fields_is_readable(backend: LocalStateBackend) -> None:
    forged = _forge(backend, pid=os.getppid())
    record = json.loads(backend.lock_path.read_text())
    record["heartbeat_at"] = "2030-01-01T00:00:00Z"
    backend.lock_path.write_text(json.dumps(record))
    assert backend.current_lock() == forged


@pytest.mark.parametrize("kind", ["dangling symlink", "directory"])
def test_a_lock_path_that_is_not_a_file_is_an_error_not_a_hang(backend: LocalStateBackend, kind: str) -> None:
    backend.lock_path.parent.mkdir(parents=True)
    if kind == "directory":
        backend.lock_path.mkdir()
    else:
        backend.lock_path.symlink_to(backend.lock_path.parent / "nowhere")
    started = time.monotonic()
    with pytest.raises(LockCorruptError) as info:
        backend.lock(APPLY, timeout=5)
    assert time.monotonic() - started < 1
    assert str(backend.lock_path) in str(info.value)
