"""Shared filesystems: ``GET/POST /v1/filesystems``, ``GET/DELETE /v1/filesystems/{filesystem_id}``.

Names are unique per organization (409 ``already_exists``). A filesystem still mounted by a VM cannot be
deleted; the contract declares no 409 for that operation, so the refusal is a 400 ``bad_request``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.responses import Response

from .body import Body
from .clock import new_id, now_epoch
from .context import Ctx
from .errors import ApiError, json_response
from .pagination import decode_cursor, take_page
from .records import FilesystemRecord
from .render import filesystem_wire
from .validation import parse_body, query_limit

__all__ = [
    "FilesystemCreateRequest",
    "create_filesystem",
    "delete_filesystem",
    "find_filesystem",
    "get_filesystem",
    "list_filesystems",
]


class FilesystemCreateRequest(Body):
    name: Annotated[str, Field(min_length=1, max_length=255)]


def find_filesystem(ctx: Ctx, filesystem_id: str) -> FilesystemRecord:
    fs = ctx.state.store.filesystems.get(filesystem_id)
    if fs is None or fs.owner_org_id != ctx.org.org_id:
        raise ApiError.not_found("filesystem", "The requested filesystem was not found.")
    return fs


def list_filesystems(ctx: Ctx) -> Response:
    limit = query_limit(ctx.query)
    after = decode_cursor(ctx.query)
    prefix = ctx.query.get("name_prefix", "")
    items = (
        fs
        for fs in ctx.state.store.org_filesystems_after(ctx.org.org_id, after)
        if fs.name.startswith(prefix)
    )
    page, cursor = take_page(items, limit, lambda fs: fs.seq)
    return json_response({"filesystems": [filesystem_wire(fs) for fs in page], "next_cursor": cursor})


def create_filesystem(ctx: Ctx) -> Response:
    request = parse_body(FilesystemCreateRequest, ctx.body)
    if request.name != request.name.strip() or "/" in request.name:
        raise ApiError.field("name", "must not have surrounding spaces or contain '/'")
    store = ctx.state.store
    with store.lock:
        if store.filesystem_by_name(ctx.org.org_id, request.name) is not None:
            raise ApiError.already_exists(
                "filesystem", f"A filesystem named {request.name!r} already exists."
            )
        fs = FilesystemRecord(new_id("fs"), store.next_seq(), ctx.org.org_id, request.name, now_epoch())
        store.add_filesystem(fs)
    return json_response(filesystem_wire(fs))


def get_filesystem(ctx: Ctx) -> Response:
    return json_response(filesystem_wire(find_filesystem(ctx, ctx.params["filesystem_id"])))


def delete_filesystem(ctx: Ctx) -> Response:
    store = ctx.state.store
    fs = find_filesystem(ctx, ctx.params["filesystem_id"])
    with store.lock:
        if store.filesystem_in_use(fs.filesystem_id):
            raise ApiError.field("filesystem_id", "the filesystem is still mounted; delete its mounts first")
        store.delete_filesystem(fs)
    return json_response({"deleted": True})
