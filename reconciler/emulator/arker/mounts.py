"""Mounts: ``POST/GET /v1/vms/{id}/mounts``, ``DELETE /v1/vms/{id}/mounts/{mount_id}``.

A new mount reports ``attaching`` and then ``mounted`` (or ``failed``) once ``mount_delay_seconds`` have
passed (the state is computed when read, so no background task exists). A mount path under ``/proc``,
``/sys`` or ``/dev`` is accepted but ends ``failed`` with a ``state_detail``: a deterministic way to test
failures.

Conflicts (409 ``conflict``): another filesystem already at the path, or this filesystem already at
another path of the VM. The same filesystem at the same path answers the existing mount.
"""

from __future__ import annotations

import posixpath

from starlette.responses import Response

from .body import Body, not_null
from .clock import new_id, now_epoch
from .context import Ctx
from .errors import ApiError, json_response
from .filesystems import find_filesystem
from .lookup import find_vm, require_mutable
from .pagination import decode_cursor, take_page
from .records import MountRecord
from .render import mount_wire
from .validation import parse_body, query_limit

__all__ = ["MountCreateRequest", "create_mount", "delete_mount", "list_mounts"]

_RESERVED = ("/proc", "/sys", "/dev")


class MountCreateRequest(Body):
    filesystem_id: str
    path: str | None = None

    _not_null = not_null("path")


def _normalise(path: str) -> str:
    if not path.startswith("/"):
        raise ApiError.field("path", "must be an absolute path")
    normal = posixpath.normpath(path)
    if normal == "/":
        raise ApiError.field("path", "cannot be the root directory")
    return normal


def create_mount(ctx: Ctx) -> Response:
    request = parse_body(MountCreateRequest, ctx.body)
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    require_mutable(vm)
    fs = find_filesystem(ctx, request.filesystem_id)
    path = _normalise(request.path if request.path is not None else f"/mnt/{fs.name}")
    now = now_epoch()
    with store.lock:
        for mount in store.vm_mounts(vm.vm_id):
            if mount.filesystem_id == fs.filesystem_id and mount.path == path:
                return json_response(mount_wire(mount, now))
            if mount.path == path:
                raise ApiError.conflict("mount", f"Another filesystem is already mounted at {path}.")
            if mount.filesystem_id == fs.filesystem_id:
                raise ApiError.conflict(
                    "mount", f"This filesystem is already mounted at {mount.path} on this VM."
                )
        reserved = any(path == root or path.startswith(root + "/") for root in _RESERVED)
        mount = MountRecord(
            mount_id=new_id("mnt"),
            seq=store.next_seq(),
            vm_id=vm.vm_id,
            filesystem_id=fs.filesystem_id,
            path=path,
            created_at=now,
            ready_at=now + ctx.state.settings.mount_delay_seconds,
            failed_detail=f"{path} is inside a kernel-managed directory and cannot hold a mount"
            if reserved
            else None,
        )
        store.add_mount(mount)
    # Creating a mount always answers attaching (the contract), whatever the delay.
    return json_response(mount_wire(mount, now, fresh=True))


def list_mounts(ctx: Ctx) -> Response:
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    limit = query_limit(ctx.query)
    after = decode_cursor(ctx.query)
    wanted = ctx.query.get("filesystem_id")
    now = now_epoch()
    items = (
        m
        for m in store.vm_mounts(vm.vm_id)
        if m.seq > after and (wanted is None or m.filesystem_id == wanted)
    )
    page, cursor = take_page(items, limit, lambda m: m.seq)
    return json_response({"mounts": [mount_wire(m, now) for m in page], "next_cursor": cursor})


def delete_mount(ctx: Ctx) -> Response:
    store = ctx.state.store
    vm = find_vm(store, ctx.org, ctx.params["id"])
    mount = store.mounts.get(ctx.params["mount_id"])
    if mount is None or mount.vm_id != vm.vm_id:
        raise ApiError.not_found("mount", "The requested mount was not found.")
    store.delete_mount(mount)
    return json_response({"deleted": True})
