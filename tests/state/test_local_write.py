from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import reconciler.state._atomic as atomic
from reconciler.state import (
    LocalStateBackend,
    LockRequest,
    StateBackend,
    StateConflictError,
    StateCorruptError,
    StateDocument,
    StateLineageError,
    StateWriteError,
)

from .helpers import REPO_ROOT, document, vm


@pytest.fixture
def backend(tmp_path: Path) -> LocalStateBackend:
    return LocalStateBackend(tmp_path / ".arkerctl" / "state.json")


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(backend: LocalStateBackend) -> list[str]:
    return sorted(name for name in os.listdir(backend.path.parent) if atomic.TEMP_MARK in name)


def test_is_a_state_backend(backend: LocalStateBackend) -> None:
    assert isinstance(backend, StateBackend)
    assert backend.describe() == f"file://{backend.path}"


def test_missing_state_reads_as_none_without_creating_anything(backend: LocalStateBackend) -> None:
    assert backend.read() is None
    assert not backend.path.parent.exists()


def test_first_write_gets_serial_one_and_reads_back(backend: LocalStateBackend) -> None:
    doc = document(3)
    stored = backend.write(doc, expected_serial=None)
    assert stored.serial == 1
    assert stored.model_copy(update={"serial": 0}) == doc
    assert backend.read() == stored
    assert LocalStateBackend(backend.path).read() == stored  # a fresh process sees the same
    assert not backend.backup_path.exists()  # nothing to back up yet


def test_backend_bumps_the_serial_whatever_the_document_says(backend: LocalStateBackend) -> None:
    first = backend.write(document(1), expected_serial=None)
    second = backend.write(first.model_copy(update={"serial": 99}), expected_serial=first.serial)
    assert second.serial == first.serial + 1
    # With nothing stored, the document's own serial is the base (e.g. state migrated from elsewhere).
    other = LocalStateBackend(backend.path.with_name("other.json"))
    assert other.write(document(1).model_copy(update={"serial": 41}), expected_serial=None).serial == 42


def test_compare_and_swap_on_serial(backend: LocalStateBackend) -> None:
    with pytest.raises(StateConflictError) as missing:
        backend.write(document(1), expected_serial=0)
    assert (missing.value.expected_serial, missing.value.actual_serial) == (0, None)
    assert backend.read() is None

    first = backend.write(document(1), expected_serial=None)
    with pytest.raises(StateConflictError) as stale:
        backend.write(first.with_resource(vm(7)), expected_serial=first.serial - 1)
    assert (stale.value.expected_serial, stale.value.actual_serial) == (0, 1)
    assert "expected serial 0, found serial 1" in str(stale.value)
    with pytest.raises(StateConflictError):
        backend.write(first, expected_serial=None)  # "nothing stored" is also a stale expectation
    assert backend.read() == first


def test_conflict_with_a_write_from_another_instance(backend: LocalStateBackend) -> None:
    mine = backend.write(document(1), expected_serial=None)
    theirs = LocalStateBackend(backend.path)
    theirs_doc = theirs.read()
    assert theirs_doc is not None
    theirs.write(theirs_doc.with_resource(vm(5)), expected_serial=theirs_doc.serial)
    with pytest.raises(StateConflictError) as info:
        backend.write(mine.with_resource(vm(6)), expected_serial=mine.serial)
    assert info.value.actual_serial == mine.serial + 1
    current = backend.read()
    assert (
        current is not None and "vm.worker-5" in current.resources and "vm.worker-6" not in current.resources
    )


def test_lineage_mismatch_is_refused(backend: LocalStateBackend) -> None:
    stored = backend.write(document(2), expected_serial=None)
    stranger = StateDocument(stack="fleet").with_resource(vm(1))
    before = backend.path.read_bytes()
    with pytest.raises(StateLineageError) as info:
        backend.write(stranger, expected_serial=stored.serial)
    assert isinstance(info.value, StateConflictError)
    assert stored.lineage in str(info.value) and stranger.lineage in str(info.value)
    assert backend.path.read_bytes() == before


def test_backup_holds_the_previous_document(backend: LocalStateBackend) -> None:
    first = backend.write(document(1), expected_serial=None)
    first_bytes = backend.path.read_bytes()
    second = backend.write(first.with_resource(vm(9)), expected_serial=first.serial)
    assert backend.backup_path.read_bytes() == first_bytes
    backend.write(second.without("vm.worker-0"), expected_serial=second.serial)
    backup = LocalStateBackend(backend.backup_path).read()
    assert backup == second


def test_backup_of_a_world_readable_state_file_is_still_owner_only(backend: LocalStateBackend) -> None:
    first = backend.write(document(1), expected_serial=None)
    os.chmod(backend.path, 0o644)  # e.g. restored from elsewhere by hand
    backend.write(first.with_resource(vm(2)), expected_serial=first.serial)
    assert _mode(backend.backup_path) == 0o600
    assert LocalStateBackend(backend.backup_path).read() == first


@pytest.mark.usefixtures("open_umask")
def test_every_file_is_owner_only_even_with_a_permissive_umask(backend: LocalStateBackend) -> None:
    first = backend.write(document(1), expected_serial=None)
    backend.write(first.with_resource(vm(3)), expected_serial=first.serial)
    with backend.lock(LockRequest(operation="apply"), timeout=0):
        assert _mode(backend.lock_path) == 0o600
    assert _mode(backend.path.parent) == 0o700
    assert _mode(backend.path) == 0o600
    assert _mode(backend.backup_path) == 0o600
    for path in backend.path.parent.iterdir():
        assert _mode(path) == 0o600, path


def test_failed_rename_leaves_the_old_state_intact_and_no_temp_file(
    backend: LocalStateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend.write(document(2), expected_serial=None)
    before = backend.path.read_bytes()
    real_replace = os.replace

    def crash(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst) == backend.path:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(StateWriteError) as info:
        backend.write(first.with_resource(vm(8)), expected_serial=first.serial)
    assert "No space left on device" in str(info.value) and str(backend.path) in str(info.value)
    assert backend.path.read_bytes() == before
    assert _leftovers(backend) == []
    monkeypatch.undo()
    # The conflict check still knows the stored serial, and the next write succeeds.
    assert backend.write(first.with_resource(vm(8)), expected_serial=first.serial).serial == 2


_CRASHING_WRITER = """
import os, sys
from reconciler.state import LocalStateBackend
from reconciler.state import _atomic
backend = LocalStateBackend(sys.argv[1])
doc = backend.read()
real_replace = os.replace
def die(src, dst):
    if os.fspath(dst) == os.fspath(backend.path):
        os._exit(9)  # the process dies after the temp file is written and fsynced, before the rename
    real_replace(src, dst)
_atomic.os.replace = die
backend.write(doc.without("vm.worker-0"), expected_serial=doc.serial)
"""


def test_a_writer_killed_before_the_rename_loses_nothing(backend: LocalStateBackend) -> None:
    first = backend.write(document(3), expected_serial=None)
    before = backend.path.read_bytes()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    crashed = subprocess.Popen([sys.executable, "-c", _CRASHING_WRITER, str(backend.path)], env=env)
    assert crashed.wait(timeout=30) == 9
    assert backend.path.read_bytes() == before
    (orphan,) = _leftovers(backend)
    assert orphan.startswith(".state.json.tmp.") and f".{crashed.pid}." in orphan
    assert LocalStateBackend(backend.path).read() == first  # the orphan is ignored
    backend.write(first.with_resource(vm(4)), expected_serial=first.serial)
    assert _leftovers(backend) == []  # and swept by the next writer, its pid being gone


def test_writes_from_many_threads_are_serialised(backend: LocalStateBackend) -> None:
    backend.write(StateDocument(stack="fleet"), expected_serial=None)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for attempt in range(200):
                current = backend.read()
                assert current is not None
                try:
                    backend.write(current.with_resource(vm(index)), expected_serial=current.serial)
                    return
                except StateConflictError:
                    time.sleep(0.001 * (attempt % 5))
            raise AssertionError("never managed to write")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = LocalStateBackend(backend.path).read()
    assert final is not None
    assert sorted(final.resources) == sorted(f"vm.worker-{i}" for i in range(8))
    assert final.serial == 1 + 8


def test_corrupt_state_is_an_error_never_an_empty_state(backend: LocalStateBackend) -> None:
    first = backend.write(document(1), expected_serial=None)
    backend.write(first, expected_serial=first.serial)  # so a backup exists
    backend.path.write_text('{"version": 1, "lineage": "x", "serial": ')
    for reader in (backend, LocalStateBackend(backend.path)):
        with pytest.raises(StateCorruptError) as info:
            reader.read()
        assert str(backend.path) in str(info.value)
        assert "not valid JSON" in str(info.value)
        assert f"The previous state is kept in {backend.backup_path}." in str(info.value)
    # A writer must not overwrite what it cannot read.
    with pytest.raises(StateCorruptError):
        LocalStateBackend(backend.path).write(document(1), expected_serial=None)
    assert backend.path.read_text() == '{"version": 1, "lineage": "x", "serial": '


def test_unreadable_state_path_is_a_corrupt_state(backend: LocalStateBackend) -> None:
    backend.path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(StateCorruptError) as info:
        backend.read()
    assert str(backend.path) in str(info.value)


def test_large_state_writes_stay_cheap(tmp_path: Path) -> None:
    """10,000 resources: every write after the first reuses the rendering of unchanged resources."""
    backend = LocalStateBackend(tmp_path / "state.json")
    doc = backend.write(document(10_000), expected_serial=None)
    durations = []
    for index in range(5):
        changed = doc.with_resource(vm(index, description=f"changed {index}"))
        started = time.perf_counter()
        doc = backend.write(changed, expected_serial=doc.serial)
        durations.append(time.perf_counter() - started)
    # Measured about 10 ms on a laptop-class disk; the bound only catches a return to whole-document
    # Python-level encoding (several hundred ms).
    assert min(durations) < 0.2, durations
    assert LocalStateBackend(backend.path).read() == doc
