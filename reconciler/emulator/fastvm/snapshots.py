"""``/v1/snapshots`` (create from a running or paused VM, ready at once) and ``/v1/builds`` (an image
build that completes after ``settings.mount_delay_seconds`` and leaves a snapshot behind)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from starlette.responses import Response

from .body import Body, parse_body
from .context import Ctx
from .errors import ApiError, json_response
from .firewall import DEFAULT_FIREWALL, parse_firewall
from .machines import DEFAULT_DISK_GIB, MAX_DISK_GIB, QUOTA_LIMITS, machine
from .quotas import org_usage
from .records import BuildRecord, ServiceRecord, SnapshotRecord
from .render import build_wire, snapshot_wire
from .state import FastvmState, new_id

__all__ = [
    "create_build",
    "create_snapshot",
    "delete_snapshot",
    "get_build",
    "get_snapshot",
    "list_snapshots",
    "update_snapshot",
]


class CreateRequest(Body):
    vm_id: str
    name: str | None = None


class UpdateRequest(Body):
    name: str

    @field_validator("name", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


class BuildRequest(Body):
    image_ref: str | None = None
    dockerfile_content: str | None = None
    context_download_url: str | None = None
    disk_gib: Annotated[Annotated[int, Field(ge=1, le=MAX_DISK_GIB)] | None, Field(alias="diskGiB")] = None
    machine_type: str | None = None
    name: str | None = None


def _name(value: str | None, fallback: str) -> str:
    return " ".join((value or "").split())[:64] or fallback


def _wire(ctx: Ctx, snapshot: SnapshotRecord, status: int = 200) -> Response:
    return json_response(snapshot_wire(snapshot, legacy=ctx.legacy_firewall), status)


def _check_quota(ctx: Ctx) -> None:
    if org_usage(ctx.state, ctx.org)["snapshotCount"] >= QUOTA_LIMITS["snapshotCount"]:
        raise ApiError("quota_exceeded", "The organization's snapshot quota is used up.")


def list_snapshots(ctx: Ctx) -> Response:
    complete_builds(ctx.state)
    mine = [s for s in ctx.state.snapshots.values() if s.org_id == ctx.org.org_id]
    ordered = sorted(mine, key=lambda s: (s.created_at, s.snapshot_id))
    return json_response([snapshot_wire(s, legacy=ctx.legacy_firewall) for s in ordered])


def create_snapshot(ctx: Ctx) -> Response:
    request = parse_body(CreateRequest, ctx.body)
    vm = ctx.state.vm(ctx.org, request.vm_id)
    if vm.status not in ("running", "paused"):
        raise ApiError.invalid_state("vm", vm.status, "Only running or paused VMs can be snapshotted.")
    _check_quota(ctx)
    snapshot = SnapshotRecord(
        snapshot_id=new_id(),
        org_id=ctx.org.org_id,
        name=_name(request.name, f"snapshot-{vm.vm_id[:8]}"),
        vm_id=vm.vm_id,
        created_at=ctx.state.now(),
        machine_type=vm.machine_type,
        disk_gib=vm.disk_gib,
        env_vars=dict(vm.env_vars),
        metadata=dict(vm.metadata),
        firewall=parse_firewall(vm.firewall),
        services=[ServiceRecord(s.name, s.port, s.h2c) for _, s in sorted(vm.services.items())],
    )
    ctx.state.snapshots[snapshot.snapshot_id] = snapshot
    return _wire(ctx, snapshot, 201)


def get_snapshot(ctx: Ctx) -> Response:
    complete_builds(ctx.state)
    return _wire(ctx, ctx.state.snapshot(ctx.org, ctx.params["snapshot_id"]))


def update_snapshot(ctx: Ctx) -> Response:
    request = parse_body(UpdateRequest, ctx.body)
    snapshot = ctx.state.snapshot(ctx.org, ctx.params["snapshot_id"])
    snapshot.name = _name(request.name, snapshot.name)
    return _wire(ctx, snapshot)


def delete_snapshot(ctx: Ctx) -> Response:
    snapshot = ctx.state.snapshot(ctx.org, ctx.params["snapshot_id"])
    del ctx.state.snapshots[snapshot.snapshot_id]
    return json_response({"id": snapshot.snapshot_id, "deleted": True})


def complete_builds(state: FastvmState) -> None:
    """Turn every build whose time has come into a snapshot (idempotent)."""
    now = state.now()
    for build in state.builds.values():
        if build.snapshot_id is None and now >= build.ready_at:
            snapshot = SnapshotRecord(
                snapshot_id=new_id(),
                org_id=build.org_id,
                name=build.name or build.build_id,
                vm_id=build.build_id,  # the build VM, gone since
                created_at=build.ready_at,
                machine_type=build.machine_type,
                disk_gib=build.disk_gib,
                env_vars={},
                metadata={},
                firewall=parse_firewall(DEFAULT_FIREWALL),
                services=[],
            )
            state.snapshots[snapshot.snapshot_id] = snapshot
            build.snapshot_id = snapshot.snapshot_id


def create_build(ctx: Ctx) -> Response:
    request = parse_body(BuildRequest, ctx.body)
    if not request.image_ref and not request.dockerfile_content:
        raise ApiError.bad_request("At least one of imageRef or dockerfileContent must be provided.")
    machine_type = request.machine_type or "c2m4"
    machine(machine_type)
    _check_quota(ctx)
    now = ctx.state.now()
    build = BuildRecord(
        build_id=new_id(),
        org_id=ctx.org.org_id,
        image_ref=request.image_ref or "dockerfile",
        name=request.name,
        machine_type=machine_type,
        disk_gib=request.disk_gib or DEFAULT_DISK_GIB,
        created_at=now,
        ready_at=now + ctx.state.settings.mount_delay_seconds,
    )
    ctx.state.builds[build.build_id] = build
    wire = build_wire(build, now)
    wire.pop("snapshotId", None)
    wire["status"] = "pending"
    return json_response(wire, 202)


def get_build(ctx: Ctx) -> Response:
    complete_builds(ctx.state)
    build = ctx.state.build(ctx.org, ctx.params["build_id"])
    return json_response(build_wire(build, ctx.state.now()))
