"""Records -> camelCase JSON objects (the reference's shapes; the SDK's where it has the object)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .firewall import effective_firewall, render_firewall
from .records import (
    AttachmentRecord,
    BuildRecord,
    ServiceRecord,
    SnapshotRecord,
    SshKeyRecord,
    VmRecord,
    VolumeRecord,
)

__all__ = [
    "attachment_wire",
    "build_wire",
    "rfc3339",
    "service_wire",
    "snapshot_wire",
    "ssh_key_wire",
    "vm_wire",
    "volume_wire",
]


def rfc3339(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ipv6(vm_id: str) -> str:
    # Deterministic per VM, inside the documentation prefix.
    hex_id = vm_id.replace("-", "")
    return f"2001:db8:{hex_id[0:4]}:{hex_id[4:8]}::{hex_id[8:12]}"


def vm_wire(vm: VmRecord, *, legacy: bool = False) -> dict[str, Any]:
    return {
        "id": vm.vm_id,
        "name": vm.name,
        "orgId": vm.org_id,
        "status": vm.status,
        "cpu": vm.cpu,
        "memoryMiB": vm.memory_mib,
        "diskGiB": vm.disk_gib,
        "machineName": vm.machine_type,
        "sourceName": vm.source_name,
        "createdAt": rfc3339(vm.created_at),
        "metadata": dict(sorted(vm.metadata.items())),
        "envVars": dict(sorted(vm.env_vars.items())),
        "firewall": render_firewall(vm.firewall, legacy=legacy),
        "effectiveFirewall": render_firewall(effective_firewall(vm.firewall, vm.services), legacy=legacy),
        "ttl": {"action": vm.ttl[0], "seconds": vm.ttl[1]} if vm.ttl else None,
        "expiresAtMs": vm.expires_at_ms,
        "ttlRemainingMs": vm.ttl_remaining_ms,
        "pausedAt": rfc3339(vm.paused_at) if vm.paused_at is not None else None,
        "deletedAt": None,
        "publicIpv6": _ipv6(vm.vm_id) if vm.status == "running" else None,
    }


def service_wire(service: ServiceRecord) -> dict[str, Any]:
    return {"name": service.name, "port": service.port, "h2c": service.h2c}


def ssh_key_wire(key: SshKeyRecord) -> dict[str, Any]:
    return {
        "fingerprint": key.fingerprint,
        "publicKey": key.public_key,
        "comment": key.comment,
        "addedAt": rfc3339(key.added_at),
    }


def attachment_wire(attachment: AttachmentRecord, now: float) -> dict[str, Any]:
    if now < attachment.ready_at:
        status, error = "pending", None
    elif attachment.failure is not None:
        status, error = "failed", attachment.failure
    else:
        status, error = "mounted", None
    return {
        "vmId": attachment.vm_id,
        "volumeId": attachment.volume_id,
        "mountPath": attachment.mount_path,
        "readOnly": attachment.read_only,
        "mountStatus": status,
        "mountError": error,
        "attachedAt": rfc3339(attachment.attached_at),
    }


def volume_wire(volume: VolumeRecord, attachments: list[AttachmentRecord], now: float) -> dict[str, Any]:
    return {
        "id": volume.volume_id,
        "name": volume.name,
        "orgId": volume.org_id,
        "sizeGiB": volume.size_gib,
        "accessMode": volume.access_mode,
        "createdAt": rfc3339(volume.created_at),
        "attachments": [attachment_wire(a, now) for a in attachments],
    }


def snapshot_wire(snapshot: SnapshotRecord, *, legacy: bool = False) -> dict[str, Any]:
    return {
        "id": snapshot.snapshot_id,
        "name": snapshot.name,
        "orgId": snapshot.org_id,
        "vmId": snapshot.vm_id,
        "status": "ready",
        "createdAt": rfc3339(snapshot.created_at),
        "machineName": snapshot.machine_type,
        "diskGiB": snapshot.disk_gib,
        "envVars": dict(sorted(snapshot.env_vars.items())),
        "metadata": dict(sorted(snapshot.metadata.items())),
        "firewall": render_firewall(snapshot.firewall, legacy=legacy),
        "services": [service_wire(s) for s in snapshot.services],
    }


def build_wire(build: BuildRecord, now: float) -> dict[str, Any]:
    done = now >= build.ready_at
    wire: dict[str, Any] = {
        "id": build.build_id,
        "imageRef": build.image_ref,
        "name": build.name,
        "createdAt": rfc3339(build.created_at),
        "status": "completed" if done else "running",
    }
    if done:
        wire["snapshotId"] = build.snapshot_id
    else:
        wire["progress"] = "buildah pull"
    return wire
