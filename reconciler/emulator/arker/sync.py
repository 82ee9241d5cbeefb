"""``POST /v1/vms/{id}/sync``: read, write and manifest, plus the presigned URLs the emulator serves.

- ``read`` answers inline (``encoding`` ``utf8`` for valid UTF-8, else ``base64``) up to
  ``presign_threshold_bytes``, and a presigned GET URL (``/_emulator/presigned/{token}``) above it.
- ``write`` takes chunk entries sharing an ``upload_id`` (ranges may arrive in any order and be resent;
  the file is written when ``[0, size)`` is covered and its sha256, when given, matches), or a presigned
  upload (request a PUT URL, PUT the bytes, then commit with the ``upload_id``). Failures are per file,
  inside a 200, as the contract's SyncFileError.
- ``manifest`` lists regular files under a non-root directory, recursively, with their sha256.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, RootModel, Tag
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .body import Body, not_null
from .clock import now_epoch
from .context import Ctx
from .errors import ApiError, json_response
from .lookup import find_vm, require_mutable
from .records import REGULAR_FILE, FileEntry, VmRecord
from .state import ArkerState
from .transfers import ChunkUpload
from .validation import parse_body

__all__ = [
    "SYNC_BODY_LIMIT",
    "SyncRequest",
    "presigned_get",
    "presigned_put",
    "sync",
]

SYNC_BODY_LIMIT = 64 * 1024 * 1024
MANIFEST_LIMIT = 50_000
PRESIGNED_PREFIX = "/_emulator/presigned"


class SyncReadOperationRequest(Body):
    op: Literal["read"]
    path: str


class SyncManifestOperationRequest(Body):
    op: Literal["manifest"]
    path: Annotated[str, Field(min_length=1)]


class SyncChunkWrite(Body):
    path: str
    size: Annotated[int, Field(ge=0)]
    upload_id: str
    content: str
    start: Annotated[int, Field(ge=0)]
    end: Annotated[int, Field(ge=0)]
    sha256: str | None = None
    is_secret: bool = False

    _not_null = not_null("is_secret")


class SyncPresignedWriteRequest(Body):
    path: str
    size: Annotated[int, Field(ge=0)]
    presigned: bool
    is_secret: bool = False

    _not_null = not_null("is_secret")


class SyncPresignedWriteCommit(Body):
    path: str
    size: Annotated[int, Field(ge=0)]
    upload_id: str
    sha256: str | None = None


def _entry_kind(value: Any) -> str | None:
    if isinstance(value, Body):  # serialising a parsed entry
        kinds = {SyncChunkWrite: "<chunk>", SyncPresignedWriteRequest: "<presign>"}
        return kinds.get(type(value), "<commit>")
    if not isinstance(value, dict):
        return None
    if "content" in value:
        return "<chunk>"
    if "presigned" in value:
        return "<presign>"
    return "<commit>"


WriteEntry = Annotated[
    Annotated[SyncChunkWrite, Tag("<chunk>")]
    | Annotated[SyncPresignedWriteRequest, Tag("<presign>")]
    | Annotated[SyncPresignedWriteCommit, Tag("<commit>")],
    Discriminator(_entry_kind, custom_error_type="write_entry", custom_error_message="must be an object"),
]


class SyncWriteOperationRequest(Body):
    op: Literal["write"]
    writes: Annotated[list[WriteEntry], Field(min_length=1)]


def _op(value: Any) -> str | None:
    if isinstance(value, Body):
        op = getattr(value, "op", None)
    else:
        op = value.get("op") if isinstance(value, dict) else None
    return f"<{op}>" if op in ("read", "write", "manifest") else None


class SyncRequest(
    RootModel[
        Annotated[
            Annotated[SyncReadOperationRequest, Tag("<read>")]
            | Annotated[SyncWriteOperationRequest, Tag("<write>")]
            | Annotated[SyncManifestOperationRequest, Tag("<manifest>")],
            Discriminator(
                _op, custom_error_type="sync_op", custom_error_message="op must be read, write or manifest"
            ),
        ]
    ]
):
    pass


class _FileError(Exception):
    """A per-file failure, rendered inside the 200 as a SyncFileError."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {"code": code, "message": message}
        if details is not None:
            self.body["details"] = details

    @classmethod
    def bad(cls, field: str, message: str) -> _FileError:
        return cls(
            "bad_request", f"{field}: {message}", {"violations": [{"field": field, "message": message}]}
        )


def _normal_path(raw: str) -> str | None:
    """The normalised absolute path, or None when ``raw`` is not absolute."""
    if not raw.startswith("/"):
        return None
    if _is_normal(raw):
        return raw  # what the general path below returns for it, without normpath's work
    return "/" + posixpath.normpath(raw).lstrip("/")


def _is_normal(path: str) -> bool:
    """Whether the absolute ``path`` has nothing normpath would change: no empty, ``.`` or ``..``
    segment and no trailing slash."""
    return (
        "//" not in path
        and "/./" not in path
        and "/../" not in path
        and not path.endswith(("/", "/.", "/.."))
    )


def _api_path(raw: str) -> str:
    path = _normal_path(raw)
    if path is None:
        raise ApiError.field("path", "must be an absolute path")
    return path


def _file_path(raw: str) -> str:
    path = _normal_path(raw)
    if path is None:
        raise _FileError.bad("path", "must be an absolute path")
    return path


def _is_dir(vm: VmRecord, path: str) -> bool:
    prefix = path.rstrip("/") + "/"
    return any(name.startswith(prefix) for name in vm.files)


# --- read ----------------------------------------------------------------------------------------


def _read(ctx: Ctx, vm: VmRecord, request: SyncReadOperationRequest) -> Response:
    path = _api_path(request.path)
    entry = vm.files.get(path)
    if entry is None:
        if _is_dir(vm, path):
            raise ApiError.field("path", "is a directory")
        raise ApiError.not_found("file", f"No file at {path}.")
    body: dict[str, Any] = {"ok": True, "op": "read", "path": path, "size": len(entry.data)}
    settings = ctx.state.settings
    if len(entry.data) > settings.presign_threshold_bytes:
        read = ctx.state.transfers.new_read(entry.data)
        body.update(
            presigned_url=f"{ctx.origin}{PRESIGNED_PREFIX}/{read.token}",
            expires_in=settings.presign_ttl_seconds,
            method="GET",
        )
        return json_response(body)
    try:
        body.update(content=entry.data.decode("utf-8"), encoding="utf8")
    except UnicodeDecodeError:
        body.update(content=base64.b64encode(entry.data).decode("ascii"), encoding="base64")
    return json_response(body)


# --- manifest ------------------------------------------------------------------------------------


def _manifest(vm: VmRecord, request: SyncManifestOperationRequest) -> Response:
    root = _api_path(request.path)
    if root == "/":
        raise ApiError.field("path", "must be a non-root directory")
    if root in vm.files:
        raise ApiError.field("path", "is a file, not a directory")
    prefix = root + "/"
    entries: list[dict[str, Any]] = []
    truncated = False
    for name in sorted(p for p in vm.files if p.startswith(prefix)):
        if len(entries) == MANIFEST_LIMIT:
            truncated = True
            break
        entry = vm.files[name]
        entries.append(
            {"path": name[len(prefix) :], "size": len(entry.data), "mode": entry.mode, "hash": entry.sha256}
        )
    return json_response({"root": root, "hash_algo": "sha256", "entries": entries, "truncated": truncated})


# --- write ---------------------------------------------------------------------------------------


def _store_file(ctx: Ctx, vm: VmRecord, path: str, data: bytes, digest: str, secret: bool) -> None:
    if path == "/":
        raise _FileError.bad("path", "must name a file, not the root directory")
    if _is_dir(vm, path):
        raise _FileError("conflict", f"{path} is a directory", {"resource": "file"})
    # Each parent directory, nearest first (``path`` is normalised: one leading slash, none doubled
    # or trailing, so cutting at the last slash is posixpath.dirname).
    end = path.rfind("/")
    while end > 0:
        parent = path[:end]
        if parent in vm.files:
            raise _FileError("conflict", f"{parent} is a file, not a directory", {"resource": "file"})
        end = path.rfind("/", 0, end)
    previous = vm.files.get(path)
    mode = previous.mode if previous is not None else REGULAR_FILE | 0o644
    ctx.state.store.put_file(vm, path, FileEntry(data, digest, mode, secret))


def _check_digest(expected: str | None, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and expected.lower() != digest:
        raise _FileError.bad("sha256", "the digest must match the uploaded content")
    return digest


def _chunk_result(entry: SyncChunkWrite, upload: ChunkUpload | None, written: bool) -> dict[str, Any]:
    ranges = upload.ranges if upload is not None else []
    return {
        "path": entry.path,
        "size": entry.size,
        "received_bytes": upload.received if upload is not None else 0,
        "ranges": [{"start": low, "end": high} for low, high in ranges],
        "complete": upload.complete if upload is not None else False,
        "written": written,
    }


def _write_chunk(ctx: Ctx, vm: VmRecord, entry: SyncChunkWrite) -> dict[str, Any]:
    upload: ChunkUpload | None = None
    try:
        path = _file_path(entry.path)
        if not entry.start <= entry.end <= entry.size:
            raise _FileError.bad("end", "the range must satisfy start <= end <= size")
        limit = ctx.state.settings.sync_chunk_limit_bytes
        if entry.end - entry.start > limit:
            raise _FileError(
                "payload_too_large",
                "The chunk exceeds the supported size; split it.",
                {"maximum_bytes": limit, "request_bytes": entry.end - entry.start},
            )
        try:
            data = base64.b64decode(entry.content, validate=True)
        except (binascii.Error, ValueError):
            raise _FileError.bad("content", "must be base64") from None
        if len(data) != entry.end - entry.start:
            raise _FileError.bad("content", "the decoded length must equal end - start")
        transfers = ctx.state.transfers
        upload = transfers.chunk(vm.vm_id, entry.upload_id)
        if upload is None:
            upload = ChunkUpload(
                vm.vm_id, entry.upload_id, path, entry.size, bytearray(entry.size), transfers.expiry()
            )
            transfers.add_chunk(upload)
        elif upload.path != path or upload.size != entry.size:
            conflicting = upload
            upload = None
            raise _FileError(
                "conflict",
                f"upload {conflicting.upload_id} belongs to {conflicting.path} ({conflicting.size} bytes)",
                {"resource": "upload"},
            )
        upload.receive(entry.start, data)
        upload.sha256 = entry.sha256 or upload.sha256
        upload.secret = upload.secret or entry.is_secret
        if not upload.complete:
            return _chunk_result(entry, upload, False)
        content = upload.content()
        try:
            digest = _check_digest(upload.sha256, content)
        except _FileError:
            transfers.drop_chunk(upload)
            raise
        _store_file(ctx, vm, path, content, digest, upload.secret)
        return _chunk_result(entry, upload, True)
    except _FileError as error:
        result = _chunk_result(entry, upload, False)
        result["error"] = error.body
        return result


def _presign(ctx: Ctx, vm: VmRecord, entry: SyncPresignedWriteRequest) -> dict[str, Any]:
    if not entry.presigned:
        raise _FileError.bad("presigned", "must be true; inline writes send content, start and end")
    path = _file_path(entry.path)
    upload = ctx.state.transfers.new_upload(vm.vm_id, path, entry.size, entry.is_secret)
    return {
        "path": entry.path,
        "size": entry.size,
        "presigned_url": f"{ctx.origin}{PRESIGNED_PREFIX}/uploads/{upload.token}",
        "upload_id": upload.upload_id,
        "expires_in": ctx.state.settings.presign_ttl_seconds,
        "method": "PUT",
        "complete": False,
        "written": False,
    }


def _commit(ctx: Ctx, vm: VmRecord, entry: SyncPresignedWriteCommit) -> dict[str, Any]:
    transfers = ctx.state.transfers
    path = _file_path(entry.path)
    upload = transfers.uploads.get((vm.vm_id, entry.upload_id))
    if upload is None:
        raise _FileError("not_found", f"No upload {entry.upload_id} on this VM.", {"resource": "upload"})
    if upload.expires_at < now_epoch():
        transfers.forget_upload(upload)
        raise _FileError("expired", "The upload URL expired before the commit.", {"resource": "upload"})
    if upload.path != path or upload.size != entry.size:
        raise _FileError(
            "conflict", f"upload {upload.upload_id} is for {upload.path}", {"resource": "upload"}
        )
    if upload.data is None:
        raise _FileError.bad("upload_id", "nothing was uploaded to the presigned URL yet")
    if len(upload.data) != upload.size:
        raise _FileError.bad("size", f"{len(upload.data)} bytes were uploaded, not {upload.size}")
    digest = _check_digest(entry.sha256, upload.data)
    _store_file(ctx, vm, path, upload.data, digest, upload.secret)
    transfers.forget_upload(upload)
    return {"path": entry.path, "size": entry.size, "complete": True, "written": True}


def _write(ctx: Ctx, vm: VmRecord, request: SyncWriteOperationRequest) -> Response:
    require_mutable(vm)
    results: list[dict[str, Any]] = []
    ctx.state.transfers.purge()
    store = ctx.state.store
    # One SQLite transaction for the request's files and the VM's last_active_at, not one per file.
    with store.lock, store.transaction():
        for entry in request.writes:
            if isinstance(entry, SyncChunkWrite):
                results.append(_write_chunk(ctx, vm, entry))
                continue
            try:
                if isinstance(entry, SyncPresignedWriteRequest):
                    results.append(_presign(ctx, vm, entry))
                else:
                    results.append(_commit(ctx, vm, entry))
            except _FileError as error:
                # A failed presign or commit has no URL or ranges to report: the commit result shape.
                results.append(
                    {
                        "path": entry.path,
                        "size": entry.size,
                        "complete": False,
                        "written": False,
                        "error": error.body,
                    }
                )
        if any(r["written"] for r in results):
            vm.last_active_at = now_epoch()
            store.save_vm(vm)
    return json_response({"ok": all("error" not in r for r in results), "op": "write", "results": results})


def sync(ctx: Ctx) -> Response:
    request = parse_body(SyncRequest, ctx.body).root
    vm = find_vm(ctx.state.store, ctx.org, ctx.params["id"])
    if isinstance(request, SyncReadOperationRequest):
        return _read(ctx, vm, request)
    if isinstance(request, SyncManifestOperationRequest):
        return _manifest(vm, request)
    return _write(ctx, vm, request)


# --- the presigned URLs (outside the API: no key, the token is the credential) -----------------------


def presigned_get(state: ArkerState, token: str) -> Response:
    read = state.transfers.reads.get(token)
    if read is None or read.expires_at < now_epoch():
        return PlainTextResponse("The presigned URL is unknown or expired.", status_code=403)
    return Response(read.data, media_type="application/octet-stream")


async def presigned_put(state: ArkerState, token: str, request: Request) -> Response:
    upload = state.transfers.upload_tokens.get(token)
    if upload is None or upload.expires_at < now_epoch():
        return PlainTextResponse("The presigned URL is unknown or expired.", status_code=403)
    data = await request.body()
    if len(data) != upload.size:
        return PlainTextResponse(f"Expected {upload.size} bytes, received {len(data)}.", status_code=400)
    upload.data = data
    return Response(status_code=200)
