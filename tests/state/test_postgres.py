"""PostgreSQL backend specifics: schema migrations, history, heartbeat and lease, lost writers."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from reconciler.state import (
    LockHeldError,
    LockLostError,
    LockRequest,
    PostgresBackend,
    PostgresLock,
    StateConfigurationError,
    StateConflictError,
    StateConnectionError,
    StateWriteError,
    TransferError,
    open_backend,
    pull,
)
from reconciler.state._pg_schema import SCHEMA_VERSION, ensure_schema

from .helpers import document, vm
from .pg import Cluster, PgHolder

APPLY = LockRequest(operation="apply", stack="fleet")


@pytest.fixture
def backends(pg_url: Callable[..., str]) -> Iterator[Callable[..., PostgresBackend]]:
    """``backends(**url_params)``: backends on this test's schema, closed at the end."""
    opened: list[PostgresBackend] = []

    def make(**params: str) -> PostgresBackend:
        backend = open_backend(pg_url(**params), root=Path.cwd())
        assert isinstance(backend, PostgresBackend)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture
def holders() -> Iterator[list[PgHolder]]:
    started: list[PgHolder] = []
    yield started
    for holder in started:
        holder.close()


# ------------------------------------------------------------------------------------------- schema


def test_schema_is_created_on_first_use_and_versioned(
    pg_cluster: Cluster, backends: Callable[..., PostgresBackend]
) -> None:
    backend = backends()
    assert backend.read() is None
    with psycopg.connect(pg_cluster.conninfo, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            (backend.schema_name,),
        ).fetchall()
        assert [name for (name,) in tables] == ["history", "locks", "schema_migrations", "stacks"]
        rows = conn.execute(f"SELECT version FROM {backend.schema_name}.schema_migrations").fetchall()
        assert rows == [(SCHEMA_VERSION,)]
        # Running the migrations again is a no-op.
        assert ensure_schema(conn, backend.schema_name, location="test") == 0


def test_concurrent_first_use_migrates_exactly_once(
    pg_cluster: Cluster, backends: Callable[..., PostgresBackend]
) -> None:
    schema = backends().schema_name  # not used yet: nothing created
    barrier = threading.Barrier(8)
    applied: list[int] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            with psycopg.connect(pg_cluster.conninfo, autocommit=True) as conn:
                barrier.wait()
                applied.append(ensure_schema(conn, schema, location="test"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(applied) == [0] * 7 + [SCHEMA_VERSION]
    with psycopg.connect(pg_cluster.conninfo) as conn:
        count = conn.execute(f"SELECT count(*) FROM {schema}.schema_migrations").fetchone()
    assert count == (SCHEMA_VERSION,)


def test_a_schema_from_a_newer_arkerctl_is_refused(
    pg_cluster: Cluster, backends: Callable[..., PostgresBackend]
) -> None:
    backends().ensure_schema()
    schema = backends().schema_name
    with psycopg.connect(pg_cluster.conninfo, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {schema}.schema_migrations (version, description) VALUES (99, 'future')")
    with pytest.raises(StateConfigurationError, match="schema version 99, newer than this arkerctl") as info:
        backends().read()
    assert "Upgrade arkerctl" in str(info.value)


def test_stacks_in_one_schema_are_independent(backends: Callable[..., PostgresBackend]) -> None:
    a, b = backends(stack="a"), backends(stack="b")
    stored = a.write(document(2, stack="a"), expected_serial=None)
    assert b.read() is None
    with a.lock(APPLY, timeout=0), b.lock(APPLY, timeout=0):
        pass
    assert a.read() == stored


def test_connection_failure_is_a_clear_error(pg_cluster: Cluster) -> None:
    backend = open_backend(
        "postgresql://nobody@127.0.0.1:1/db?schema=x&connect_timeout=2",
        root=Path.cwd(),
    )
    with pytest.raises(StateConnectionError) as info:
        backend.read()
    message = str(info.value)
    assert message.startswith("cannot reach the state database postgresql://nobody@127.0.0.1:1/db?schema=x")
    assert "PGPASSWORD" in message


def test_a_value_postgres_cannot_store_is_a_write_error_and_keeps_the_state(
    backends: Callable[..., PostgresBackend],
) -> None:
    backend = backends()
    stored = backend.write(document(1), expected_serial=None)
    with pytest.raises(StateWriteError, match="previous state is intact"):
        backend.write(stored.with_resource(vm(3, note="nul \x00 byte")), expected_serial=stored.serial)
    assert backend.read() == stored
    assert backend.write(stored, expected_serial=1).serial == 2  # the connection is still usable


# ------------------------------------------------------------------------------------------- history


def test_history_keeps_the_last_n_previous_serials(backends: Callable[..., PostgresBackend]) -> None:
    backend = backends(history="3")
    stored = backend.write(document(0), expected_serial=None)
    versions = {stored.serial: stored}
    for index in range(9):
        stored = backend.write(stored.with_resource(vm(index)), expected_serial=stored.serial)
        versions[stored.serial] = stored
    assert stored.serial == 10
    entries = backend.history()
    assert [entry.serial for entry in entries] == [7, 8, 9, 10]
    assert [entry.current for entry in entries] == [False, False, False, True]
    assert {entry.lineage for entry in entries} == {stored.lineage}
    for serial in (7, 8, 9, 10):
        assert backend.read_serial(serial) == versions[serial]
        assert pull(backend, serial) == versions[serial]
    assert backend.read_serial(6) is None
    with pytest.raises(TransferError, match=r"does not keep serial 6 \(serials available: 7, 8, 9, 10\)"):
        pull(backend, 6)
    # A smaller limit applies from the next write on.
    smaller = backends(history="1")
    smaller.write(stored, expected_serial=10)
    assert [entry.serial for entry in smaller.history()] == [10, 11]


def test_history_zero_keeps_only_the_current_document(backends: Callable[..., PostgresBackend]) -> None:
    backend = backends(history="0")
    stored = backend.write(document(1), expected_serial=None)
    stored = backend.write(stored, expected_serial=1)
    assert [entry.serial for entry in backend.history()] == [2]
    assert backend.read_serial(1) is None


# ------------------------------------------------------------------------------------------- locks


def test_heartbeat_keeps_a_live_holder_with_a_short_lease(
    backends: Callable[..., PostgresBackend], holders: list[PgHolder], pg_url: Callable[..., str]
) -> None:
    holder = PgHolder(pg_url(lease="1s"))
    holders.append(holder)
    time.sleep(2.5)  # well past the lease: only the heartbeat keeps the lock fresh
    with pytest.raises(LockHeldError) as info:
        backends().lock(APPLY, timeout=0)
    assert info.value.holder.id == holder.lock_id
    holder.release()
    with backends().lock(APPLY, timeout=0) as lock:
        assert lock.taken_over is None


def test_a_killed_holders_lock_goes_stale_after_its_lease_and_is_taken_over(
    backends: Callable[..., PostgresBackend],
    holders: list[PgHolder],
    pg_url: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = PgHolder(pg_url(lease="2s"), operation="destroy")
    holders.append(holder)
    backend = backends()
    backend.ensure_schema()  # connected: the attempt below comes right after the kill
    holder.kill()
    with pytest.raises(LockHeldError) as info:
        backend.lock(APPLY, timeout=0)  # within the lease: still held
    assert (info.value.holder.id, info.value.holder.pid) == (holder.lock_id, holder.pid)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="reconciler.state"), backend.lock(APPLY, timeout=10) as lock:
        assert time.monotonic() - started < 5
        assert lock.taken_over is not None
        assert (lock.taken_over.id, lock.taken_over.operation) == (holder.lock_id, "destroy")
        # ``Lock.__enter__`` is typed to return the base ``Lock``; the message is ``PostgresLock``'s own.
        assert isinstance(lock, PostgresLock) and lock.takeover_message is not None
        assert holder.lock_id in lock.takeover_message and "lease 2s" in lock.takeover_message
        assert backend.current_lock() == lock.info
    assert any(holder.lock_id in record.getMessage() for record in caplog.records)


def test_only_one_of_many_racing_takers_gets_a_stale_lock(
    backends: Callable[..., PostgresBackend], holders: list[PgHolder], pg_url: Callable[..., str]
) -> None:
    holder = PgHolder(pg_url(lease="500ms"))
    holders.append(holder)
    holder.kill()
    time.sleep(0.7)
    takers = [backends() for _ in range(6)]
    for taker in takers:
        taker.ensure_schema()
    barrier = threading.Barrier(len(takers))
    won: list[str] = []
    lost: list[str] = []

    def take(backend: PostgresBackend) -> None:
        barrier.wait()
        try:
            won.append(backend.lock(APPLY, timeout=0).id)
        except LockHeldError as exc:
            lost.append(exc.holder.id)

    threads = [threading.Thread(target=take, args=(taker,)) for taker in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(lost) == 5
    assert set(lost) == set(won)


def test_a_writer_whose_lock_was_taken_over_never_overwrites(
    backends: Callable[..., PostgresBackend], holders: list[PgHolder], pg_url: Callable[..., str]
) -> None:
    backend = backends()
    backend.write(document(1), expected_serial=None)
    holder = PgHolder(pg_url(lease="500ms"))
    holders.append(holder)
    assert holder.ask("read") == "serial 1"
    os.kill(holder.pid, signal.SIGSTOP)  # a paused run (laptop lid, stuck VM): no heartbeat
    try:
        with backend.lock(APPLY, timeout=10) as lock:
            assert lock.taken_over is not None and lock.taken_over.id == holder.lock_id
            current = backend.read()
            assert current is not None
            ours = backend.write(current.with_resource(vm(42)), expected_serial=1)
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    answer = holder.ask("write")
    assert answer.startswith("LockLostError")
    assert holder.lock_id in answer
    assert backend.read() == ours


def test_a_force_unlocked_writer_gets_lock_lost_and_its_heartbeat_notices(
    backends: Callable[..., PostgresBackend],
) -> None:
    writer, admin = backends(lease="500ms"), backends()
    stored = writer.write(document(1), expected_serial=None)
    lock = writer.lock(APPLY, timeout=0)
    admin.force_unlock(lock.id)
    with pytest.raises(LockLostError) as info:
        writer.write(stored, expected_serial=stored.serial)
    assert info.value.current is None
    other = admin.lock(LockRequest(operation="plan"), timeout=0)
    with pytest.raises(LockLostError) as taken:
        writer.write(stored, expected_serial=stored.serial)
    assert taken.value.current == other.info
    deadline = time.monotonic() + 5
    while not lock.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.lost
    assert lock.release() is False
    assert admin.current_lock() == other.info
    # Once the lost lock is released, this backend writes again (plain CAS).
    assert writer.write(stored, expected_serial=1).serial == 2
    other.release()


def test_cas_rejects_a_lost_writer_without_locks(backends: Callable[..., PostgresBackend]) -> None:
    a, b = backends(), backends()
    base = a.write(document(1), expected_serial=None)
    winner = b.write(base.with_resource(vm(1)), expected_serial=base.serial)
    with pytest.raises(StateConflictError):
        a.write(base.with_resource(vm(2)), expected_serial=base.serial)
    assert a.read() == winner


def test_first_writes_racing_on_an_empty_stack_store_one(backends: Callable[..., PostgresBackend]) -> None:
    writers = [backends() for _ in range(4)]
    for writer in writers:
        writer.ensure_schema()
    barrier = threading.Barrier(len(writers))
    results: list[str] = []

    def write(backend: PostgresBackend, index: int) -> None:
        barrier.wait()
        try:
            backend.write(document(index + 1), expected_serial=None)
            results.append("ok")
        except StateConflictError as exc:
            results.append(f"conflict {exc.actual_serial}")

    threads = [threading.Thread(target=write, args=(w, i)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["conflict 1"] * 3 + ["ok"]
