"""Records -> wire JSON, in the exact shapes of the contract's response schemas."""

from __future__ import annotations

import base64
from typing import Any

from .clock import from_epoch
from .placement import PLATFORM_ARCHITECTURE, PLATFORM_DISPLAY_NAME, PROVIDER, REGION, hostname
from .records import FilesystemRecord, MountRecord, RunRecord, VmRecord

__all__ = [
    "encode_output",
    "filesystem_wire",
    "mount_wire",
    "policies_wire",
    "run_summary_wire",
    "run_wire",
    "vm_wire",
]


def policies_wire(vm: VmRecord) -> dict[str, Any]:
    """``VmPolicies``: rules as written, secret values masked."""
    return {
        "rules": {rule_id: vm.rules[rule_id] for rule_id in sorted(vm.rules)},
        "secrets": dict.fromkeys(sorted(vm.secrets), "***"),
    }


def vm_wire(vm: VmRecord, *, full: bool = True) -> dict[str, Any]:
    """``Vm``. ``full`` adds what list responses omit: the policy, and SSH keys when there are none."""
    bounds = vm.bounds
    keys = [vm.ssh_keys[key_id] for key_id in sorted(vm.ssh_keys)]
    body: dict[str, Any] = {
        "vm_id": vm.vm_id,
        "owner_org_id": vm.owner_org_id,
        "created_at": from_epoch(vm.created_at),
        "name": vm.name,
        "description": vm.description,
        "hostname": hostname(vm.vm_id),
        "public": vm.public,
        "immutable": vm.immutable,
        "root_source_vm_id": vm.root_source_vm_id,
        "root_source_vm_name": vm.root_source_vm_name,
        "state": "idle",
        "region": REGION,
        "provider": PROVIDER,
        "last_active_at": from_epoch(vm.last_active_at) if vm.last_active_at is not None else None,
        "network": {"ssh_public_keys": keys} if (keys or full) else {},
        "max_vcpus": bounds.max_vcpus,
        "min_vcpus": bounds.min_vcpus,
        "max_memory_mib": bounds.max_memory_mib,
        "min_memory_mib": bounds.min_memory_mib,
        "min_disk_mib": bounds.min_disk_mib,
        "max_disk_mib": bounds.max_disk_mib,
        "sessions": [],
        "resources": {"vcpu": vm.vcpu, "memory_mib": vm.memory_mib, "disk_mib": vm.disk_mib},
        "platform": vm.platform,
        "compatible_platforms": [
            {
                "id": vm.platform,
                "display_name": PLATFORM_DISPLAY_NAME,
                "architecture": PLATFORM_ARCHITECTURE,
                "min_vcpus": bounds.min_vcpus,
                "max_vcpus": bounds.max_vcpus,
                "min_memory_mib": bounds.min_memory_mib,
                "max_memory_mib": bounds.max_memory_mib,
                "min_disk_mib": bounds.min_disk_mib,
                "max_disk_mib": bounds.max_disk_mib,
                "default_vcpus": vm.vcpu,
                "default_memory_mib": vm.memory_mib,
                "default_disk_mib": vm.disk_mib,
            }
        ],
    }
    if full:
        body["policies"] = policies_wire(vm)
    return body


def filesystem_wire(fs: FilesystemRecord) -> dict[str, Any]:
    return {
        "filesystem_id": fs.filesystem_id,
        "name": fs.name,
        "owner_org_id": fs.owner_org_id,
        "created_at": from_epoch(fs.created_at),
        "size_bytes": 0,
        "region": REGION,
        "provider": PROVIDER,
    }


def mount_wire(mount: MountRecord, now: float, *, fresh: bool = False) -> dict[str, Any]:
    state = "attaching" if fresh else mount.state(now)
    body: dict[str, Any] = {
        "mount_id": mount.mount_id,
        "vm_id": mount.vm_id,
        "filesystem_id": mount.filesystem_id,
        "path": mount.path,
        "region": REGION,
        "state": state,
    }
    if state == "failed":
        body["state_detail"] = mount.failed_detail
    return body


def encode_output(data: bytes) -> tuple[str, str]:
    """(text, encoding): valid UTF-8 is returned as is, other bytes as base64."""
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def run_summary_wire(run: RunRecord, vm: VmRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "command": run.command,
        "state": run.state,
        "started_at": from_epoch(run.started_at),
        "completed_at": from_epoch(run.completed_at) if run.completed_at is not None else None,
        "exit_code": run.exit_code,
        "fail_reason": None,
        "vm_id": vm.vm_id,
        "vm_name": vm.name,
        "source_org_id": vm.owner_org_id,
        "region": REGION,
        "provider": PROVIDER,
    }


def run_wire(run: RunRecord, vm: VmRecord) -> dict[str, Any]:
    body = run_summary_wire(run, vm)
    body["stdout"], body["stdout_encoding"] = encode_output(run.stdout)
    body["stderr"], body["stderr_encoding"] = encode_output(run.stderr)
    body["retry_count"] = 0
    return body
