"""The Arker provider: refresh live objects with the fewest calls, and carry out one operation at a time.

Refresh reads, in this order and in parallel where possible:

1. every VM of the org, one paginated list (names, descriptions, resources, keys, ``public``);
2. the filesystem list, once, when any filesystem or Sync is managed;
3. per VM, only what the list lacks and only where it is managed: ``GET /v1/vms/{id}`` for policy rules
   (the list omits them; ``GET .../policies`` has no rule ids), a sync manifest per directory of declared
   files, and the mount list for VMs that carry Syncs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reconciler.engine.errors import TransientError
from reconciler.engine.model import LiveResource, ResourceConfig, strip_reserved
from reconciler.manifest import DesiredState, DesiredVM, Diagnostic, ManifestError
from reconciler.state.model import ResourceState, StateDocument
from reconciler.state.share import ValueSharer

from .._entries import (
    create_by_kind,
    dependency_id,
    find_by_id_or_name,
    gather_limited,
    handle_has_id,
    ignored_roots,
    imported_values,
    owned_entries,
    pending_entry,
    recorded_entry,
)
from ..base import ApplyContext, ImportError_, is_pending
from . import resources as rmap
from .client import ArkerClient
from .errors import AlreadyExists, ArkerError, Conflict, GatewayTimeout, IdempotencyConflict, NotFound
from .idempotency import fork_idempotency_key
from .wire import Filesystem, Mount, PatchVmRequest, PolicyUpdate, Vm

__all__ = ["ArkerProvider"]

# Creates of exactly identifiable objects (filesystems, mounts): attempts after transient failures.
_CREATE_ATTEMPTS = 5

T = TypeVar("T")


@dataclass
class _Snapshot:
    """What one refresh read (lists by id and name); dropped when the refresh returns.

    The VM documents are only needed until each VM's live view is built: past that point the snapshot
    keeps names and ids only (a list of 10,000 VM documents is tens of MB).
    """

    vms_by_id: dict[str, Vm] = field(default_factory=dict)
    vms_by_name: dict[str, Vm] = field(default_factory=dict)
    vm_names: dict[str, str] = field(default_factory=dict)  # VM id -> name
    vm_ids: dict[str, str] = field(default_factory=dict)  # VM name -> id
    filesystems_by_id: dict[str, Filesystem] = field(default_factory=dict)
    filesystems_by_name: dict[str, Filesystem] = field(default_factory=dict)
    mounts_by_vm: dict[str, tuple[Mount, ...]] = field(default_factory=dict)


class ArkerProvider:
    """``Provider`` for Arker (see ``reconciler/providers/base.py``)."""

    name = rmap.PROVIDER

    def __init__(
        self,
        client: ArkerClient,
        desired: DesiredState,
        *,
        parallelism: int = 10,
        mount_timeout: float = 300.0,
    ) -> None:
        self.client = client
        self.desired = desired
        self.parallelism = max(1, parallelism)
        self.mount_timeout = mount_timeout
        self._vms: dict[str, DesiredVM] = {vm.address: vm for vm in desired.vms}
        self._syncs = {sync.address: sync for sync in desired.syncs}  # by address: no scan per create
        self._configs = rmap.vm_configs(desired)
        self._by_address = {c.address: c for c in self._configs}
        self._key_texts_by_address: dict[str, Mapping[str, str]] = {}
        self._check_supported()

    def _check_supported(self) -> None:
        problems = [
            Diagnostic.at(
                vm.location,
                f"{vm.address}: lifecycle.create_before_destroy is not possible for an Arker VM",
                "VM names are unique and cannot be changed, so a replacement cannot exist beside the old VM",
            )
            for vm in self.desired.vms
            if vm.lifecycle.create_before_destroy and vm.provider == self.name
        ]
        if problems:
            raise ManifestError(tuple(problems))

    # ── engine values ───────────────────────────────────────────────────────────────────────────────────

    def configs(self) -> tuple[ResourceConfig, ...]:
        return self._configs

    # ── refresh ─────────────────────────────────────────────────────────────────────────────────────────

    async def _gather(self, calls: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
        return await gather_limited(calls, self.parallelism)

    def warm(self, connections: int) -> None:
        self.client.warm(connections)

    def prefetch(self) -> asyncio.Future[Any] | None:
        # The VM list, and the filesystem list when the configs have filesystems or syncs (a state that
        # records some while the configs have none lists them in ``refresh``).
        wanted = {c.kind for c in self._configs} & {rmap.KIND_FILESYSTEM, rmap.KIND_SYNC}
        lists = asyncio.ensure_future(self._lists(bool(wanted)))
        # A prefetch nobody consumes (the state could not be read) must not be reported as unretrieved.
        lists.add_done_callback(lambda done: done.cancelled() or done.exception())
        return lists

    async def _lists(self, filesystems: bool) -> tuple[list[Vm], tuple[Filesystem, ...] | None]:
        async def all_vms() -> list[Vm]:
            return [vm async for vm in self.client.list_vms()]

        async def all_filesystems() -> tuple[Filesystem, ...] | None:
            return await self.client.list_filesystems() if filesystems else None

        # The two lists are independent: read them at once.
        vms, found = await asyncio.gather(all_vms(), all_filesystems())
        return vms, found

    async def refresh(
        self,
        state: StateDocument | None,
        on_live: Callable[[LiveResource], None] | None = None,
        prefetched: asyncio.Future[Any] | None = None,
    ) -> dict[str, LiveResource]:
        recorded = owned_entries(state, self.name)
        snap = _Snapshot()
        kinds = {c.kind for c in self._configs} | {r.kind for r in recorded.values()}
        wants_filesystems = bool(kinds & {rmap.KIND_FILESYSTEM, rmap.KIND_SYNC})
        lists = prefetched if prefetched is not None else self._lists(wants_filesystems)
        vms, listed = await lists
        if listed is None and wants_filesystems:
            listed = await self.client.list_filesystems()
        filesystems: tuple[Filesystem, ...] = listed or ()
        snap.vms_by_id = {vm.vm_id: vm for vm in vms}
        snap.vms_by_name = {vm.name: vm for vm in vms if vm.name}
        snap.vm_names = {vm.vm_id: vm.name for vm in vms if vm.name}
        snap.vm_ids = {name: vm.vm_id for name, vm in snap.vms_by_name.items()}
        del vms
        snap.filesystems_by_id = {fs.filesystem_id: fs for fs in filesystems}
        snap.filesystems_by_name = {fs.name: fs for fs in filesystems}

        # Every address desired or recorded, with its kind: walked once per phase below.
        targets: list[tuple[str, str, ResourceConfig | None, ResourceState | None]] = []
        for address in sorted(set(self._by_address) | set(recorded)):
            config, entry = self._by_address.get(address), recorded.get(address)
            kind = config.kind if config is not None else entry.kind if entry is not None else ""
            targets.append((address, kind, config, entry))

        # Replicas look alike: their live values share one instance of each equal part.
        sharer = ValueSharer()
        live: dict[str, LiveResource] = {}

        def found(view: LiveResource) -> None:
            # Each view is handed over as soon as it is final, so the caller compares it while other
            # reads still wait on the network (VM views do the same in ``_live_vm``).
            sharer.share_models((view,), "values")
            live[view.address] = view
            if on_live is not None:
                on_live(view)

        vm_reads: deque[tuple[str, Vm, ResourceState | None]] = deque()
        # Syncs by the VM whose mount list answers them: one list per VM that carries one.
        syncs_by_vm: dict[str, list[tuple[ResourceConfig | None, ResourceState | None]]] = {}
        for address, kind, config, entry in targets:
            if kind == rmap.KIND_VM:
                vm = self._find_vm(snap, config, entry)
                if vm is not None:
                    vm_reads.append((address, vm, entry))
            elif kind == rmap.KIND_FILESYSTEM:
                fs = self._find_filesystem(snap, config, entry)
                if fs is not None:
                    found(rmap.live_filesystem(address, fs))
            elif kind == rmap.KIND_SYNC:
                vm_id = self._sync_vm_id(snap, config, entry)
                if vm_id:
                    syncs_by_vm.setdefault(vm_id, []).append((config, entry))
        snap.vms_by_id, snap.vms_by_name = {}, {}  # from here on, each VM document lives in vm_reads only

        async def mounts_of(vm_id: str) -> None:
            mounts = await self._mounts_or_none(vm_id, sharer)
            if mounts is None:
                return
            snap.mounts_by_vm[vm_id] = mounts
            for config, entry in syncs_by_vm[vm_id]:
                view = self._find_mount(snap, config, entry)
                if view is not None:
                    found(view)

        # Per-VM reads (mount lists, policy rules, file digests) share one bounded pool: no phase waits
        # for the slowest call of the one before. The VM views (up to two calls in a row) go first and the
        # single-call mount lists last, so the end of the refresh is not a few long chains beside idle
        # slots (longest first).
        def calls() -> Iterator[Callable[[], Awaitable[Any]]]:
            while vm_reads:  # taken off as they start: a VM's document is dropped once its view is built
                address, vm, entry = vm_reads.popleft()
                yield lambda a=address, v=vm, e=entry: self._live_vm(a, v, e, sharer, on_live)  # type: ignore[misc]
                del vm
            for vm_id in sorted(syncs_by_vm):
                yield lambda v=vm_id: mounts_of(v)  # type: ignore[misc]

        for view in await self._gather(calls()):
            if view is not None:
                live[view.address] = view
        return dict(sorted(live.items()))

    async def _mounts_or_none(self, vm_id: str, sharer: ValueSharer) -> tuple[Mount, ...] | None:
        try:
            mounts = await self.client.list_mounts(vm_id)
        except NotFound:
            return None
        sharer.share_models(mounts)  # kept until the refresh ends: one set of set-field names for all
        return mounts

    @staticmethod
    def _find_vm(snap: _Snapshot, config: ResourceConfig | None, entry: ResourceState | None) -> Vm | None:
        return find_by_id_or_name(snap.vms_by_id, snap.vms_by_name, config, entry)

    @staticmethod
    def _find_filesystem(
        snap: _Snapshot, config: ResourceConfig | None, entry: ResourceState | None
    ) -> Filesystem | None:
        return find_by_id_or_name(snap.filesystems_by_id, snap.filesystems_by_name, config, entry)

    def _sync_target(
        self, config: ResourceConfig | None, entry: ResourceState | None
    ) -> tuple[str | None, str | None, str | None]:
        values = config.values if config is not None else entry.values if entry is not None else {}
        return values.get("vm"), values.get("filesystem"), values.get("path")

    def _sync_vm_id(
        self, snap: _Snapshot, config: ResourceConfig | None, entry: ResourceState | None
    ) -> str | None:
        if entry is not None and entry.id:
            return rmap.split_mount_id(entry.id)[0]
        vm_name, _, _ = self._sync_target(config, entry)
        return snap.vm_ids.get(vm_name) if vm_name else None

    def _find_mount(
        self, snap: _Snapshot, config: ResourceConfig | None, entry: ResourceState | None
    ) -> LiveResource | None:
        address = config.address if config is not None else entry.address  # type: ignore[union-attr]
        name = config.name if config is not None else entry.name  # type: ignore[union-attr]
        mount: Mount | None = None
        if entry is not None and entry.id:
            vm_id, mid = rmap.split_mount_id(entry.id)
            mount = next((m for m in snap.mounts_by_vm.get(vm_id, ()) if m.mount_id == mid), None)
        else:
            vm_id = self._sync_vm_id(snap, config, entry) or ""
            _, fs_name, path = self._sync_target(config, entry)
            fs = snap.filesystems_by_name.get(fs_name) if fs_name else None
            mount = next(
                (
                    m
                    for m in snap.mounts_by_vm.get(vm_id, ())
                    if m.path == path and fs is not None and m.filesystem_id == fs.filesystem_id
                ),
                None,
            )
        if mount is None:
            return None
        fs = snap.filesystems_by_id.get(mount.filesystem_id)
        values = rmap.sync_values(
            snap.vm_names.get(mount.vm_id) or mount.vm_id,
            fs.name if fs is not None else mount.filesystem_id,
            mount.path,
        )
        return LiveResource(
            address=address, kind=rmap.KIND_SYNC, name=name, id=rmap.mount_id(mount), values=values
        )

    async def _live_vm(
        self,
        address: str,
        vm: Vm,
        entry: ResourceState | None,
        sharer: ValueSharer | None = None,
        on_live: Callable[[LiveResource], None] | None = None,
    ) -> LiveResource | None:
        config = self._by_address.get(address)
        recorded = strip_reserved(entry.values) if entry is not None else {}
        wanted = set(config.values if config is not None else ()) | set(recorded)
        if config is None and entry is None:
            return None
        rules: Mapping[str, Any] | None = None
        files: Mapping[str, str | None] | None = None
        managed = entry is not None and (bool(entry.id) or is_pending(entry))
        if managed or config is not None:
            # Details are read only for objects we manage; a conflict needs nothing but its id.
            if managed and wanted & {"egress", "inbound"}:
                try:
                    rules = (await self.client.get_vm_rules(vm.vm_id)).rules
                except NotFound:
                    return None
            if managed and "files" in wanted:
                paths = set((config.values if config else {}).get("files", {})) | set(
                    recorded.get("files", {})
                )
                files = await self.client.file_digests(vm.vm_id, paths)
        values = rmap.live_vm_values(vm, wanted=wanted, rules=rules, files=files, recorded=recorded)
        name = vm.name or (config.name if config is not None else "")
        view = LiveResource(address=address, kind=rmap.KIND_VM, name=name, id=vm.vm_id, values=values)
        if sharer is not None:
            # As soon as it is built (a refresh holds all views at once). Parts kept from state are at most
            # swapped for equal instances: the change is invisible.
            sharer.share_models((view,), "values")
        if on_live is not None:
            on_live(view)  # final from here on: the caller may compare it while other reads run
        return view

    # ── apply ───────────────────────────────────────────────────────────────────────────────────────────

    def _recorded(
        self, config: ResourceConfig, object_id: str, values: dict[str, Any] | None = None
    ) -> ResourceState:
        return recorded_entry(config, object_id, self.name, values)

    def _pending(self, config: ResourceConfig, handle: dict[str, Any]) -> ResourceState:
        return pending_entry(config, handle, self.name)

    async def _intend(self, ctx: ApplyContext, config: ResourceConfig, handle: dict[str, Any]) -> None:
        """Record the intent to create, unless the workflow already did (it records every plain create's
        intent in one write before the run starts)."""
        current = ctx.current(config.address)
        if current is None or not is_pending(current):
            await ctx.record(self._pending(config, handle))

    def _key_texts(self, address: str) -> Mapping[str, str]:
        texts = self._key_texts_by_address.get(address)
        if texts is None:
            # Built once per VM (read-only from here on): each create and update asks.
            vm = self._vms.get(address)
            texts = {key.id: key.public_key for key in (vm.ssh_keys or ())} if vm is not None else {}
            self._key_texts_by_address[address] = texts
        return texts

    async def create(self, config: ResourceConfig, ctx: ApplyContext, *, replacing: str | None) -> None:
        # An ambiguous failure keeps the pending entry: the next refresh finds the object by name.
        creators = {
            rmap.KIND_VM: lambda: self._create_vm(config, ctx, replacing),
            rmap.KIND_FILESYSTEM: lambda: self._create_filesystem(config, ctx),
            rmap.KIND_SYNC: lambda: self._create_sync(config, ctx),
        }
        await create_by_kind(config, ctx, creators, errors=ArkerError, maybe_done=_maybe_done)

    async def _create_vm(self, config: ResourceConfig, ctx: ApplyContext, replacing: str | None) -> None:
        source = config.values["source"]
        source_id = dependency_id(ctx, f"vm.{source['vm']}") if "vm" in source else None
        key = fork_idempotency_key(ctx.lineage, config.address, config.config_hash, generation=replacing)
        # Intent first: a crash after the fork leaves a pending entry that the next refresh resolves by name.
        await self._intend(ctx, config, {"name": config.name})
        body = rmap.fork_request(
            config, source_id=source_id, keys=self._key_texts(config.address), name=config.name
        )
        try:
            vm = await self.client.fork_rules(body, idempotency_key=key)
        except (NotFound, Conflict, IdempotencyConflict):
            # The key is deterministic, so an earlier create of this very VM (since deleted, or made from
            # another source) may have used it: 404/409 for the key. Fork once more under a fresh key.
            generation = f"{replacing or ''}/{uuid.uuid4().hex}"
            key = fork_idempotency_key(ctx.lineage, config.address, config.config_hash, generation=generation)
            vm = await self.client.fork_rules(body, idempotency_key=key)
        try:
            # The fork inherits the source's policy: drop inherited managed rules the new VM does not want.
            stale = rmap.stale_rules(config.values, vm.policies.rules if vm.policies is not None else {})
            if stale:
                await self.client.patch_vm(vm.vm_id, PatchVmRequest(policies=PolicyUpdate(rules=stale)))
            await self._write_files(vm.vm_id, config, None)
        except Exception:
            # The VM exists but is not finished: keep it adoptable, with its id, for the next run.
            await ctx.record(self._pending(config, {"name": config.name, "id": vm.vm_id}))
            raise
        await ctx.record(self._recorded(config, vm.vm_id))

    async def _write_files(self, vm_id: str, config: ResourceConfig, live: Mapping[str, Any] | None) -> None:
        vm = self._vms.get(config.address)
        if vm is None or not vm.files or "files" in ignored_roots(config):
            return
        current = (live or {}).get("files", {}) if live is not None else {}
        todo = {f.path: f for f in vm.files if current.get(f.path) != "sha256:" + f.sha256}
        if not todo:
            return
        secret = {path for path, f in todo.items() if f.secret}
        await self.client.sync_write(vm_id, {path: f.content for path, f in todo.items()}, secret=secret)

    async def _create_or_find(
        self, create: Callable[[], Awaitable[T]], find: Callable[[], Awaitable[T | None]]
    ) -> T:
        """Create an object whose identity is exact (a unique name, a VM + path): a transient or ambiguous
        failure is answered by looking the object up, and by creating again only when it is not there.
        The client never replays these non-idempotent POSTs itself."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await create()
            except AlreadyExists:
                found = await find()  # an earlier, lost attempt of this very create succeeded
                if found is None:
                    raise
                return found
            except ArkerError as err:
                if attempt >= _CREATE_ATTEMPTS or not (isinstance(err, TransientError) or _ambiguous(err)):
                    raise
                found = await find()
                if found is not None:
                    return found
                await asyncio.sleep(self.client.retry.delay(attempt, getattr(err, "retry_after", None)))

    async def _create_filesystem(self, config: ResourceConfig, ctx: ApplyContext) -> None:
        await self._intend(ctx, config, {"name": config.name})

        async def find() -> Filesystem | None:
            found = await self.client.list_filesystems(name_prefix=config.name)
            return next((f for f in found if f.name == config.name), None)

        fs = await self._create_or_find(lambda: self.client.create_filesystem(config.name), find)
        await ctx.record(self._recorded(config, fs.filesystem_id))

    async def _create_sync(self, config: ResourceConfig, ctx: ApplyContext) -> None:
        sync = self._syncs[config.address]
        vm_id = dependency_id(ctx, sync.vm_address)
        fs_id = dependency_id(ctx, sync.filesystem_address)
        await self._intend(ctx, config, {"vm_id": vm_id, "path": sync.path})

        async def find() -> Mount | None:
            mounts = await self.client.list_mounts(vm_id)
            return next((m for m in mounts if m.path == sync.path and m.filesystem_id == fs_id), None)

        mount = await self._create_or_find(lambda: self.client.create_mount(vm_id, fs_id, sync.path), find)
        try:
            await self.client.wait_mount(vm_id, mount.mount_id, timeout=self.mount_timeout)
        except Exception:
            await ctx.record(
                self._pending(config, {"vm_id": vm_id, "path": sync.path, "id": rmap.mount_id(mount)})
            )
            raise
        await ctx.record(self._recorded(config, rmap.mount_id(mount)))

    async def update(
        self, config: ResourceConfig, current: ResourceState, live: LiveResource | None, ctx: ApplyContext
    ) -> None:
        object_id = live.id if live is not None else current.id
        if config.kind == rmap.KIND_VM:
            live_values = live.values if live is not None else {}
            body = rmap.patch_request(config, live_values, keys=self._key_texts(config.address))
            if body is not None:
                await self.client.patch_vm(object_id, body)
            await self._write_files(object_id, config, live_values)
        # Filesystems and Syncs have no in-place fields: an update only records the new config.
        await ctx.record(self._recorded(config, object_id))

    async def delete(self, current: ResourceState, ctx: ApplyContext) -> None:
        if current.id:
            try:
                if current.kind == rmap.KIND_VM:
                    await self.client.delete_vm(current.id)
                elif current.kind == rmap.KIND_FILESYSTEM:
                    await self.client.delete_filesystem(current.id)
                elif current.kind == rmap.KIND_SYNC:
                    vm_id, mid = rmap.split_mount_id(current.id)
                    await self.client.delete_mount(vm_id, mid)
            except NotFound:
                pass  # already gone (deleted outside arkerctl, or a retried delete that had succeeded)
        await ctx.forget(current.address)

    # ── import ──────────────────────────────────────────────────────────────────────────────────────────

    async def import_resource(self, config: ResourceConfig, object_id: str) -> ResourceState:
        try:
            if config.kind == rmap.KIND_VM:
                vm = await self.client.get_vm(object_id)
                state = self._recorded(config, vm.vm_id)
                view = await self._live_vm(config.address, vm, state)
                live = view.values if view is not None else {}
                return self._recorded(config, vm.vm_id, imported_values(config, live, rmap.READ_FROM_STATE))
            if config.kind == rmap.KIND_FILESYSTEM:
                fs = await self.client.get_filesystem(object_id)
                return self._recorded(config, fs.filesystem_id)
            vm_id, mid = rmap.split_mount_id(object_id)
            mounts = await self.client.list_mounts(vm_id)
        except ValueError as err:
            raise ImportError_(str(err)) from err
        except NotFound as err:
            raise ImportError_(f"no {config.kind} with id {object_id} is visible to this API key") from err
        except ArkerError:
            raise
        if not any(m.mount_id == mid for m in mounts):
            raise ImportError_(f"VM {vm_id} has no mount {mid}")
        return self._recorded(config, object_id)


def _ambiguous(err: ArkerError) -> bool:
    return bool(getattr(err, "ambiguous", False))


def _maybe_done(err: ArkerError, entry: ResourceState) -> bool:
    """Whether the object may exist despite ``err``: the request may have been processed, or an earlier
    step (the fork itself) had already succeeded."""
    if handle_has_id(entry):
        return True
    return bool(getattr(err, "ambiguous", False)) or isinstance(err, GatewayTimeout)
