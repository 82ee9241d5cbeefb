"""Everything one FastVM emulator instance holds, the org-scoped lookups, and the time-driven transitions.

In memory only: ``--db`` is refused for this platform (``create_app`` says so). Handlers are synchronous,
so each request reads and writes the state atomically on the event loop; the lock covers the rare caller
from another thread (``/_emulator/reset``, tests).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

from ..settings import EmulatorSettings
from .auth import Org, OrgDirectory
from .errors import ApiError
from .records import (
    AttachmentRecord,
    BuildRecord,
    SnapshotRecord,
    StagingObject,
    VmRecord,
    VolumeRecord,
)

__all__ = ["FastvmState", "new_id"]


def new_id() -> str:
    return str(uuid.uuid4())


class FastvmState:
    def __init__(self, settings: EmulatorSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.orgs = OrgDirectory(settings.api_keys)
        self.clock = clock
        self.lock = threading.RLock()
        self.vms: dict[str, VmRecord] = {}
        self.volumes: dict[str, VolumeRecord] = {}
        self.attachments: dict[tuple[str, str], AttachmentRecord] = {}  # (vm_id, volume_id)
        self.snapshots: dict[str, SnapshotRecord] = {}
        self.staging: dict[str, StagingObject] = {}  # by upload and by download token
        self.builds: dict[str, BuildRecord] = {}

    def now(self) -> float:
        return self.clock()

    def reset(self) -> None:
        with self.lock:
            for table in (
                self.vms,
                self.volumes,
                self.attachments,
                self.snapshots,
                self.staging,
                self.builds,
            ):
                table.clear()

    def close(self) -> None:
        """Nothing to release (no persistence); present so servers can close every platform alike."""

    # --- VMs -------------------------------------------------------------------------------------------

    def vm(self, org: Org, vm_id: str) -> VmRecord:
        """The org's VM (settled to now); 404 for unknown ids and for other orgs' VMs alike."""
        vm = self.vms.get(vm_id)
        if vm is None or vm.org_id != org.org_id:
            raise ApiError.not_found("vm")
        self.settle(vm)
        if vm.vm_id not in self.vms:  # a TTL with action delete fired
            raise ApiError.not_found("vm")
        return vm

    def org_vms(self, org: Org) -> Iterator[VmRecord]:
        for vm in sorted(self.vms.values(), key=lambda v: (v.created_at, v.vm_id)):
            if vm.org_id == org.org_id:
                self.settle(vm)
                if vm.vm_id in self.vms:
                    yield vm

    def settle(self, vm: VmRecord) -> None:
        """Apply the transitions whose deadline has passed: boot completion, then TTL expiry."""
        now = self.now()
        if vm.status == "provisioning" and now >= vm.ready_at:
            vm.status = "running"
            self.arm_ttl(vm, at=vm.ready_at)
        expires = vm.expires_at_ms
        if vm.status == "running" and vm.ttl is not None and expires is not None and now * 1000 >= expires:
            action, seconds = vm.ttl
            if action == "delete":
                self.delete_vm(vm)
            else:
                # pause re-arms the cycle for the next running session.
                vm.status = "paused"
                vm.paused_at = expires / 1000
                vm.expires_at_ms = None
                vm.ttl_remaining_ms = seconds * 1000

    def arm_ttl(self, vm: VmRecord, *, at: float | None = None) -> None:
        """Start a fresh TTL cycle (running: a deadline; paused: a remaining budget)."""
        if vm.ttl is None:
            vm.expires_at_ms = vm.ttl_remaining_ms = None
            return
        budget = vm.ttl[1] * 1000
        if vm.status == "paused":
            vm.expires_at_ms, vm.ttl_remaining_ms = None, budget
        elif vm.status == "running":
            vm.expires_at_ms, vm.ttl_remaining_ms = (
                int((self.now() if at is None else at) * 1000) + budget,
                None,
            )
        else:  # provisioning: armed when it turns running
            vm.expires_at_ms = vm.ttl_remaining_ms = None

    def delete_vm(self, vm: VmRecord) -> None:
        self.vms.pop(vm.vm_id, None)
        for key in [key for key in self.attachments if key[0] == vm.vm_id]:
            del self.attachments[key]
        for token in [t for t, obj in self.staging.items() if obj.vm_id == vm.vm_id]:
            del self.staging[token]

    # --- volumes, snapshots, builds ---------------------------------------------------------------------

    def volume(self, org: Org, volume_id: str) -> VolumeRecord:
        volume = self.volumes.get(volume_id)
        if volume is None or volume.org_id != org.org_id:
            raise ApiError.not_found("volume")
        return volume

    def volume_attachments(self, volume_id: str) -> list[AttachmentRecord]:
        found = [a for (_, vol), a in self.attachments.items() if vol == volume_id]
        return sorted(found, key=lambda a: (a.vm_id, a.mount_path))

    def vm_attachments(self, vm_id: str) -> list[AttachmentRecord]:
        found = [a for (vm, _), a in self.attachments.items() if vm == vm_id]
        return sorted(found, key=lambda a: (a.mount_path, a.volume_id))

    def snapshot(self, org: Org, snapshot_id: str) -> SnapshotRecord:
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None or snapshot.org_id != org.org_id:
            raise ApiError.not_found("snapshot")
        return snapshot

    def build(self, org: Org, build_id: str) -> BuildRecord:
        build = self.builds.get(build_id)
        if build is None or build.org_id != org.org_id:
            raise ApiError.not_found("build")
        return build
