"""Resource-mapping pieces every provider shares (pure, no I/O): the kinds, the Sync value and config,
a VM's lifecycle, ``ignore_changes`` filtering, file digests, values kept from state, the two-part ids
of bindings, and the sorted list of a platform's configs.

What a VM or filesystem *is* on a platform (its fields, which force a replacement, its request bodies)
stays in that platform's ``resources`` module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reconciler.engine.diff import without_paths
from reconciler.engine.model import Lifecycle, ResourceConfig
from reconciler.manifest import DesiredFile, DesiredFilesystem, DesiredState, DesiredSync, DesiredVM

__all__ = [
    "KIND_FILESYSTEM",
    "KIND_SYNC",
    "KIND_VM",
    "SYNC_FIELDS",
    "desired_configs",
    "file_digests",
    "kept_from_state",
    "managed",
    "split_pair_id",
    "sync_config",
    "sync_values",
    "vm_lifecycle",
]

KIND_VM = "VM"
KIND_FILESYSTEM = "Filesystem"
KIND_SYNC = "Sync"

SYNC_FIELDS = frozenset({"vm", "filesystem", "path"})


def vm_lifecycle(vm: DesiredVM) -> Lifecycle:
    return Lifecycle(
        prevent_destroy=vm.lifecycle.prevent_destroy,
        create_before_destroy=vm.lifecycle.create_before_destroy,
        ignore_changes=tuple(vm.lifecycle.ignore_changes),
    )


def file_digests(files: Iterable[DesiredFile]) -> dict[str, str]:
    """Declared files as compared: ``sha256:<hex>`` by path."""
    return {f.path: "sha256:" + f.sha256 for f in sorted(files, key=lambda f: f.path)}


def kept_from_state(keys: Iterable[str], recorded: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The values of ``names`` (facts the API does not report back) wanted in ``keys``, from the last
    applied ``recorded`` values."""
    wanted = set(keys)
    return {key: recorded[key] for key in names if key in wanted and key in recorded}


def sync_values(vm_name: str, filesystem_name: str, path: str) -> dict[str, Any]:
    return {"filesystem": filesystem_name, "path": path, "vm": vm_name}


def sync_config(sync: DesiredSync, provider: str) -> ResourceConfig:
    return ResourceConfig(
        address=sync.address,
        kind=KIND_SYNC,
        name=sync.name,
        provider=provider,
        values=sync_values(sync.vm_name, sync.filesystem_name, sync.path),
        force_new=SYNC_FIELDS,
        depends_on=sync.depends_on,
        # A binding belongs to one VM and one filesystem: replacing either takes the binding with it.
        replace_with=(sync.vm_address, sync.filesystem_address),
    )


def desired_configs(
    desired: DesiredState,
    provider: str,
    vm_config: Callable[[DesiredVM], ResourceConfig],
    filesystem_config: Callable[[DesiredFilesystem], ResourceConfig],
) -> tuple[ResourceConfig, ...]:
    """Every desired resource of ``provider`` as engine values, sorted by address (others are left out)."""
    found: list[ResourceConfig] = [vm_config(vm) for vm in desired.vms if vm.provider == provider]
    found += [filesystem_config(fs) for fs in desired.filesystems if fs.provider == provider]
    found += [sync_config(sync, provider) for sync in desired.syncs if sync.provider == provider]
    return tuple(sorted(found, key=lambda c: c.address))


def managed(values: Mapping[str, Any], lifecycle: Lifecycle) -> dict[str, Any]:
    """Values minus ``ignore_changes`` paths: those are neither diffed nor written."""
    return without_paths(dict(values), lifecycle.ignore_changes) if lifecycle.ignore_changes else dict(values)


def split_pair_id(object_id: str, shape: str) -> tuple[str, str]:
    """``FIRST/SECOND`` as its two parts; ValueError naming the expected ``shape`` otherwise."""
    first, sep, second = object_id.partition("/")
    if not sep or not first or not second:
        raise ValueError(f"{shape}, got {object_id!r}")
    return first, second
