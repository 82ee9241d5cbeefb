"""FastVM resource mapping: desired resources <-> engine values <-> API request bodies. Pure: no I/O.

Comparable values per kind (the engine diffs these; live values are put in the same shape):

    VM          machine_type                        force new; live ``machineName``
                snapshot (name or id)               force new; not readable live (kept from state)
                disk_gib                            force new; live ``diskGiB``
                env {NAME: sha256:<hex>}            force new; sensitive (values may be secrets)
                metadata {k: v}                     in place (PATCH, whole map); our ``arkerctl-*`` tags
                                                    are not part of the value
                ttl {action, seconds}               in place (PATCH)
                ssh_keys [SHA256:<fingerprint>]     in place (add/delete per key); the whole key set
                egress / ingress {default, rules}   in place (PATCH firewall axis); compared against
                dns {mode, domains, block_bypass}   ``firewall``, never ``effectiveFirewall``
                services {name: {port, h2c}}        in place (register/put/delete); the whole set
                files {path: sha256:<hex>}          in place (presign + fetch); only declared paths
    Filesystem  size_gib                            in place (PATCH volume; grow or shrink)
                access_mode                         force new
    Sync        vm, filesystem, path                force new (an attachment cannot be moved)

The VM name is its identity here as on Arker: a rename is a new address. Only fields the manifest sets
are present, so a field the user leaves out is never compared (server defaults are not drift).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.engine.model import LiveResource, ResourceConfig
from reconciler.engine.paths import format_path
from reconciler.manifest import (
    DesiredFilesystem,
    DesiredState,
    DesiredSync,
    DesiredVM,
    ResolvedEgress,
)

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
from .._urls import is_ip_network as _is_ip
from .wire import Firewall, LaunchRequest, Ttl, Vm, Volume, VolumeAttachment

__all__ = [
    "ADDRESS_TAG",
    "FORCE_NEW_VM",
    "KIND_FILESYSTEM",
    "KIND_SYNC",
    "KIND_VM",
    "LINEAGE_TAG",
    "PROVIDER",
    "READ_FROM_STATE",
    "TAG_PREFIX",
    "attachment_id",
    "compile_egress",
    "configs",
    "env_digest",
    "filesystem_config",
    "fingerprint",
    "firewall_axes",
    "launch_request",
    "live_filesystem_values",
    "live_vm_values",
    "managed",
    "ownership_tags",
    "split_attachment_id",
    "sync_config",
    "sync_values",
    "user_metadata",
    "vm_config",
    "vm_values",
]

PROVIDER = "fastvm"

# Ownership tags on every VM we launch: a launch whose answer was lost is found again by them.
TAG_PREFIX = "arkerctl-"
LINEAGE_TAG = "arkerctl-lineage"
ADDRESS_TAG = "arkerctl-address"

FORCE_NEW_VM = frozenset({"machine_type", "snapshot", "disk_gib", "env"})
# Launch-time facts the API does not report back as given: the live view keeps the last applied value.
READ_FROM_STATE = ("snapshot",)
FIREWALL_AXES = ("dns", "egress", "ingress")
_EXACT_VM = ("env", "metadata", "services")


# ── desired -> values ───────────────────────────────────────────────────────────────────────────────────


def fingerprint(public_key: str) -> str:
    """The OpenSSH SHA256 fingerprint (``SHA256:<unpadded base64>``) of a public key line."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def env_digest(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def _ports(port: int | tuple[int, int] | None) -> str:
    if port is None:
        return "any"
    if isinstance(port, int):
        return str(port)
    return str(port[0]) if port[0] == port[1] else f"{port[0]}-{port[1]}"


def _cidr(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


def _rule(action: str, kind: str, value: str, ports: str, protocol: str = "any") -> dict[str, Any]:
    return {"action": action, "kind": kind, "ports": ports, "protocol": protocol, "value": value}


def compile_egress(egress: ResolvedEgress) -> dict[str, Any]:
    """An EgressPolicy as FastVM's egress axis: hosts become fqdn rules for the host and ``*.host`` (our
    hosts match their subdomains), IPs cidr rules, one rule per entry and port (range)."""
    if egress.mode == "open":
        return {"default": "allow", "rules": []}
    if egress.mode == "blocked":
        return {"default": "deny", "rules": []}
    action, default = ("allow", "deny") if egress.mode == "allow" else ("deny", "allow")
    ports = [_ports(p) for p in egress.ports] or ["any"]
    rules: list[dict[str, Any]] = []
    for entry in egress.entries:  # sorted by the resolver
        targets = [("cidr", _cidr(entry))] if _is_ip(entry) else [("fqdn", entry), ("fqdn", "*." + entry)]
        for kind, value in targets:
            rules.extend(_rule(action, kind, value, port) for port in ports)
    return {"default": default, "rules": rules}


def _ingress(vm: DesiredVM) -> dict[str, Any]:
    assert vm.ingress is not None
    rules = []
    for rule in vm.ingress.rules:  # in manifest order: FastVM evaluates rules in order
        value = _rule(rule.action, "cidr", _cidr(rule.cidr), _ports(rule.ports), rule.protocol)
        if rule.description is not None:
            value["description"] = rule.description
        rules.append(dict(sorted(value.items())))
    return {"default": vm.ingress.default, "rules": rules}


def _dns(vm: DesiredVM) -> dict[str, Any]:
    assert vm.dns is not None
    domains = sorted({d.lower().rstrip(".") for d in vm.dns.domains})
    return {"block_bypass": vm.dns.block_bypass, "domains": domains, "mode": vm.dns.mode}


def vm_values(vm: DesiredVM) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in ("machine_type", "snapshot", "disk_gib"):
        if getattr(vm, field) is not None:
            values[field] = getattr(vm, field)
    if vm.env is not None:
        values["env"] = {name: env_digest(value) for name, value in vm.env}
    if vm.metadata is not None:
        values["metadata"] = dict(vm.metadata)
    if vm.ttl is not None:
        values["ttl"] = {"action": vm.ttl.action, "seconds": vm.ttl.seconds}
    if vm.ssh_keys is not None:
        values["ssh_keys"] = sorted({fingerprint(key.public_key) for key in vm.ssh_keys})
    if vm.egress is not None:
        values["egress"] = compile_egress(vm.egress)
    if vm.ingress is not None:
        values["ingress"] = _ingress(vm)
    if vm.dns is not None:
        values["dns"] = _dns(vm)
    if vm.services is not None:
        values["services"] = {s.name: {"h2c": s.h2c, "port": s.port} for s in vm.services}
    if vm.files:
        values["files"] = file_digests(vm.files)
    return dict(sorted(values.items()))


def vm_config(vm: DesiredVM) -> ResourceConfig:
    values = vm_values(vm)
    sensitive = {format_path(("files", f.path)) for f in vm.files if f.secret}
    if "env" in values:
        sensitive.add("env")
    return ResourceConfig(
        address=vm.address,
        kind=KIND_VM,
        name=vm.name,
        provider=PROVIDER,
        values=values,
        force_new=FORCE_NEW_VM,
        sensitive=frozenset(sensitive),
        exact=frozenset(path for path in _EXACT_VM if path in values),
        depends_on=vm.depends_on,
        lifecycle=vm_lifecycle(vm),
    )


def filesystem_config(fs: DesiredFilesystem) -> ResourceConfig:
    values: dict[str, Any] = {}
    if fs.size_gib is not None:
        values["size_gib"] = fs.size_gib
    if fs.access_mode is not None:
        values["access_mode"] = fs.access_mode
    return ResourceConfig(
        address=fs.address,
        kind=KIND_FILESYSTEM,
        name=fs.name,
        provider=PROVIDER,
        values=dict(sorted(values.items())),
        force_new=frozenset({"access_mode"}),
        depends_on=fs.depends_on,
    )


def sync_config(sync: DesiredSync) -> ResourceConfig:
    # An attachment belongs to one VM and one volume: replacing either takes it along.
    return _sync_config(sync, PROVIDER)


def configs(desired: DesiredState) -> tuple[ResourceConfig, ...]:
    """Every desired FastVM resource as engine values, sorted by address."""
    return desired_configs(desired, PROVIDER, vm_config, filesystem_config)


# ── live -> values ──────────────────────────────────────────────────────────────────────────────────────


def user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Metadata without our ownership tags."""
    return {k: metadata[k] for k in sorted(metadata) if not k.startswith(TAG_PREFIX)}


def ownership_tags(lineage: str, address: str) -> dict[str, str]:
    return {ADDRESS_TAG: address, LINEAGE_TAG: lineage}


def _axis_value(axis: str, firewall: Firewall | None) -> dict[str, Any]:
    current = firewall if firewall is not None else Firewall()
    if axis == "dns":
        return {
            "block_bypass": current.dns.block_bypass,
            "domains": sorted(current.dns.domains),
            "mode": current.dns.mode,
        }
    policy = current.egress if axis == "egress" else current.ingress
    rules = [dict(sorted(rule.model_dump(mode="json", exclude_none=True).items())) for rule in policy.rules]
    return {"default": policy.default, "rules": rules}


def live_vm_values(
    vm: Vm,
    *,
    wanted: Iterable[str],
    ssh_keys: Iterable[str] | None,
    services: Mapping[str, tuple[int, bool]] | None,
    files: Mapping[str, str | None] | None,
    recorded: Mapping[str, Any],
) -> dict[str, Any]:
    """The comparable view of a live VM. ``wanted``: value keys desired or recorded (others are not read,
    so an unmanaged field never shows up as a change). ``ssh_keys``: fingerprints; ``services``: port and
    h2c by name; ``files``: sha256 hex (None when missing) per managed path; each None when not read."""
    keys = set(wanted)
    values: dict[str, Any] = kept_from_state(keys, recorded, READ_FROM_STATE)
    if "machine_type" in keys and vm.machine_name is not None:
        values["machine_type"] = vm.machine_name
    if "disk_gib" in keys:
        values["disk_gib"] = vm.disk_gib
    if "env" in keys:
        values["env"] = {name: env_digest(value) for name, value in sorted(vm.env_vars.items())}
    if "metadata" in keys:
        values["metadata"] = user_metadata(vm.metadata)
    if "ttl" in keys and vm.ttl is not None:
        values["ttl"] = {"action": vm.ttl.action, "seconds": vm.ttl.seconds}
    for axis in FIREWALL_AXES:
        if axis in keys:
            values[axis] = _axis_value(axis, vm.firewall)  # never effective_firewall: it adds service rules
    if ssh_keys is not None and "ssh_keys" in keys:
        values["ssh_keys"] = sorted(set(ssh_keys))
    if services is not None and "services" in keys:
        values["services"] = {
            name: {"h2c": services[name][1], "port": services[name][0]} for name in sorted(services)
        }
    if files is not None and "files" in keys:
        values["files"] = {path: "sha256:" + digest for path, digest in sorted(files.items()) if digest}
    return dict(sorted(values.items()))


def live_filesystem_values(volume: Volume, wanted: Iterable[str]) -> dict[str, Any]:
    keys = set(wanted)
    values: dict[str, Any] = {}
    if "size_gib" in keys:
        values["size_gib"] = volume.size_gib
    if "access_mode" in keys:
        values["access_mode"] = volume.access_mode
    return values


def live_filesystem(address: str, volume: Volume, wanted: Iterable[str]) -> LiveResource:
    return LiveResource(
        address=address,
        kind=KIND_FILESYSTEM,
        name=volume.name,
        id=volume.id,
        values=live_filesystem_values(volume, wanted),
    )


def attachment_id(attachment: VolumeAttachment) -> str:
    """A Sync's id in state: the VM id and the volume id (detaching needs both)."""
    return f"{attachment.vm_id}/{attachment.volume_id}"


def split_attachment_id(object_id: str) -> tuple[str, str]:
    return split_pair_id(object_id, "a FastVM Sync id is VM_ID/VOLUME_ID")


# ── values -> request bodies ────────────────────────────────────────────────────────────────────────────


def firewall_axes(values: Mapping[str, Any]) -> dict[str, Any]:
    """The managed firewall axes of ``values`` as reference JSON (for PUT/PATCH firewall)."""
    axes: dict[str, Any] = {}
    for axis in FIREWALL_AXES:
        if axis not in values:
            continue
        value = values[axis]
        if axis == "dns":
            axes[axis] = {
                "mode": value["mode"],
                "domains": list(value["domains"]),
                "blockBypass": value["block_bypass"],
            }
        else:
            axes[axis] = {"default": value["default"], "rules": [dict(rule) for rule in value["rules"]]}
    return axes


def launch_request(
    config: ResourceConfig,
    vm: DesiredVM,
    *,
    lineage: str,
    snapshot_id: str | None,
) -> LaunchRequest:
    """The launch body: everything the manifest sets (ignore_changes included: a new VM gets it all), our
    ownership tags in the metadata. SSH keys, services and files follow once the VM runs."""
    values = config.values
    body: dict[str, Any] = {
        "name": config.name,
        "metadata": {**dict(vm.metadata or ()), **ownership_tags(lineage, config.address)},
    }
    if "machine_type" in values:
        body["machine_type"] = values["machine_type"]
    if snapshot_id is not None:
        body["snapshot_id"] = snapshot_id
    if "disk_gib" in values:
        body["disk_gib"] = values["disk_gib"]
    if vm.env is not None:
        body["env_vars"] = dict(vm.env)
    if "ttl" in values:
        body["ttl"] = Ttl(**values["ttl"])
    axes = firewall_axes(values)
    if axes:
        body["firewall"] = Firewall.model_validate(axes)
    return LaunchRequest(**body)
