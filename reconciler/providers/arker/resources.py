"""Arker resource mapping: desired resources <-> engine values <-> API request bodies. Pure: no I/O.

Comparable values per kind (the engine diffs these; live values are put in the same shape):

    VM          source {vm|name|id|image: ...}   force new; not readable live (kept from state)
                description, resources {vcpu, memory_mib, disk_mib}            in place (PATCH)
                disk, durable                     force new; fork-time only, not readable live (state)
                public                            force new; readable live
                ssh_keys {id: {public_key, expires_at}}  in place; the whole key set (exact)
                egress {rule id: rule}            in place; the ``egress-*`` rules (exact)
                inbound {rule id: rule}           in place; the ``inbound-*`` rules (exact)
                files {path: sha256:<hex>}        in place (sync write); only declared paths
    Filesystem  {}                                the name is the identity
    Sync        vm, filesystem, path              force new (a mount cannot be moved)

Only fields the manifest sets are present, so a field the user leaves out is never compared (server
defaults are not drift). Secret files are compared by digest and marked sensitive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from reconciler.engine.model import LiveResource, ResourceConfig
from reconciler.engine.paths import format_path
from reconciler.manifest import (
    DesiredFilesystem,
    DesiredState,
    DesiredSync,
    DesiredVM,
    ResolvedSSHKey,
    SourceID,
    SourceName,
    SourceVM,
)
from reconciler.state.share import ValueSharer

from .._mapping import (
    KIND_FILESYSTEM,
    KIND_SYNC,
    KIND_VM,
    desired_configs,
    file_digests,
    kept_from_state,
    managed,
    split_pair_id,
    sync_values,
    vm_lifecycle,
)
from .._mapping import sync_config as _sync_config
from .policy import EGRESS_PREFIX, INBOUND_PREFIX, compile_egress, compile_inbound
from .wire import (
    Filesystem,
    ForkRequest,
    Mount,
    PatchVmRequest,
    PolicyUpdate,
    ResourcesInput,
    SshKeyInput,
    Vm,
)

__all__ = [
    "FORCE_NEW_VM",
    "KIND_FILESYSTEM",
    "KIND_SYNC",
    "KIND_VM",
    "PROVIDER",
    "READ_FROM_STATE",
    "filesystem_config",
    "filesystem_values",
    "fork_request",
    "key_text",
    "mount_id",
    "patch_request",
    "split_mount_id",
    "sync_config",
    "sync_values",
    "vm_config",
    "vm_configs",
    "vm_values",
]

PROVIDER = "arker"

FORCE_NEW_VM = frozenset({"source", "disk", "durable", "public"})
# Fork-time facts the API does not report back: the live view takes them from the last applied state.
READ_FROM_STATE = ("source", "disk", "durable")


def key_text(public_key: str) -> str:
    """An OpenSSH key without its comment: the comment is not part of the key's identity."""
    parts = public_key.split()
    return " ".join(parts[:2])


def _source_value(vm: DesiredVM) -> dict[str, str]:
    source = vm.source
    if source is None:  # pragma: no cover - the manifest requires a source on Arker
        raise ValueError(f"{vm.address}: an Arker VM needs a source")
    if isinstance(source, SourceVM):
        return {"vm": source.name}
    if isinstance(source, SourceName):
        return {"name": source.name}
    if isinstance(source, SourceID):
        return {"id": source.id}
    return {"image": source.image}


def timestamp(text: str | None) -> str | None:
    """An RFC 3339 time in one canonical spelling (UTC, seconds, ``Z``) so equal instants compare equal."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_value(public_key: str, expires_at: str | None) -> dict[str, str]:
    """One SSH key as compared: the key without its comment, and its expiry when it has one."""
    expiry = timestamp(expires_at)
    text = key_text(public_key)
    return {"public_key": text} if expiry is None else {"expires_at": expiry, "public_key": text}


def _keys_value(keys: Iterable[ResolvedSSHKey]) -> dict[str, dict[str, str]]:
    return {key.id: key_value(key.public_key, key.expires_at) for key in sorted(keys, key=lambda k: k.id)}


_PLAIN = frozenset({str, int, float, bool, type(None), list, tuple})


def _sorted_keys(value: Any) -> Any:
    """``value`` with every mapping's keys sorted: comparable values are canonical, so that display copies
    of a plan can share them instead of re-sorting each one (see ``engine/diff.py``)."""
    # Exact types first: JSON values are dicts, lists and scalars, and an ABC check costs more than the rest.
    kind = type(value)
    if kind is dict or (kind not in _PLAIN and isinstance(value, Mapping)):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    return value


def vm_values(vm: DesiredVM) -> dict[str, Any]:
    values: dict[str, Any] = {"source": _source_value(vm)}
    if vm.description is not None:
        values["description"] = vm.description
    if vm.resources is not None:
        resources = vm.resources.model_dump(exclude_none=True)
        if resources:
            values["resources"] = dict(sorted(resources.items()))
    for flag in ("disk", "durable", "public"):
        if getattr(vm, flag) is not None:
            values[flag] = getattr(vm, flag)
    if vm.ssh_keys is not None:
        values["ssh_keys"] = _keys_value(vm.ssh_keys)
    if vm.egress is not None:
        values["egress"] = _sorted_keys(compile_egress(vm.egress))
    if vm.inbound is not None:
        values["inbound"] = _sorted_keys(compile_inbound(vm.inbound))
    if vm.files:
        values["files"] = file_digests(vm.files)
    return dict(sorted(values.items()))


def vm_config(vm: DesiredVM) -> ResourceConfig:
    values = vm_values(vm)
    exact = {path for path in ("ssh_keys", "egress", "inbound") if path in values}
    sensitive = {format_path(("files", f.path)) for f in vm.files if f.secret}
    return ResourceConfig(
        address=vm.address,
        kind=KIND_VM,
        name=vm.name,
        provider=PROVIDER,
        values=values,
        force_new=FORCE_NEW_VM,
        sensitive=frozenset(sensitive),
        exact=frozenset(exact),
        depends_on=vm.depends_on,
        lifecycle=vm_lifecycle(vm),
    )


def filesystem_values(_: DesiredFilesystem | Filesystem) -> dict[str, Any]:
    return {}


def filesystem_config(fs: DesiredFilesystem) -> ResourceConfig:
    return ResourceConfig(
        address=fs.address,
        kind=KIND_FILESYSTEM,
        name=fs.name,
        provider=PROVIDER,
        values=filesystem_values(fs),
        depends_on=fs.depends_on,
    )


def sync_config(sync: DesiredSync) -> ResourceConfig:
    # A mount belongs to one VM and one filesystem: replacing either takes the binding with it.
    return _sync_config(sync, PROVIDER)


def vm_configs(desired: DesiredState) -> tuple[ResourceConfig, ...]:
    """Every desired Arker resource as engine values, sorted by address (other platforms' are left out).

    Replicas of a group want the very same values: one shared instance of each (see ``ValueSharer``).
    """
    configs = desired_configs(desired, PROVIDER, vm_config, filesystem_config)
    sharer = ValueSharer()
    sharer.share_models(configs, "values", "depends_on", "replace_with")
    sharer.share_models(c.lifecycle for c in configs)
    return configs


# ── live -> values ──────────────────────────────────────────────────────────────────────────────────────


def live_vm_values(
    vm: Vm,
    *,
    wanted: Iterable[str],
    rules: Mapping[str, Any] | None,
    files: Mapping[str, str | None] | None,
    recorded: Mapping[str, Any],
) -> dict[str, Any]:
    """The comparable view of a live VM. ``wanted``: the value keys desired or recorded (others are not
    read, so an unmanaged field never shows up as a change). ``rules``: the policy rules by id, when read.
    ``files``: sha256 hex (or None when missing) of the managed paths. ``recorded``: last applied values,
    the only source for fork-time facts the API does not report."""
    keys = set(wanted)
    values: dict[str, Any] = kept_from_state(keys, recorded, READ_FROM_STATE)
    if "description" in keys and vm.description is not None:
        values["description"] = vm.description
    if "resources" in keys:
        have = vm.resources
        resources = {"disk_mib": have.disk_mib, "memory_mib": have.memory_mib, "vcpu": have.vcpu}
        values["resources"] = {name: amount for name, amount in resources.items() if amount is not None}
    if "public" in keys:
        values["public"] = vm.public
    if "ssh_keys" in keys:
        values["ssh_keys"] = {
            key.id: key_value(key.public_key, key.expires_at)
            for key in sorted(vm.network.ssh_public_keys, key=lambda k: k.id)
        }
    if rules is not None:
        for key, prefix in (("egress", EGRESS_PREFIX), ("inbound", INBOUND_PREFIX)):
            if key in keys:
                values[key] = {rid: _rule_view(rules[rid]) for rid in sorted(rules) if rid.startswith(prefix)}
    if files is not None and "files" in keys:
        values["files"] = {path: "sha256:" + digest for path, digest in sorted(files.items()) if digest}
    return dict(sorted(values.items()))


def _rule_view(rule: Any) -> Any:
    """A live rule as we write them: the server's ordering of keys and its absent optionals removed."""
    if type(rule) is not dict and not isinstance(rule, Mapping):
        return rule
    return {k: _sorted_keys(v) for k, v in sorted(rule.items()) if v is not None}


def live_filesystem(address: str, fs: Filesystem) -> LiveResource:
    return LiveResource(
        address=address, kind=KIND_FILESYSTEM, name=fs.name, id=fs.filesystem_id, values=filesystem_values(fs)
    )


def mount_id(mount: Mount) -> str:
    """A Sync's id in state: the VM id and the mount id (deleting a mount needs both)."""
    return f"{mount.vm_id}/{mount.mount_id}"


def split_mount_id(object_id: str) -> tuple[str, str]:
    return split_pair_id(object_id, "a Sync id is VM_ID/MOUNT_ID")


# ── values -> request bodies ────────────────────────────────────────────────────────────────────────────


def _resources_input(resources: Mapping[str, Any]) -> ResourcesInput:
    return ResourcesInput(**{k: resources[k] for k in ("vcpu", "memory_mib", "disk_mib") if k in resources})


def _key_input(kid: str, value: Mapping[str, str], keys: Mapping[str, str]) -> SshKeyInput:
    return SshKeyInput(public_key=keys.get(kid, value["public_key"]), expires_at=value.get("expires_at"))


def fork_request(
    config: ResourceConfig, *, source_id: str | None, keys: Mapping[str, str], name: str
) -> ForkRequest:
    """The fork body for a VM config. ``source_id``: the id of a managed source VM (``{vm: ...}``);
    ``keys``: full public key text by id (values only carry the key without its comment)."""
    values = config.values  # a new VM gets everything, ignore_changes included (Terraform does the same)
    source = values["source"]
    body: dict[str, Any] = {"name": name}
    if "vm" in source:
        if source_id is None:
            raise ValueError(f"{config.address}: the source VM {source['vm']!r} has no id yet")
        body["source_vm_id"] = source_id
    elif "id" in source:
        body["source_vm_id"] = source["id"]
    elif "name" in source:
        body["source_vm_name"] = source["name"]
    else:
        body["image"] = source["image"]
    for field in ("description", "disk", "durable", "public"):
        if field in values:
            body[field] = values[field]
    if "resources" in values:
        body["resources"] = _resources_input(values["resources"])
    if "ssh_keys" in values:
        body["ssh_public_keys"] = {
            kid: _key_input(kid, value, keys) for kid, value in values["ssh_keys"].items()
        }
    rules = {**values.get("egress", {}), **values.get("inbound", {})}
    if rules:
        body["policies"] = PolicyUpdate(rules=rules)
    return ForkRequest(**body)


def patch_request(
    config: ResourceConfig, live: Mapping[str, Any], *, keys: Mapping[str, str]
) -> PatchVmRequest | None:
    """The PATCH that brings ``live`` to ``config`` for the in-place fields, or None when nothing differs.
    Keyed collections add, change and remove by id (null removes)."""
    wanted = managed(config.values, config.lifecycle)
    body: dict[str, Any] = {}
    if "description" in wanted and wanted["description"] != live.get("description"):
        body["description"] = wanted["description"]
    if "resources" in wanted:
        current = live.get("resources", {})
        changed = {k: v for k, v in wanted["resources"].items() if current.get(k) != v}
        if changed:
            body["resources"] = _resources_input(changed)
    if "ssh_keys" in wanted:
        patch_keys = _keyed_patch(wanted["ssh_keys"], live.get("ssh_keys", {}))
        if patch_keys:
            body["ssh_public_keys"] = {
                kid: None if value is None else _key_input(kid, value, keys)
                for kid, value in patch_keys.items()
            }
    rules: dict[str, Any] = {}
    for field in ("egress", "inbound"):
        if field in wanted:
            rules.update(_keyed_patch(wanted[field], live.get(field, {})))
    if rules:
        body["policies"] = PolicyUpdate(rules=rules)
    return PatchVmRequest(**body) if body else None


def _keyed_patch(wanted: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {key: None for key in live if key not in wanted}
    patch.update({key: value for key, value in wanted.items() if live.get(key) != value})
    return dict(sorted(patch.items()))


def stale_rules(wanted: Mapping[str, Any], rules: Mapping[str, Any]) -> dict[str, None]:
    """Managed rule ids a new VM inherited from its source but does not want (removed after the fork)."""
    stale: dict[str, None] = {}
    for field, prefix in (("egress", EGRESS_PREFIX), ("inbound", INBOUND_PREFIX)):
        if field in wanted:
            stale.update({rid: None for rid in rules if rid.startswith(prefix) and rid not in wanted[field]})
    return dict(sorted(stale.items()))
