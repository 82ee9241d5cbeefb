"""``/v1/vms``: list, launch, retrieve, update, delete, pause/resume, TTL refresh, firewall, console token."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from starlette.responses import Response

from .body import Body, check_env_vars, check_metadata, parse_body, parse_json_value
from .context import Ctx
from .errors import ApiError, json_response
from .firewall import apply_firewall_patch, parse_firewall
from .machines import DEFAULT_DISK_GIB, MAX_DISK_GIB, QUOTA_LIMITS, machine
from .quotas import org_usage
from .records import ServiceRecord, VmRecord
from .render import vm_wire
from .state import new_id

__all__ = [
    "console_token",
    "delete_vm",
    "get_vm",
    "launch_vm",
    "list_vms",
    "patch_firewall",
    "pause_vm",
    "refresh_ttl",
    "resume_vm",
    "set_firewall",
    "update_vm",
]

MAX_TTL_SECONDS = 31_536_000


class TtlInput(Body):
    action: Literal["pause", "delete"]
    seconds: Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS)]


class LaunchRequest(Body):
    machine_type: str | None = None
    snapshot_id: str | None = None
    name: str | None = None
    disk_gib: Annotated[Annotated[int, Field(ge=1, le=MAX_DISK_GIB)] | None, Field(alias="diskGiB")] = None
    metadata: dict[str, str] | None = None
    env_vars: dict[str, str] | None = None
    firewall: dict[str, Any] | None = None
    ttl: TtlInput | None = None


class UpdateRequest(Body):
    name: str | None = None
    metadata: dict[str, str] | None = None
    ttl: TtlInput | None = None

    @field_validator("name", "metadata", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


def _normalize_name(name: str | None, vm_id: str) -> str:
    """Trimmed, whitespace collapsed, at most 64 characters; ``vm-<8 chars>`` when empty."""
    collapsed = " ".join((name or "").split())[:64]
    return collapsed or f"vm-{vm_id[:8]}"


def _wire(ctx: Ctx, vm: VmRecord, status: int = 200) -> Response:
    return json_response(vm_wire(vm, legacy=ctx.legacy_firewall), status)


def list_vms(ctx: Ctx) -> Response:
    status = ctx.query.get("status")
    wanted: list[tuple[str, str]] = []
    for key, value in ctx.query.multi_items():
        if key.startswith("metadata."):
            if len(key) == len("metadata."):
                raise ApiError.field("metadata", "a metadata filter needs a key: metadata.<key>=<value>")
            wanted.append((key[len("metadata.") :], value))
        elif key != "status":
            raise ApiError.field(key, "unknown query parameter")
    found = [
        vm_wire(vm, legacy=ctx.legacy_firewall)
        for vm in ctx.state.org_vms(ctx.org)
        if (status is None or vm.status == status) and all(vm.metadata.get(k) == v for k, v in wanted)
    ]
    return json_response(found)


def get_vm(ctx: Ctx) -> Response:
    return _wire(ctx, ctx.state.vm(ctx.org, ctx.params["id"]))


def launch_vm(ctx: Ctx) -> Response:
    request = parse_body(LaunchRequest, ctx.body)
    state = ctx.state
    snapshot = state.snapshot(ctx.org, request.snapshot_id) if request.snapshot_id is not None else None
    if snapshot is None and request.machine_type is None:
        raise ApiError.field("machineType", "required unless snapshotId is given")
    machine_type = request.machine_type or (snapshot.machine_type if snapshot else "")
    cpu, memory = machine(machine_type)
    floor = snapshot.disk_gib if snapshot else 1
    disk = (
        request.disk_gib
        if request.disk_gib is not None
        else (snapshot.disk_gib if snapshot else DEFAULT_DISK_GIB)
    )
    if disk < floor:
        raise ApiError.field("diskGiB", f"must be at least the snapshot's {floor} GiB")
    metadata = check_metadata(request.metadata) if request.metadata is not None else None
    env_vars = check_env_vars(request.env_vars) if request.env_vars is not None else None
    firewall = parse_firewall(request.firewall) if request.firewall is not None else None
    usage = org_usage(state, ctx.org)
    for name, extra in (("vcpu", cpu), ("memoryMiB", memory), ("diskGiB", disk)):
        if usage[name] + extra > QUOTA_LIMITS[name]:
            raise ApiError(
                "quota_exceeded",
                f"Launching this VM would exceed the organization's {name} quota.",
                details={"quota": name, "limit": QUOTA_LIMITS[name], "usage": usage[name]},
            )
    vm_id = new_id()
    now = state.now()
    delay = state.settings.launch_delay_seconds
    vm = VmRecord(
        vm_id=vm_id,
        org_id=ctx.org.org_id,
        name=_normalize_name(request.name, vm_id),
        machine_type=machine_type,
        cpu=cpu,
        memory_mib=memory,
        disk_gib=disk,
        status="provisioning" if delay > 0 else "running",
        created_at=now,
        ready_at=now + delay,
        metadata=metadata if metadata is not None else dict(snapshot.metadata if snapshot else {}),
        env_vars=env_vars if env_vars is not None else dict(snapshot.env_vars if snapshot else {}),
        firewall=firewall if firewall is not None else parse_firewall(snapshot.firewall if snapshot else {}),
        source_name=snapshot.name if snapshot else "",
        ttl=(request.ttl.action, request.ttl.seconds) if request.ttl else None,
    )
    if snapshot is not None:
        vm.services = {s.name: ServiceRecord(s.name, s.port, s.h2c) for s in snapshot.services}
    state.arm_ttl(vm)
    state.vms[vm_id] = vm
    return _wire(ctx, vm, 201 if vm.status == "running" else 202)


def update_vm(ctx: Ctx) -> Response:
    request = parse_body(UpdateRequest, ctx.body)
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    sent = request.model_fields_set
    if not sent:
        raise ApiError.bad_request("At least one of name, metadata or ttl must be provided.")
    metadata = check_metadata(request.metadata) if request.metadata is not None else None
    if "name" in sent:
        vm.name = _normalize_name(request.name, vm.vm_id)
    if metadata is not None:
        vm.metadata = metadata
    if "ttl" in sent:
        vm.ttl = (request.ttl.action, request.ttl.seconds) if request.ttl else None
        ctx.state.arm_ttl(vm)
    return _wire(ctx, vm)


def delete_vm(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    ctx.state.delete_vm(vm)
    return json_response({"id": vm.vm_id, "deleted": True})


def pause_vm(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    if vm.status == "running":
        remaining = None
        if vm.expires_at_ms is not None:
            remaining = max(0, vm.expires_at_ms - int(ctx.state.now() * 1000))
        vm.status = "paused"
        vm.paused_at = ctx.state.now()
        vm.expires_at_ms, vm.ttl_remaining_ms = None, remaining
    elif vm.status != "paused":
        raise ApiError.invalid_state("vm", vm.status, f"A VM that is {vm.status} cannot be paused.")
    return _wire(ctx, vm)


def resume_vm(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    if vm.status == "paused":
        usage = org_usage(ctx.state, ctx.org)
        for name, extra in (("vcpu", vm.cpu), ("memoryMiB", vm.memory_mib), ("diskGiB", vm.disk_gib)):
            if usage[name] + extra > QUOTA_LIMITS[name]:
                raise ApiError("quota_exceeded", f"Resuming this VM would exceed the {name} quota.")
        vm.status = "running"
        vm.paused_at = None
        if vm.ttl_remaining_ms is not None:
            vm.expires_at_ms = int(ctx.state.now() * 1000) + vm.ttl_remaining_ms
        vm.ttl_remaining_ms = None
    elif vm.status != "running":
        raise ApiError.invalid_state("vm", vm.status, f"A VM that is {vm.status} cannot be resumed.")
    return _wire(ctx, vm)


def refresh_ttl(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    if vm.ttl is None:
        raise ApiError.invalid_state("vm", vm.status, "The VM has no TTL to refresh.")
    ctx.state.arm_ttl(vm)
    return _wire(ctx, vm)


def set_firewall(ctx: Ctx) -> Response:
    raw = parse_json_value(ctx.body) if ctx.body.strip() else None
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    vm.firewall = parse_firewall(raw, "body")
    return _wire(ctx, vm)


def patch_firewall(ctx: Ctx) -> Response:
    raw = parse_json_value(ctx.body) if ctx.body.strip() else None
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    vm.firewall = apply_firewall_patch(vm.firewall, raw)
    return _wire(ctx, vm)


def console_token(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    if vm.status != "running":
        raise ApiError.invalid_state("vm", vm.status, "The console needs a running VM.")
    return json_response(
        {
            "token": secrets.token_urlsafe(24),
            "expiresInSec": 60,
            "websocketPath": f"/v1/vms/{vm.vm_id}/console",
        }
    )
