"""The emulator's state: records in memory with the indexes every request needs, written through to
a :class:`~.persistence.Persistence`.

Costs: lookups by id and by (org, name) are dict hits; listing walks one org's creation-ordered index
from the cursor position found by bisection, so paging through N VMs is O(N) overall. Mutations hold an
``RLock`` so the store stays consistent when one app is driven from several threads; within one event
loop a handler never awaits between reading and writing, which makes each request atomic.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Iterator

from .persistence import Loaded, Persistence
from .records import FileEntry, FilesystemRecord, IdempotencyRecord, MountRecord, RunRecord, VmRecord

__all__ = ["SeqIndex", "Store"]


class SeqIndex:
    """Ids ordered by creation sequence, resumable after any sequence number."""

    __slots__ = ("_ids", "_seqs")

    def __init__(self) -> None:
        self._seqs: list[int] = []
        self._ids: dict[int, str] = {}

    def add(self, seq: int, ident: str) -> None:
        if self._seqs and seq < self._seqs[-1]:
            bisect.insort(self._seqs, seq)  # only while loading out of order
        else:
            self._seqs.append(seq)
        self._ids[seq] = ident

    def remove(self, seq: int) -> None:
        index = bisect.bisect_left(self._seqs, seq)
        if index < len(self._seqs) and self._seqs[index] == seq:
            del self._seqs[index]
        self._ids.pop(seq, None)

    def after(self, seq: int) -> Iterator[tuple[int, str]]:
        """(seq, id) pairs with a sequence greater than ``seq``, oldest first."""
        seqs = self._seqs
        index = bisect.bisect_right(seqs, seq)
        while index < len(seqs):
            current = seqs[index]
            yield current, self._ids[current]
            index += 1

    def __len__(self) -> int:
        return len(self._seqs)


class Store:
    def __init__(self, persistence: Persistence) -> None:
        self.lock = threading.RLock()
        self._persist = persistence
        self._durable = persistence.enabled
        self._clear_memory()

    def _clear_memory(self) -> None:
        self._seq = 0
        self.vms: dict[str, VmRecord] = {}
        self._vm_names: dict[tuple[str, str], str] = {}
        self._org_vms: dict[str, SeqIndex] = {}
        self.filesystems: dict[str, FilesystemRecord] = {}
        self._fs_names: dict[tuple[str, str], str] = {}
        self._org_fs: dict[str, SeqIndex] = {}
        self.mounts: dict[str, MountRecord] = {}
        self._vm_mounts: dict[str, dict[str, MountRecord]] = {}
        self.runs: dict[str, RunRecord] = {}
        self._vm_runs: dict[str, SeqIndex] = {}
        self.idempotency: dict[str, IdempotencyRecord] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def load(self) -> None:
        """Read back what the persistence holds (after goldens were seeded)."""
        loaded: Loaded = self._persist.load()
        with self.lock:
            for data in loaded.rows.get("vms", []):
                vm = VmRecord.from_json(data)
                vm.files = loaded.files.get(vm.vm_id, {})
                self._index_vm(vm)
            for data in loaded.rows.get("filesystems", []):
                self._index_fs(FilesystemRecord.from_json(data))
            for data in loaded.rows.get("mounts", []):
                mount = MountRecord.from_json(data)
                if mount.vm_id in self.vms:
                    self._index_mount(mount)
            for data in loaded.rows.get("runs", []):
                run = RunRecord.from_json(data)
                if run.vm_id in self.vms:
                    self._index_run(run)
            for data in loaded.rows.get("idempotency", []):
                record = IdempotencyRecord.from_json(data)
                self.idempotency[record.ident] = record
            seqs = [vm.seq for vm in self.vms.values()]
            seqs += [fs.seq for fs in self.filesystems.values()]
            seqs += [m.seq for m in self.mounts.values()] + [r.seq for r in self.runs.values()]
            self._seq = max([self._seq, *seqs])

    def reset(self) -> None:
        """Forget everything (memory and persistence); the caller re-seeds the goldens."""
        with self.lock:
            self._persist.clear()
            self._clear_memory()

    def close(self) -> None:
        self._persist.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group the writes of one request (a fork writes the VM, its files and its idempotency key)."""
        return self._persist.transaction()

    # --- VMs ------------------------------------------------------------------------------------

    def _index_vm(self, vm: VmRecord) -> None:
        self.vms[vm.vm_id] = vm
        if vm.name is not None:
            self._vm_names[(vm.owner_org_id, vm.name)] = vm.vm_id
        self._org_vms.setdefault(vm.owner_org_id, SeqIndex()).add(vm.seq, vm.vm_id)

    def add_vm(self, vm: VmRecord) -> None:
        with self.lock:
            self._index_vm(vm)
            if self._durable and not vm.golden:
                with self._persist.transaction():
                    self._persist.put("vms", vm.vm_id, vm.to_json())
                    self._persist.put_files(vm.vm_id, vm.files)

    def save_vm(self, vm: VmRecord) -> None:
        """Persist a changed VM (its files are saved through :meth:`put_file`)."""
        if vm.golden or not self._durable:
            return
        with self.lock:
            self._persist.put("vms", vm.vm_id, vm.to_json())

    def vm_by_name(self, org_id: str, name: str) -> VmRecord | None:
        vm_id = self._vm_names.get((org_id, name))
        return self.vms.get(vm_id) if vm_id is not None else None

    def org_vms_after(self, org_id: str, seq: int) -> Iterator[VmRecord]:
        index = self._org_vms.get(org_id)
        if index is None:
            return
        for _, vm_id in index.after(seq):
            vm = self.vms.get(vm_id)
            if vm is not None:
                yield vm

    def delete_vm(self, vm: VmRecord) -> None:
        with self.lock, self._persist.transaction():
            for mount in list(self._vm_mounts.get(vm.vm_id, {}).values()):
                self.delete_mount(mount)
            for run_id in [ident for _, ident in self._vm_runs.pop(vm.vm_id, SeqIndex()).after(0)]:
                self.runs.pop(run_id, None)
                self._persist.delete("runs", run_id)
            self.vms.pop(vm.vm_id, None)
            if vm.name is not None:
                self._vm_names.pop((vm.owner_org_id, vm.name), None)
            index = self._org_vms.get(vm.owner_org_id)
            if index is not None:
                index.remove(vm.seq)
            self._persist.delete("vms", vm.vm_id)
            self._persist.delete_files(vm.vm_id)

    def put_file(self, vm: VmRecord, path: str, entry: FileEntry) -> None:
        with self.lock:
            vm.files[path] = entry
            if self._durable and not vm.golden:
                self._persist.put_files(vm.vm_id, {path: entry})

    # --- filesystems ----------------------------------------------------------------------------

    def _index_fs(self, fs: FilesystemRecord) -> None:
        self.filesystems[fs.filesystem_id] = fs
        self._fs_names[(fs.owner_org_id, fs.name)] = fs.filesystem_id
        self._org_fs.setdefault(fs.owner_org_id, SeqIndex()).add(fs.seq, fs.filesystem_id)

    def add_filesystem(self, fs: FilesystemRecord) -> None:
        with self.lock:
            self._index_fs(fs)
            if self._durable:
                self._persist.put("filesystems", fs.filesystem_id, fs.to_json())

    def filesystem_by_name(self, org_id: str, name: str) -> FilesystemRecord | None:
        ident = self._fs_names.get((org_id, name))
        return self.filesystems.get(ident) if ident is not None else None

    def org_filesystems_after(self, org_id: str, seq: int) -> Iterator[FilesystemRecord]:
        index = self._org_fs.get(org_id)
        if index is None:
            return
        for _, ident in index.after(seq):
            fs = self.filesystems.get(ident)
            if fs is not None:
                yield fs

    def delete_filesystem(self, fs: FilesystemRecord) -> None:
        with self.lock:
            self.filesystems.pop(fs.filesystem_id, None)
            self._fs_names.pop((fs.owner_org_id, fs.name), None)
            index = self._org_fs.get(fs.owner_org_id)
            if index is not None:
                index.remove(fs.seq)
            self._persist.delete("filesystems", fs.filesystem_id)

    def filesystem_in_use(self, filesystem_id: str) -> bool:
        return any(m.filesystem_id == filesystem_id for m in self.mounts.values())

    # --- mounts ---------------------------------------------------------------------------------

    def _index_mount(self, mount: MountRecord) -> None:
        self.mounts[mount.mount_id] = mount
        self._vm_mounts.setdefault(mount.vm_id, {})[mount.mount_id] = mount

    def add_mount(self, mount: MountRecord) -> None:
        with self.lock:
            self._index_mount(mount)
            if self._durable:
                self._persist.put("mounts", mount.mount_id, mount.to_json())

    def vm_mounts(self, vm_id: str) -> list[MountRecord]:
        """Mounts of one VM, oldest first."""
        return sorted(self._vm_mounts.get(vm_id, {}).values(), key=lambda m: m.seq)

    def delete_mount(self, mount: MountRecord) -> None:
        with self.lock:
            self.mounts.pop(mount.mount_id, None)
            self._vm_mounts.get(mount.vm_id, {}).pop(mount.mount_id, None)
            self._persist.delete("mounts", mount.mount_id)

    # --- runs -----------------------------------------------------------------------------------

    def _index_run(self, run: RunRecord) -> None:
        self.runs[run.run_id] = run
        self._vm_runs.setdefault(run.vm_id, SeqIndex()).add(run.seq, run.run_id)

    def add_run(self, run: RunRecord) -> None:
        with self.lock:
            self._index_run(run)
            if self._durable:
                self._persist.put("runs", run.run_id, run.to_json())

    def vm_runs_after(self, vm_id: str, seq: int) -> Iterator[RunRecord]:
        index = self._vm_runs.get(vm_id)
        if index is None:
            return
        for _, run_id in index.after(seq):
            run = self.runs.get(run_id)
            if run is not None:
                yield run

    # --- idempotency keys -----------------------------------------------------------------------

    def idempotency_record(self, org_id: str, operation: str, key: str) -> IdempotencyRecord | None:
        return self.idempotency.get(f"{org_id}\x1f{operation}\x1f{key}")

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        with self.lock:
            self.idempotency[record.ident] = record
            if self._durable:
                self._persist.put("idempotency", record.ident, record.to_json())
