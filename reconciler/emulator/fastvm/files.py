"""Files: ``files/presign`` (a staging object with upload/download URLs), ``files/fetch`` (pull it into the
guest), build-context presign, and the staging object's own URLs under ``/_emulator/storage/``.

The guest filesystem is a map of path -> bytes per VM; :mod:`.exec` reads it back.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from .body import Body, parse_body
from .context import Ctx, read_body
from .errors import ApiError, error_response, json_response, new_request_id
from .exec import exec_result, require_running
from .records import StagingObject
from .state import FastvmState

__all__ = [
    "STORAGE_PREFIX",
    "fetch_file",
    "presign_build_context",
    "presign_file",
    "storage_get",
    "storage_put",
]

STORAGE_PREFIX = "/_emulator/storage"
# Staged objects are held in memory: cap them well below a real disk.
MAX_STAGED_BYTES = 64 * 1024 * 1024
_CONTEXT_MAX_BYTES = 64 * 1024 * 1024


class PresignRequest(Body):
    path: Annotated[str, Field(min_length=1, max_length=4096)]


class FetchRequest(Body):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    url: Annotated[str, Field(min_length=1, max_length=8192)]
    timeout_sec: Annotated[int, Field(ge=1)] | None = None


def _stage(ctx: Ctx, vm_id: str | None, path: str, max_bytes: int) -> Response:
    state = ctx.state
    ttl = state.settings.presign_ttl_seconds
    staged = StagingObject(
        org_id=ctx.org.org_id,
        vm_id=vm_id,
        path=path,
        upload_token="u_" + secrets.token_urlsafe(24),
        download_token="d_" + secrets.token_urlsafe(24),
        expires_at=state.now() + ttl,
        max_bytes=max_bytes,
    )
    state.staging[staged.upload_token] = staged
    state.staging[staged.download_token] = staged
    base = f"{ctx.origin}{STORAGE_PREFIX}"
    return json_response(
        {
            "uploadUrl": f"{base}/{staged.upload_token}",
            "downloadUrl": f"{base}/{staged.download_token}",
            "expiresInSec": ttl,
            "maxUploadBytes": max_bytes,
        }
    )


def presign_file(ctx: Ctx) -> Response:
    request = parse_body(PresignRequest, ctx.body)
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    return _stage(ctx, vm.vm_id, request.path, min(vm.disk_gib * 1024**3, MAX_STAGED_BYTES))


def presign_build_context(ctx: Ctx) -> Response:
    return _stage(ctx, None, "build-context.tar.gz", _CONTEXT_MAX_BYTES)


def fetch_file(ctx: Ctx) -> Response:
    request = parse_body(FetchRequest, ctx.body)
    vm = ctx.state.vm(ctx.org, ctx.params["id"])
    if not request.path.startswith("/"):
        raise ApiError.field("path", "must be an absolute path inside the guest")
    prefix = f"{STORAGE_PREFIX}/"
    _, _, token = request.url.partition(prefix)
    staged = ctx.state.staging.get(token) if token.startswith("d_") else None
    if staged is None or staged.vm_id != vm.vm_id or prefix not in request.url:
        raise ApiError.field("url", "must be a downloadUrl returned by files/presign for this VM")
    require_running(vm)
    if ctx.state.now() > staged.expires_at:
        return exec_result(22, "", "curl: (22) The requested URL returned error: 403 (expired)\n")
    if staged.data is None:
        return exec_result(22, "", "curl: (22) The requested URL returned error: 404 (nothing uploaded)\n")
    vm.files[request.path] = staged.data
    return exec_result(0, "", "")


def _storage_error(code: str, message: str) -> Response:
    return error_response(ApiError(code, message), new_request_id())


async def storage_put(state: FastvmState, token: str, request: Request) -> Response:
    staged = state.staging.get(token) if token.startswith("u_") else None
    if staged is None or state.now() > staged.expires_at:
        return _storage_error("forbidden", "The upload URL is unknown or expired.")
    try:
        data = await read_body(request, min(staged.max_bytes, MAX_STAGED_BYTES))
    except ApiError as refused:
        return error_response(refused, new_request_id())
    with state.lock:
        staged.data = data
    return Response(status_code=200)


def storage_get(state: FastvmState, token: str) -> Response:
    staged = state.staging.get(token) if token.startswith("d_") else None
    if staged is None or state.now() > staged.expires_at:
        return _storage_error("forbidden", "The download URL is unknown or expired.")
    if staged.data is None:
        return _storage_error("not_found", "Nothing was uploaded to this object yet.")
    return Response(staged.data, media_type="application/octet-stream")
