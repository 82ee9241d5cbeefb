"""The FastVM provider: refresh live objects with the fewest calls, and carry out one operation at a time.

Refresh reads:

1. the stack's VMs, one ``list_vms(metadata={arkerctl-lineage: <lineage>})`` (every VM we launch carries
   our ownership tags), plus ``GET /v1/vms/{id}`` only for a managed VM the list lacks (tags removed out
   of band, or an imported VM never tagged);
2. the volume list, once, when any Filesystem or Sync is desired or recorded (attachments come with it);
3. per managed VM, only what the VM object lacks and only when managed: SSH keys, services, and one
   ``sha256sum`` per declared file.

A launch records a *pending* state entry holding the ownership tags first; a launch whose answer was lost
is found again by those tags (``list_vms(metadata=...)``) instead of launched twice, right away or by
the next refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reconciler.engine.model import LiveResource, ResourceConfig, state_values, strip_reserved
from reconciler.manifest import DesiredState, DesiredSync, DesiredVM
from reconciler.state.model import ResourceState, StateDocument

from .._entries import (
    create_by_kind,
    dependency_id,
    find_by_id_or_name,
    gather_limited,
    handle_has_id,
    ignored_roots,
    imported_values,
    kind_of,
    owned_entries,
    pending_entry,
    recorded_entry,
)
from ..base import PENDING_KEY, ApplyContext, ImportError_, is_pending
from . import resources as rmap
from .client import FastvmClient
from .errors import Conflict, FastvmError, FastvmTimeoutError, FastvmTransportError, NotFound
from .wire import Ttl, Vm, VmUpdate, Volume, VolumeAttachment

__all__ = ["FastvmProvider"]

T = TypeVar("T")


@dataclass
class _Snapshot:
    """What one refresh read; dropped when the refresh returns."""

    vms_by_id: dict[str, Vm] = field(default_factory=dict)
    volumes_by_id: dict[str, Volume] = field(default_factory=dict)
    volumes_by_name: dict[str, Volume] = field(default_factory=dict)


class FastvmProvider:
    """``Provider`` for FastVM (see ``reconciler/providers/base.py``)."""

    name = rmap.PROVIDER

    def __init__(
        self,
        client: FastvmClient,
        desired: DesiredState,
        *,
        parallelism: int = 10,
        launch_timeout: float = 300.0,
        mount_timeout: float = 300.0,
        poll_interval: float = 0.5,
    ) -> None:
        self.client = client
        self.desired = desired
        self.parallelism = max(1, parallelism)
        self.launch_timeout = launch_timeout
        self.mount_timeout = mount_timeout
        self.poll_interval = poll_interval
        self._vms: dict[str, DesiredVM] = {vm.address: vm for vm in desired.vms if vm.provider == self.name}
        self._syncs: dict[str, DesiredSync] = {s.address: s for s in desired.syncs if s.provider == self.name}
        self._filesystems = {fs.address: fs for fs in desired.filesystems}  # by address: no scan per create
        self._configs = rmap.configs(desired)
        self._by_address = {c.address: c for c in self._configs}

    def configs(self) -> tuple[ResourceConfig, ...]:
        return self._configs

    # ── refresh ─────────────────────────────────────────────────────────────────────────────────────────

    async def _gather(self, calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
        return await gather_limited(calls, self.parallelism)

    async def _get_or_none(self, vm_id: str) -> Vm | None:
        try:
            return await self.client.get_vm(vm_id)
        except NotFound:
            return None

    def warm(self, connections: int) -> None:
        self.client.warm(connections)

    def prefetch(self) -> asyncio.Future[Any] | None:
        return None  # the VM list is filtered by the state's lineage: nothing to read before it

    async def refresh(
        self,
        state: StateDocument | None,
        on_live: Callable[[LiveResource], None] | None = None,
        prefetched: asyncio.Future[Any] | None = None,
    ) -> dict[str, LiveResource]:
        # ``on_live`` is an optional hint; FastVM refreshes are small (one list per kind) and skip it.
        recorded = owned_entries(state, self.name)
        addresses = sorted(set(self._by_address) | set(recorded))
        kinds = {kind_of(self._by_address.get(a), recorded.get(a)) for a in addresses}
        snap = _Snapshot()
        by_tag: dict[str, Vm] = {}
        if state is not None and rmap.KIND_VM in {e.kind for e in recorded.values()}:
            # Nothing is ours before the first state write: no state, no VM of this stack to look for.
            tagged = await self.client.list_vms(metadata={rmap.LINEAGE_TAG: state.lineage})
            snap.vms_by_id = {vm.id: vm for vm in tagged}
            by_tag = {vm.metadata[rmap.ADDRESS_TAG]: vm for vm in tagged if rmap.ADDRESS_TAG in vm.metadata}
            missing = sorted(
                e.id
                for e in recorded.values()
                if e.kind == rmap.KIND_VM and e.id and e.id not in snap.vms_by_id
            )
            for vm in await self._gather([lambda i=i: self._get_or_none(i) for i in missing]):  # type: ignore[misc]
                if vm is not None:
                    snap.vms_by_id[vm.id] = vm
        if kinds & {rmap.KIND_FILESYSTEM, rmap.KIND_SYNC}:
            volumes = await self.client.list_volumes()
            snap.volumes_by_id = {v.id: v for v in volumes}
            snap.volumes_by_name = {v.name: v for v in volumes}

        live: dict[str, LiveResource] = {}
        vm_reads: list[tuple[str, Vm, ResourceState | None]] = []
        for address in addresses:
            config, entry = self._by_address.get(address), recorded.get(address)
            kind = kind_of(config, entry)
            if kind == rmap.KIND_VM:
                vm = self._find_vm(snap, by_tag, address, entry)
                if vm is not None:
                    vm_reads.append((address, vm, entry))
            elif kind == rmap.KIND_FILESYSTEM:
                volume = self._find_volume(snap, config, entry)
                if volume is not None:
                    wanted = set(config.values if config else ()) | set(
                        strip_reserved(entry.values if entry else {})
                    )
                    live[address] = rmap.live_filesystem(address, volume, wanted)
        views = await self._gather(
            [lambda a=a, v=v, e=e: self._live_vm(a, v, e) for a, v, e in vm_reads]  # type: ignore[misc]
        )
        for view in views:
            live[view.address] = view
        for address in addresses:
            config, entry = self._by_address.get(address), recorded.get(address)
            if kind_of(config, entry) == rmap.KIND_SYNC:
                found = self._find_attachment(snap, live, address, config, entry)
                if found is not None:
                    live[address] = found
        return dict(sorted(live.items()))

    @staticmethod
    def _find_vm(
        snap: _Snapshot, by_tag: Mapping[str, Vm], address: str, entry: ResourceState | None
    ) -> Vm | None:
        if entry is None:
            # Not in state: one of ours only if a lost state still left our tags on it (a conflict).
            return None
        if entry.id:
            return snap.vms_by_id.get(entry.id)
        if is_pending(entry):
            handle = entry.values.get(PENDING_KEY)
            excluded = handle.get("replacing") if isinstance(handle, Mapping) else None
            found = by_tag.get(address)
            return found if found is not None and found.id != excluded else None
        return None

    @staticmethod
    def _find_volume(
        snap: _Snapshot, config: ResourceConfig | None, entry: ResourceState | None
    ) -> Volume | None:
        # Without a recorded id, by name: names are unique per org (a volume found so is a conflict).
        return find_by_id_or_name(snap.volumes_by_id, snap.volumes_by_name, config, entry)

    def _find_attachment(
        self,
        snap: _Snapshot,
        live: Mapping[str, LiveResource],
        address: str,
        config: ResourceConfig | None,
        entry: ResourceState | None,
    ) -> LiveResource | None:
        attachment: VolumeAttachment | None = None
        if entry is not None and entry.id:
            vm_id, volume_id = rmap.split_attachment_id(entry.id)
            volume = snap.volumes_by_id.get(volume_id)
            attachment = next((a for a in (volume.attachments if volume else ()) if a.vm_id == vm_id), None)
        elif config is not None:
            sync = self._syncs.get(address)
            vm_view = live.get(sync.vm_address) if sync is not None else None
            volume = snap.volumes_by_name.get(sync.filesystem_name) if sync is not None else None
            if sync is not None and vm_view is not None and volume is not None:
                attachment = next(
                    (a for a in volume.attachments if a.vm_id == vm_view.id and a.mount_path == sync.path),
                    None,
                )
        if attachment is None:
            return None
        vm = snap.vms_by_id.get(attachment.vm_id)
        volume = snap.volumes_by_id.get(attachment.volume_id)
        values = rmap.sync_values(
            vm.name if vm is not None else attachment.vm_id,
            volume.name if volume is not None else attachment.volume_id,
            attachment.mount_path,
        )
        name = config.name if config is not None else entry.name if entry is not None else ""
        return LiveResource(
            address=address, kind=rmap.KIND_SYNC, name=name, id=rmap.attachment_id(attachment), values=values
        )

    async def _live_vm(self, address: str, vm: Vm, entry: ResourceState | None) -> LiveResource:
        config = self._by_address.get(address)
        recorded = strip_reserved(entry.values) if entry is not None else {}
        wanted = set(config.values if config is not None else ()) | set(recorded)
        keys: list[str] | None = None
        services: dict[str, tuple[int, bool]] | None = None
        files: dict[str, str | None] | None = None
        reads: list[Callable[[], Awaitable[Any]]] = []
        if "ssh_keys" in wanted:
            reads.append(lambda: self.client.list_ssh_keys(vm.id))
        if "services" in wanted:
            reads.append(lambda: self.client.list_services(vm.id))
        paths = sorted(
            set((config.values if config else {}).get("files", {})) | set(recorded.get("files", {}))
        )
        results = await asyncio.gather(
            *(read() for read in reads), *(self.client.file_sha256(vm.id, path) for path in paths)
        )
        position = 0
        if "ssh_keys" in wanted:
            keys = [key.fingerprint for key in results[position]]
            position += 1
        if "services" in wanted:
            services = {s.name: (s.port, s.h2c) for s in results[position]}
            position += 1
        if paths:
            files = dict(zip(paths, results[position:], strict=True))
        values = rmap.live_vm_values(
            vm, wanted=wanted, ssh_keys=keys, services=services, files=files, recorded=recorded
        )
        name = config.name if config is not None else vm.name
        return LiveResource(address=address, kind=rmap.KIND_VM, name=name, id=vm.id, values=values)

    # ── apply ───────────────────────────────────────────────────────────────────────────────────────────

    def _recorded(
        self, config: ResourceConfig, object_id: str, values: dict[str, Any] | None = None
    ) -> ResourceState:
        return recorded_entry(config, object_id, self.name, values)

    def _pending(self, config: ResourceConfig, handle: dict[str, Any]) -> ResourceState:
        return pending_entry(config, handle, self.name)

    async def create(self, config: ResourceConfig, ctx: ApplyContext, *, replacing: str | None) -> None:
        # An ambiguous failure keeps the pending entry: the next refresh finds the object by its tags.
        creators = {
            rmap.KIND_VM: lambda: self._create_vm(config, ctx, replacing),
            rmap.KIND_FILESYSTEM: lambda: self._create_volume(config, ctx),
            rmap.KIND_SYNC: lambda: self._create_attachment(config, ctx),
        }
        await create_by_kind(config, ctx, creators, errors=FastvmError, maybe_done=_maybe_done)

    async def _snapshot_id(self, config: ResourceConfig) -> str | None:
        wanted = config.values.get("snapshot")
        if wanted is None:
            return None
        snapshots = await self.client.list_snapshots()
        match = next((s for s in snapshots if s.id == wanted), None) or next(
            (s for s in sorted(snapshots, key=lambda s: s.created_at) if s.name == wanted), None
        )
        if match is None:
            raise ValueError(f"{config.address}: no FastVM snapshot has the name or id {wanted!r}")
        return match.id

    async def _create_vm(self, config: ResourceConfig, ctx: ApplyContext, replacing: str | None) -> None:
        vm_spec = self._vms[config.address]
        snapshot_id = await self._snapshot_id(config)
        tags = rmap.ownership_tags(ctx.lineage, config.address)
        handle: dict[str, Any] = {"metadata": tags, "name": config.name}
        if replacing:
            handle["replacing"] = replacing  # the old VM carries the same tags until it is deleted
        earlier = ctx.current(config.address)
        # Intent first: a crash after the launch leaves a pending entry that the next refresh resolves.
        await ctx.record(self._pending(config, handle))
        vm: Vm | None = None
        if earlier is not None and is_pending(earlier):
            # A re-run of this create (the workflow retries transient failures): an earlier attempt may
            # have launched the VM already. Look for it by its tags before launching another.
            vm = await self._tagged(tags, replacing)
        if vm is None:
            body = rmap.launch_request(config, vm_spec, lineage=ctx.lineage, snapshot_id=snapshot_id)
            try:
                vm = await self.client.launch_vm(body)
            except (FastvmTransportError, FastvmTimeoutError) as err:
                if not getattr(err, "ambiguous", False):
                    raise
                vm = await self._tagged(tags, replacing)
                if vm is None:
                    raise  # not (yet) visible: the pending entry stays, the next refresh looks again
        await ctx.record(self._pending(config, {**handle, "id": vm.id}))
        vm = await self.client.wait_running(vm.id, self.launch_timeout, poll_interval=self.poll_interval)
        values = config.values
        if "ssh_keys" in values:
            await self._sync_keys(vm.id, config.address, values["ssh_keys"], [])
        if "services" in values:
            await self._sync_services(vm.id, values["services"], {})
        await self._write_files(vm.id, config, {})
        await ctx.record(self._recorded(config, vm.id))

    async def _tagged(self, tags: Mapping[str, str], replacing: str | None) -> Vm | None:
        """The one VM carrying ``tags`` (other than the one being replaced), if exactly one does."""
        found = [v for v in await self.client.list_vms(metadata=tags) if v.id != replacing]
        return found[0] if len(found) == 1 else None

    def _key_texts(self, address: str) -> dict[str, str]:
        vm = self._vms.get(address)
        return {rmap.fingerprint(k.public_key): k.public_key for k in (vm.ssh_keys or ())} if vm else {}

    async def _sync_keys(self, vm_id: str, address: str, wanted: Iterable[str], live: Iterable[str]) -> None:
        wanted_set, live_set = set(wanted), set(live)
        texts = self._key_texts(address)
        for fp in sorted(wanted_set - live_set):
            await self.client.add_ssh_key(vm_id, texts[fp])
        for fp in sorted(live_set - wanted_set):
            await self.client.delete_ssh_key(vm_id, fp)

    async def _sync_services(
        self, vm_id: str, wanted: Mapping[str, Mapping[str, Any]], live: Mapping[str, Mapping[str, Any]]
    ) -> None:
        for name in sorted(live):
            if name not in wanted:
                await self.client.delete_service(vm_id, name)
        for name, spec in sorted(wanted.items()):
            if name not in live:
                await self.client.register_service(vm_id, name, spec["port"], h2c=spec["h2c"])
            elif dict(live[name]) != dict(spec):
                await self.client.put_service(vm_id, name, spec["port"], h2c=spec["h2c"])

    async def _write_files(self, vm_id: str, config: ResourceConfig, live: Mapping[str, Any]) -> None:
        vm = self._vms.get(config.address)
        if vm is None or not vm.files or "files" in ignored_roots(config):
            return
        current = live.get("files", {})
        for file in vm.files:
            if current.get(file.path) != "sha256:" + file.sha256:
                await self.client.write_file(vm_id, file.path, file.content)

    async def _create_volume(self, config: ResourceConfig, ctx: ApplyContext) -> None:
        fs = self._filesystems[config.address]
        await ctx.record(self._pending(config, {"name": config.name}))
        try:
            volume = await self.client.create_volume(
                config.name, fs.size_gib or 1, access_mode=fs.access_mode or "rw"
            )
        except (Conflict, FastvmTransportError) as err:
            if isinstance(err, FastvmTransportError) and not err.ambiguous:
                raise
            # An ambiguous earlier attempt of this very create may have succeeded: the pending entry says
            # this name is ours to take (names are unique per org).
            match = next((v for v in await self.client.list_volumes() if v.name == config.name), None)
            if match is None:
                raise
            volume = match
        await ctx.record(self._recorded(config, volume.id))

    async def _create_attachment(self, config: ResourceConfig, ctx: ApplyContext) -> None:
        sync = self._syncs[config.address]
        vm_id = dependency_id(ctx, sync.vm_address)
        volume_id = dependency_id(ctx, sync.filesystem_address)
        fs = self._filesystems.get(sync.filesystem_address)
        read_only = fs is not None and fs.access_mode == "ro"
        await ctx.record(self._pending(config, {"vm_id": vm_id, "volume_id": volume_id, "path": sync.path}))
        # Attaching the same volume at the same path again answers the existing attachment: safe to replay.
        attachment = await self.client.attach_volume(vm_id, volume_id, sync.path, read_only=read_only)
        object_id = rmap.attachment_id(attachment)
        await ctx.record(
            self._pending(
                config, {"vm_id": vm_id, "volume_id": volume_id, "path": sync.path, "id": object_id}
            )
        )
        await self.client.wait_mounted(vm_id, volume_id, self.mount_timeout)
        await ctx.record(self._recorded(config, object_id))

    async def update(
        self, config: ResourceConfig, current: ResourceState, live: LiveResource | None, ctx: ApplyContext
    ) -> None:
        object_id = live.id if live is not None else current.id
        live_values = live.values if live is not None else {}
        wanted = rmap.managed(config.values, config.lifecycle)
        if config.kind == rmap.KIND_VM:
            await self._update_vm(object_id, config, wanted, live_values, ctx)
        elif (
            config.kind == rmap.KIND_FILESYSTEM
            and "size_gib" in wanted
            and wanted["size_gib"] != live_values.get("size_gib")
        ):
            await self.client.update_volume(object_id, size_gib=wanted["size_gib"])
        # Syncs have no in-place fields: an update only records the new config.
        await ctx.record(self._recorded(config, object_id))

    async def _update_vm(
        self,
        vm_id: str,
        config: ResourceConfig,
        wanted: Mapping[str, Any],
        live: Mapping[str, Any],
        ctx: ApplyContext,
    ) -> None:
        patch: dict[str, Any] = {}
        if "metadata" in wanted and wanted["metadata"] != live.get("metadata"):
            # The whole map is replaced: our tags go along, or the VM could not be found again.
            patch["metadata"] = {**wanted["metadata"], **rmap.ownership_tags(ctx.lineage, config.address)}
        if "ttl" in wanted and wanted["ttl"] != live.get("ttl"):
            patch["ttl"] = Ttl(**wanted["ttl"])
        if patch:
            await self.client.update_vm(vm_id, VmUpdate(**patch))
        axes = {a: v for a, v in rmap.firewall_axes(wanted).items() if wanted[a] != live.get(a)}
        if axes:
            await self.client.patch_firewall(vm_id, axes)
        if "ssh_keys" in wanted and wanted["ssh_keys"] != live.get("ssh_keys"):
            await self._sync_keys(vm_id, config.address, wanted["ssh_keys"], live.get("ssh_keys", []))
        if "services" in wanted and wanted["services"] != live.get("services"):
            await self._sync_services(vm_id, wanted["services"], live.get("services", {}))
        await self._write_files(vm_id, config, live)

    async def delete(self, current: ResourceState, ctx: ApplyContext) -> None:
        if current.id:
            try:
                if current.kind == rmap.KIND_VM:
                    await self.client.delete_vm(current.id)
                elif current.kind == rmap.KIND_FILESYSTEM:
                    await self.client.delete_volume(current.id)
                elif current.kind == rmap.KIND_SYNC:
                    vm_id, volume_id = rmap.split_attachment_id(current.id)
                    await self.client.detach_volume(vm_id, volume_id)
            except NotFound:
                pass  # already gone (deleted outside arkerctl, or with its VM)
        await ctx.forget(current.address)

    # ── import ──────────────────────────────────────────────────────────────────────────────────────────

    async def import_resource(self, config: ResourceConfig, object_id: str) -> ResourceState:
        try:
            if config.kind == rmap.KIND_VM:
                vm = await self.client.get_vm(object_id)
                view = await self._live_vm(config.address, vm, self._recorded(config, vm.id))
                return self._recorded(
                    config, vm.id, imported_values(config, view.values, rmap.READ_FROM_STATE)
                )
            if config.kind == rmap.KIND_FILESYSTEM:
                volume = await self.client.get_volume(object_id)
                stored = state_values(config)
                stored.update(rmap.live_filesystem_values(volume, config.values))
                return self._recorded(config, volume.id, dict(sorted(stored.items())))
            vm_id, volume_id = rmap.split_attachment_id(object_id)
            attachments = await self.client.list_attachments(vm_id)
        except ValueError as err:
            raise ImportError_(str(err)) from err
        except NotFound as err:
            raise ImportError_(
                f"no FastVM {config.kind} with id {object_id} is visible to this API key"
            ) from err
        if not any(a.volume_id == volume_id for a in attachments):
            raise ImportError_(f"FastVM VM {vm_id} has no attachment of volume {volume_id}")
        return self._recorded(config, object_id)


def _maybe_done(err: FastvmError, entry: ResourceState) -> bool:
    """Whether the object may exist despite ``err``: the request may have been processed, or an earlier
    step (the launch itself) had already succeeded."""
    if handle_has_id(entry):
        return True
    return bool(getattr(err, "ambiguous", False))
