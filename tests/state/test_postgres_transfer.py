"""``pull``, ``push`` and ``migrate`` between the local file and PostgreSQL backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reconciler.state import (
    LocalStateBackend,
    LockHeldError,
    LockRequest,
    PostgresBackend,
    Pushed,
    StateDocument,
    TransferError,
    encode_state,
    migrate,
    pull,
    push,
)

from .helpers import document, vm


@pytest.fixture
def pg(pg_url: Callable[..., str]) -> Iterator[PostgresBackend]:
    with PostgresBackend.from_url(pg_url()) as backend:
        yield backend


def _rich_local(path: Path, writes: int = 4) -> LocalStateBackend:
    """A local state written a few times, with values that JSONB normalises (key order, unicode, floats)."""
    local = LocalStateBackend(path)
    doc = document(30).with_resource(
        vm(
            900,
            note='naïve ☃ "q" \\ \t',
            ratio=0.1,
            tiny=1e-12,
            huge=1e16,
            big=2**62,
            neg=-0.0,
            nested={"zz": 1, "a": [1.5]},
        )
    )
    stored = local.write(doc, expected_serial=None)
    for index in range(writes - 1):
        stored = local.write(
            stored.with_resource(vm(index, description=f"rev {index}")), expected_serial=stored.serial
        )
    return local


def test_file_to_postgres_to_file_is_byte_equal(tmp_path: Path, pg: PostgresBackend) -> None:
    source = _rich_local(tmp_path / "a" / "state.json")
    original = source.path.read_bytes()
    stored = migrate(source, pg)
    assert stored.serial == 4  # the serial is kept, not bumped
    assert encode_state(pull(pg)) == original
    target = LocalStateBackend(tmp_path / "b" / "state.json")
    back = migrate(pg, target)
    assert back.serial == 4
    assert target.path.read_bytes() == original
    assert source.path.read_bytes() == original  # the source is left alone
    assert pg.current_lock() is None and source.current_lock() is None and target.current_lock() is None


def test_migrate_again_is_a_no_op_and_a_behind_destination_catches_up(
    tmp_path: Path, pg: PostgresBackend
) -> None:
    source = _rich_local(tmp_path / "state.json")
    first = migrate(source, pg)
    assert migrate(source, pg) == first
    assert [entry.serial for entry in pg.history()] == [4]  # nothing written the second time
    newer = source.write(first.with_resource(vm(77)), expected_serial=4)
    caught_up = migrate(source, pg)
    assert caught_up.serial == 5 and caught_up.resources == newer.resources


def test_migrate_refuses_another_lineage_or_a_destination_ahead(tmp_path: Path, pg: PostgresBackend) -> None:
    pg.write(StateDocument(stack="other"), expected_serial=None)
    source = _rich_local(tmp_path / "state.json")
    before = pg.read()
    with pytest.raises(TransferError, match="already holds another state") as info:
        migrate(source, pg)
    assert "Choose an empty destination" in str(info.value)
    assert pg.read() == before
    # Same lineage, but the destination was written after an earlier migration.
    target = LocalStateBackend(tmp_path / "t.json")
    stored = migrate(source, target)
    target.write(stored, expected_serial=stored.serial)
    with pytest.raises(TransferError, match="is at serial 5, not behind the source's serial 4"):
        migrate(source, target)


def test_migrate_refuses_an_empty_source_and_the_same_location(tmp_path: Path, pg: PostgresBackend) -> None:
    empty = LocalStateBackend(tmp_path / "none.json")
    with pytest.raises(TransferError, match=r"there is no state in file://.*none.json to migrate"):
        migrate(empty, pg)
    with pytest.raises(TransferError, match="the same state"):
        migrate(pg, pg)


def test_migrate_waits_for_no_lock_and_leaves_a_held_lock_alone(tmp_path: Path, pg: PostgresBackend) -> None:
    source = _rich_local(tmp_path / "state.json")
    with pg.lock(LockRequest(operation="apply"), timeout=0) as held:
        with pytest.raises(LockHeldError):
            migrate(source, pg)
        assert pg.current_lock() == held.info
        assert source.current_lock() is None  # the source lock was released on the way out
    assert pg.read() is None


def test_pull_current_and_missing(pg: PostgresBackend) -> None:
    with pytest.raises(TransferError, match=r"there is no state in postgresql://.* yet"):
        pull(pg)
    with pytest.raises(TransferError, match=r"serials available: none"):
        pull(pg, 3)
    stored = pg.write(document(2), expected_serial=None)
    assert pull(pg) == stored
    assert pull(pg, 1) == stored


def test_pull_serial_from_a_local_state_uses_its_backup(tmp_path: Path) -> None:
    local = LocalStateBackend(tmp_path / "state.json")
    first = local.write(document(1), expected_serial=None)
    second = local.write(first.with_resource(vm(5)), expected_serial=1)
    assert pull(local, 2) == second
    assert pull(local, 1) == first
    with pytest.raises(TransferError, match=r"does not keep serial 7 \(serials available: 1, 2\)"):
        pull(local, 7)


def test_push_into_an_empty_state_keeps_the_serial(pg: PostgresBackend) -> None:
    doc = document(3).model_copy(update={"serial": 12})
    assert push(pg, doc) == Pushed(doc, written=True)  # serial 12 kept
    assert pg.read() == doc
    assert pg.current_lock() is None


def test_push_refuses_older_serials_other_lineages_and_divergent_documents(pg: PostgresBackend) -> None:
    first = pg.write(document(1), expected_serial=None)
    second = pg.write(first.with_resource(vm(2)), expected_serial=1)
    with pytest.raises(TransferError, match=r"refusing to push serial 1: .* already at serial 2"):
        push(pg, first)
    with pytest.raises(TransferError, match=r"has lineage .* but the document has lineage"):
        push(pg, StateDocument(stack="x", serial=50))
    with pytest.raises(TransferError, match="different document with the same serial 2"):
        push(pg, second.with_resource(vm(3)))
    assert push(pg, second) == Pushed(second, written=False)  # identical: nothing to do
    assert pg.read() == second
    newer, written = push(pg, second.with_resource(vm(3)).model_copy(update={"serial": 3}))
    assert written
    assert newer.serial == 3 and "vm.worker-3" in newer.resources


def test_push_force_rolls_back_and_adopts_the_stored_lineage(pg: PostgresBackend) -> None:
    first = pg.write(document(1), expected_serial=None)
    bad = pg.write(first.with_resource(vm(66)), expected_serial=1)
    rolled = push(pg, pull(pg, 1), force=True).document
    assert rolled.serial == bad.serial + 1
    assert rolled.resources == first.resources
    stranger = StateDocument(stack="x", serial=1).with_resource(vm(8))
    replaced = push(pg, stranger, force=True).document
    assert replaced.lineage == first.lineage and replaced.serial == 4
    assert replaced.resources == stranger.resources
    assert [entry.serial for entry in pg.history()] == [1, 2, 3, 4]
