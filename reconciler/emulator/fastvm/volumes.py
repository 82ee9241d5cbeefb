"""``/v1/volumes`` and ``/v1/vms/{id}/volumes``: volumes and their attachments (mounts).

An attachment is ``pending`` for ``settings.mount_delay_seconds``, then ``mounted``, or ``failed`` (with
``mountError``) when its path cannot be mounted: a reserved system directory, or a path another
attachment of the same VM already uses.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator
from starlette.responses import Response

from .body import Body, parse_body
from .context import Ctx
from .errors import ApiError, json_response, no_content
from .records import AttachmentRecord, VolumeRecord
from .render import attachment_wire, volume_wire
from .state import new_id

__all__ = [
    "attach_volume",
    "create_volume",
    "delete_volume",
    "detach_volume",
    "get_volume",
    "list_vm_volumes",
    "list_volume_attachments",
    "list_volumes",
    "update_volume",
]

MAX_VOLUME_GIB = 16384
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_RESERVED = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr")
_Size = Annotated[int, Field(ge=1, le=MAX_VOLUME_GIB)]


class CreateRequest(Body):
    name: str
    size_gib: Annotated[_Size, Field(alias="sizeGiB")]
    access_mode: Literal["rw", "ro"] = "rw"


class UpdateRequest(Body):
    name: str | None = None
    size_gib: Annotated[_Size | None, Field(alias="sizeGiB")] = None

    @field_validator("name", "size_gib", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null")
        return value


class AttachRequest(Body):
    volume_id: str
    mount_path: Annotated[str, Field(min_length=1, max_length=4096)]
    read_only: bool = False


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ApiError.field("name", "1-63 lowercase letters, digits or '-'; alphanumeric at both ends")
    return name


def _unique_name(ctx: Ctx, name: str, except_id: str | None = None) -> None:
    for volume in ctx.state.volumes.values():
        if volume.org_id == ctx.org.org_id and volume.name == name and volume.volume_id != except_id:
            raise ApiError.conflict("volume", f"A volume named {name!r} already exists.")


def _wire(ctx: Ctx, volume: VolumeRecord) -> dict[str, object]:
    return volume_wire(volume, ctx.state.volume_attachments(volume.volume_id), ctx.state.now())


def list_volumes(ctx: Ctx) -> Response:
    mine = [v for v in ctx.state.volumes.values() if v.org_id == ctx.org.org_id]
    return json_response([_wire(ctx, v) for v in sorted(mine, key=lambda v: (v.name, v.volume_id))])


def create_volume(ctx: Ctx) -> Response:
    request = parse_body(CreateRequest, ctx.body)
    _unique_name(ctx, _check_name(request.name))
    volume = VolumeRecord(
        new_id(), ctx.org.org_id, request.name, request.size_gib, request.access_mode, ctx.state.now()
    )
    ctx.state.volumes[volume.volume_id] = volume
    return json_response(_wire(ctx, volume), 201)


def get_volume(ctx: Ctx) -> Response:
    return json_response(_wire(ctx, ctx.state.volume(ctx.org, ctx.params["volume_id"])))


def update_volume(ctx: Ctx) -> Response:
    request = parse_body(UpdateRequest, ctx.body)
    volume = ctx.state.volume(ctx.org, ctx.params["volume_id"])
    if not request.model_fields_set:
        raise ApiError.bad_request("At least one of name or sizeGiB must be provided.")
    if request.name is not None:
        _unique_name(ctx, _check_name(request.name), except_id=volume.volume_id)
        volume.name = request.name
    if request.size_gib is not None:
        volume.size_gib = request.size_gib  # grow or shrink: the emulator stores no data in volumes
    return json_response(_wire(ctx, volume))


def delete_volume(ctx: Ctx) -> Response:
    volume = ctx.state.volume(ctx.org, ctx.params["volume_id"])
    if ctx.state.volume_attachments(volume.volume_id):
        raise ApiError.conflict("volume", "The volume is attached; detach it first.")
    del ctx.state.volumes[volume.volume_id]
    return json_response({"id": volume.volume_id, "deleted": True})


def list_volume_attachments(ctx: Ctx) -> Response:
    volume = ctx.state.volume(ctx.org, ctx.params["volume_id"])
    now = ctx.state.now()
    return json_response([attachment_wire(a, now) for a in ctx.state.volume_attachments(volume.volume_id)])


def list_vm_volumes(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    now = ctx.state.now()
    return json_response([attachment_wire(a, now) for a in ctx.state.vm_attachments(vm.vm_id)])


def _mount_failure(ctx: Ctx, vm_id: str, path: str) -> str | None:
    if path in _RESERVED or any(path.startswith(r + "/") for r in _RESERVED if r not in ("/", "/run")):
        return f"{path} is a reserved system directory"
    for other in ctx.state.vm_attachments(vm_id):
        if other.mount_path == path:
            return f"{path} is already a mount point of volume {other.volume_id}"
    return None


def attach_volume(ctx: Ctx) -> Response:
    request = parse_body(AttachRequest, ctx.body)
    path = request.mount_path
    if not path.startswith("/") or "\0" in path or posixpath.normpath(path) != path:
        raise ApiError.field("mountPath", "must be an absolute, normalized path")
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    volume = ctx.state.volume(ctx.org, request.volume_id)
    if volume.access_mode == "ro" and not request.read_only:
        raise ApiError.field("readOnly", "a read-only volume must be attached with readOnly: true")
    now = ctx.state.now()
    existing = ctx.state.attachments.get((vm.vm_id, volume.volume_id))
    if existing is not None:
        if (existing.mount_path, existing.read_only) == (path, request.read_only):
            return json_response(attachment_wire(existing, now))  # idempotent repeat
        raise ApiError.conflict("attachment", "The volume is already attached to this VM elsewhere.")
    attachment = AttachmentRecord(
        vm_id=vm.vm_id,
        volume_id=volume.volume_id,
        mount_path=path,
        read_only=request.read_only,
        attached_at=now,
        ready_at=now + ctx.state.settings.mount_delay_seconds,
        failure=_mount_failure(ctx, vm.vm_id, path),
    )
    ctx.state.attachments[(vm.vm_id, volume.volume_id)] = attachment
    return json_response(attachment_wire(attachment, now), 202)


def detach_volume(ctx: Ctx) -> Response:
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    if ctx.state.attachments.pop((vm.vm_id, ctx.params["volume_id"]), None) is None:
        raise ApiError.not_found("attachment")
    return no_content()
