"""Transfer tables: expiry through the heap, per-VM forgetting, completed uploads sharing the file's bytes."""

from __future__ import annotations

import pytest

from reconciler.emulator.arker import transfers as transfers_module
from reconciler.emulator.arker.transfers import ChunkUpload, Transfers


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(transfers_module, "now_epoch", fake)
    return fake


def _chunk(table: Transfers, vm_id: str, upload_id: str) -> ChunkUpload:
    upload = ChunkUpload(vm_id, upload_id, "/f", 4, bytearray(4), table.expiry())
    table.add_chunk(upload)
    return upload


def test_purge_removes_expired_chunks_and_reads_only(clock: _Clock) -> None:
    table = Transfers(ttl_seconds=10)
    _chunk(table, "vm1", "old")
    old_read = table.new_read(b"x")
    clock.now += 5
    _chunk(table, "vm1", "new")
    new_read = table.new_read(b"y")
    clock.now += 6  # the first ones are 11 s old, the others 6 s
    table.purge()
    assert sorted(table.chunks) == [("vm1", "new")]
    assert old_read.token not in table.reads and new_read.token in table.reads
    clock.now += 5
    table.purge()
    assert table.chunks == {} and table.reads == {}


def test_a_replaced_chunk_keeps_its_own_expiry(clock: _Clock) -> None:
    table = Transfers(ttl_seconds=10)
    first = _chunk(table, "vm1", "up")
    table.drop_chunk(first)
    clock.now += 8
    second = _chunk(table, "vm1", "up")  # same key, later expiry: the first heap entry must not remove it
    clock.now += 5
    table.purge()
    assert table.chunk("vm1", "up") is second


def test_forget_vm_drops_only_that_vms_transfers(clock: _Clock) -> None:
    table = Transfers(ttl_seconds=10)
    _chunk(table, "vm1", "a")
    _chunk(table, "vm2", "b")
    mine = table.new_upload("vm1", "/p", 3, secret=False)
    theirs = table.new_upload("vm2", "/p", 3, secret=False)
    table.forget_vm("vm1")
    assert sorted(table.chunks) == [("vm2", "b")]
    assert sorted(table.uploads) == [("vm2", theirs.upload_id)]
    assert mine.token not in table.upload_tokens and theirs.token in table.upload_tokens


def test_a_completed_upload_keeps_the_content_not_a_second_buffer() -> None:
    upload = ChunkUpload("vm1", "up", "/f", 4, bytearray(4), 0.0)
    upload.receive(2, b"cd")
    upload.receive(0, b"ab")
    content = upload.content()
    assert content == b"abcd" and upload.buffer is content and upload.complete
    upload.receive(0, b"AB")  # a resent chunk after completion is written over the content
    assert upload.content() == b"ABcd" and upload.ranges == [(0, 4)]
