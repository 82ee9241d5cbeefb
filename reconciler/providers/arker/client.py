"""Typed async client of the Arker public API.

One ``httpx.AsyncClient`` (its transport injectable: a real socket pool, ``httpx.MockTransport`` or
``httpx.ASGITransport`` over the emulator) serves every call. Errors are the typed tree of ``errors.py``;
retries follow the decision table in ``retry.py``.

Which endpoint serves what. The contract documents one server (``https://arker.ai/api``) and says every
regional placement listed by ``GET /v1/regions`` "accepts fork, run, and sync requests". We send:

=====================================================  ==========  ==========================================
operations                                             plane       why
=====================================================  ==========  ==========================================
``listRegions``, ``whoami``, ``listVms``               control     organization-wide: the control plane
                                                                   aggregates every provider and region
``health``                                             regional    readiness of the endpoint we will use
                                                                   (``health(control=True)`` asks the other)
``fork``, ``getVm``, ``patchVm``, ``deleteVm``,        regional    VM-scoped work is served where the VM
policies, ``createRun``/``getRun``, mounts, ``sync``,              lives; the control plane does not route
filesystems                                                        filesystems
=====================================================  ==========  ==========================================

With ``ARKER_BASE_URL`` alone (the emulator) both planes are the same URL.

Authorization is a per-request ``Bearer`` header (never a client default), so a presigned URL on another
host is fetched without it; redirects are not followed, so the key cannot be forwarded anywhere either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import posixpath
import random
import re
import time
from collections.abc import AsyncIterator, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Union
from urllib.parse import quote

import httpx
import pydantic_core
from pydantic import TypeAdapter, ValidationError

from reconciler.engine.errors import TransientError
from reconciler.providers._http_core import ClientLifecycle, open_exchange

from ._http import CallStats, HttpCore, Operation, Reply, describe_validation_error
from .connection import ConnectionSettings
from .errors import (
    ERROR_CLASSES,
    ArkerAPIError,
    ArkerProtocolError,
    ArkerWaitTimeout,
    MountFailed,
    NotFound,
    UnknownAPIError,
    UnsupportedOperation,
)
from .idempotency import valid_idempotency_key
from .retry import Replay, RetryPolicy
from .wire import (
    BackgroundRunResponse,
    CompletedRunResponse,
    DeleteResult,
    Filesystem,
    FilesystemCreateRequest,
    ForkRequest,
    HealthResponse,
    ListFilesystemsResponse,
    ListMountsResponse,
    ListRegionsResponse,
    ListVmsResponse,
    Mount,
    MountCreateRequest,
    PatchVmRequest,
    PolicyDoc,
    PolicyWriteRequest,
    Run,
    RunRequest,
    SyncChunkWriteResult,
    SyncCommitWriteResult,
    SyncFileError,
    SyncManifestResponse,
    SyncPresignedWriteRequestResult,
    SyncReadInlineResponse,
    SyncReadPresignedResponse,
    SyncWriteResponse,
    Vm,
    VmRules,
    WhoamiResponse,
)

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_PAGE_SIZE",
    "ArkerClient",
    "CallStats",
    "WrittenFile",
]

MAX_PAGE_SIZE = 1000  # the contract's `limit` maximum
CHUNK_SIZE = 4 * 1024 * 1024  # raw bytes per sync write chunk
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_READ_BYTES = 256 * 1024 * 1024
DEFAULT_PRESIGNED_MIN_BYTES = 64 * 1024 * 1024
_MAX_BATCH_FILES = 256  # small files per write request: keeps one request's JSON and result list modest
_USER_AGENT = "arkerctl/0.1 (python-httpx)"

_S, _U = Replay.SAFE, Replay.UNSAFE
_HEALTH = Operation("health", "GET", False, _S)
_HEALTH_CONTROL = Operation("health", "GET", True, _S)
_REGIONS = Operation("listRegions", "GET", True, _S)
_WHOAMI = Operation("whoami", "GET", True, _S)
_FORK = Operation("fork", "POST", False, _S)  # only ever sent with an Idempotency-Key
_LIST_VMS = Operation("listVms", "GET", True, _S)
_GET_VM = Operation("getVm", "GET", False, _S)
_PATCH_VM = Operation("patchVm", "PATCH", False, _S)
_DELETE_VM = Operation("deleteVm", "DELETE", False, _S)
_GET_POLICIES = Operation("getVmPolicies", "GET", False, _S)
_PUT_POLICIES = Operation("putVmPolicies", "PUT", False, _S)
_CREATE_MOUNT = Operation("createMount", "POST", False, _S)
_LIST_MOUNTS = Operation("listMounts", "GET", False, _S)
_DELETE_MOUNT = Operation("deleteMount", "DELETE", False, _S)
_SYNC = Operation("sync", "POST", False, _S)
_PRESIGNED_GET = Operation("sync.presignedGet", "GET", False, _S)
_PRESIGNED_PUT = Operation("sync.presignedPut", "PUT", False, _S)
_LIST_FILESYSTEMS = Operation("listFilesystems", "GET", False, _S)
_CREATE_FILESYSTEM = Operation("createFilesystem", "POST", False, _U)
_GET_FILESYSTEM = Operation("getFilesystem", "GET", False, _S)
_DELETE_FILESYSTEM = Operation("deleteFilesystem", "DELETE", False, _S)
_CREATE_RUN = Operation("createRun", "POST", False, _U)  # SAFE when an Idempotency-Key is given
_GET_RUN = Operation("getRun", "GET", False, _S)

ResultT = TypeVar("ResultT", SyncChunkWriteResult, SyncPresignedWriteRequestResult, SyncCommitWriteResult)

# Characters ``quote(value, safe="")`` never escapes.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")

# Upload ids only need to be unique: seeded from the OS, re-seeded in a forked child (no shared sequence).
_UPLOAD_RANDOM = random.Random()
os.register_at_fork(after_in_child=_UPLOAD_RANDOM.seed)

_SYNC_READ = TypeAdapter(Union[SyncReadInlineResponse, SyncReadPresignedResponse])  # noqa: UP007


@dataclass(frozen=True)
class WrittenFile:
    """A file the sync API confirmed as written."""

    path: str
    size: int
    sha256: str


def _segment(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} must not be empty")
    if _UNRESERVED.fullmatch(value):
        return value  # what quote() leaves alone (ids are UUIDs and such): no copy, no scan in Python
    return quote(value, safe="")


def _vm_path(vm_id: str) -> str:
    return f"/v1/vms/{_segment(vm_id, 'VM id')}"


def _joined(root: str, path: str) -> str:
    """``posixpath.join(root, path)`` for the two strings of a manifest entry, without its generality."""
    if path.startswith("/"):
        return path
    return root + path if root.endswith("/") or not root else f"{root}/{path}"


def _json(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as ``json.dumps(body, separators=(",", ":"), ensure_ascii=False)`` but ~5x
    cheaper (every write call sends one; a sync write's base64 content is most of its body). The same
    text, except that a float's exponent has no padding (``1e-7``, not ``1e-07``): the same number. For
    JSON data only: unlike ``json.dumps`` it would also encode bytes, datetimes, sets and models, which
    no caller sends."""
    return pydantic_core.to_json(body)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


class ArkerClient(ClientLifecycle):
    """Async Arker API client. Use as ``async with ArkerClient(settings) as client: ...``.

    ``transport`` replaces the socket transport (tests: ``httpx.MockTransport``/``httpx.ASGITransport``).
    ``max_connections`` sizes the pool: the engine runs dozens of operations at once. ``stats`` counts the
    HTTP requests sent per operation id. Every method raises only ``ArkerError`` subclasses, except
    ``ValueError`` for arguments that can never be valid (an empty id, a malformed idempotency key).
    """

    _core: HttpCore

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_connections: int = 64,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.settings = settings
        self._base = httpx.URL(settings.base_url)
        self._control = httpx.URL(settings.control_base_url)
        # Rendered once: every call joins one of them with its path.
        self._base_text = str(self._base).rstrip("/")
        self._control_text = str(self._control).rstrip("/")
        exchange = open_exchange(
            transport=transport, timeout=timeout, max_connections=max_connections, user_agent=_USER_AGENT
        )
        self.stats = CallStats()
        self._core = HttpCore(
            exchange,
            api_key=settings.api_key.get_secret_value(),
            retry=retry or RetryPolicy(),
            max_response_bytes=max_response_bytes,
            stats=self.stats,
        )

    def __repr__(self) -> str:
        settings = self.settings
        return f"ArkerClient(base_url={settings.base_url!r}, control_base_url={settings.control_base_url!r})"

    @property
    def retry(self) -> RetryPolicy:
        return self._core.retry

    def warm(self, connections: int) -> None:
        """Open up to ``connections`` to the API in the background, ahead of a burst of calls."""
        self._core.exchange.warm(self._base_text, connections)

    # ── plumbing ────────────────────────────────────────────────────────────────────────────────────────

    def _url(self, operation: Operation, path: str) -> str:
        return (self._control_text if operation.control else self._base_text) + path

    def _call(
        self,
        operation: Operation,
        path: str,
        *,
        params: Mapping[str, str | int | bool | None] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        replay: Replay | None = None,
    ) -> Coroutine[Any, Any, Reply]:
        # The request's coroutine, awaited by the caller (one coroutine layer less per call).
        query = None
        if params:
            query = {
                key: ("true" if value else "false") if isinstance(value, bool) else str(value)
                for key, value in sorted(params.items())
                if value is not None
            }
        return self._core.request(
            operation,
            self._url(operation, path),
            path,
            params=query,
            content=None if body is None else _json(body),
            headers=headers,
            ok=ok,
            replay=replay,
        )

    # ── service ─────────────────────────────────────────────────────────────────────────────────────────

    async def health(self, *, control: bool = False) -> HealthResponse:
        """Readiness of the regional endpoint (or the control plane). A not-ready 503 body is returned
        as a result with ``status != "ok"``, not raised: it is an answer, not a failure."""
        reply = await self._call(_HEALTH_CONTROL if control else _HEALTH, "/v1/health", ok=(200, 503))
        if reply.status == 503:
            try:
                return HealthResponse.model_validate_json(reply.content, strict=True)
            except ValidationError:
                raise self._core.error_for(reply) from None
        return self._core.parse(HealthResponse, reply)

    async def regions(self) -> ListRegionsResponse:
        return self._core.parse(ListRegionsResponse, await self._call(_REGIONS, "/v1/regions"))

    async def whoami(self) -> WhoamiResponse:
        return self._core.parse(WhoamiResponse, await self._call(_WHOAMI, "/v1/whoami"))

    # ── VMs ─────────────────────────────────────────────────────────────────────────────────────────────

    async def fork(self, request: ForkRequest, *, idempotency_key: str) -> Vm:
        """Fork a VM. The key makes retries and re-runs return the same VM (``fork_idempotency_key``)."""
        return self._core.parse(Vm, await self._fork(request, idempotency_key))

    async def fork_rules(self, request: ForkRequest, *, idempotency_key: str) -> VmRules:
        """:meth:`fork`, reading the answer for the new VM's id and policy rules only (what a create needs
        next), validated as in :meth:`fork`; the rest of the document is not parsed."""
        return self._core.parse(VmRules, await self._fork(request, idempotency_key))

    def _fork(self, request: ForkRequest, idempotency_key: str) -> Coroutine[Any, Any, Reply]:
        if not valid_idempotency_key(idempotency_key):
            raise ValueError("idempotency_key must be 1-64 printable ASCII characters")
        return self._call(
            _FORK, "/v1/fork", body=request.to_wire(), headers={"Idempotency-Key": idempotency_key}
        )

    async def list_vms_page(
        self,
        cursor: str | None = None,
        limit: int = MAX_PAGE_SIZE,
        *,
        region: str | None = None,
        provider: str | None = None,
        org_id: str | None = None,
        public: bool | None = None,
        state: str | None = None,
        platform: str | None = None,
    ) -> ListVmsResponse:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be within 1..{MAX_PAGE_SIZE}")
        params = {
            "cursor": cursor,
            "limit": limit,
            "region": region,
            "provider": provider,
            "org_id": org_id,
            "public": public,
            "state": state,
            "platform": platform,
        }
        return self._core.parse(ListVmsResponse, await self._call(_LIST_VMS, "/v1/vms", params=params))

    async def list_vms(
        self,
        *,
        page_size: int = MAX_PAGE_SIZE,
        region: str | None = None,
        provider: str | None = None,
        org_id: str | None = None,
        public: bool | None = None,
        state: str | None = None,
        platform: str | None = None,
    ) -> AsyncIterator[Vm]:
        """Every VM matching the filters, across all pages (the largest page size by default)."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await self.list_vms_page(
                cursor,
                page_size,
                region=region,
                provider=provider,
                org_id=org_id,
                public=public,
                state=state,
                platform=platform,
            )
            for vm in page.vms:
                yield vm
            cursor = self._next_cursor(page.next_cursor, seen, "/v1/vms")
            if cursor is None:
                return

    @staticmethod
    def _next_cursor(cursor: str | None, seen: set[str], path: str) -> str | None:
        if not cursor:
            return None
        if cursor in seen:
            # A server handing back an earlier cursor would page forever.
            raise ArkerProtocolError("pagination cursor repeated", method="GET", path=path)
        seen.add(cursor)
        return cursor

    async def get_vm(self, id_or_name: str) -> Vm:
        return self._core.parse(Vm, await self._call(_GET_VM, _vm_path(id_or_name)))

    async def get_vm_rules(self, id_or_name: str) -> VmRules:
        """``getVm`` read for its policy rules only (what a refresh needs beyond the VM list): the rules
        are validated as in :meth:`get_vm`, the other fields of the document are not parsed."""
        return self._core.parse(VmRules, await self._call(_GET_VM, _vm_path(id_or_name)))

    async def patch_vm(self, vm_id: str, body: PatchVmRequest) -> Vm:
        return self._core.parse(Vm, await self._call(_PATCH_VM, _vm_path(vm_id), body=body.to_wire()))

    async def delete_vm(self, vm_id: str) -> DeleteResult:
        return self._core.parse(DeleteResult, await self._call(_DELETE_VM, _vm_path(vm_id)))

    async def get_policies(self, vm_id: str) -> PolicyDoc:
        """The deprecated whole-document view; prefer ``get_vm(...).policies`` (keyed rules)."""
        return self._core.parse(PolicyDoc, await self._call(_GET_POLICIES, f"{_vm_path(vm_id)}/policies"))

    async def put_policies(self, vm_id: str, doc: PolicyWriteRequest) -> PolicyDoc:
        """Replace the whole policy (deprecated endpoint); prefer ``patch_vm`` with a ``PolicyUpdate``."""
        reply = await self._call(_PUT_POLICIES, f"{_vm_path(vm_id)}/policies", body=doc.to_wire())
        return self._core.parse(PolicyDoc, reply)

    # ── runs ────────────────────────────────────────────────────────────────────────────────────────────

    async def create_run(
        self, vm_id: str, request: RunRequest, *, idempotency_key: str | None = None
    ) -> CompletedRunResponse | BackgroundRunResponse:
        """Run a command: 200 is a finished run, 202 one still going (poll ``get_run``). Without an
        idempotency key a run is not replayed after an ambiguous failure (it could run twice)."""
        headers: dict[str, str] = {}
        replay = Replay.UNSAFE
        if idempotency_key is not None:
            if not valid_idempotency_key(idempotency_key):
                raise ValueError("idempotency_key must be 1-64 printable ASCII characters")
            headers["Idempotency-Key"] = idempotency_key
            replay = Replay.SAFE
        reply = await self._call(
            _CREATE_RUN,
            f"{_vm_path(vm_id)}/runs",
            body=request.to_wire(),
            headers=headers,
            ok=(200, 202),
            replay=replay,
        )
        if reply.status == 202:
            return self._core.parse(BackgroundRunResponse, reply)
        return self._core.parse(CompletedRunResponse, reply)

    async def get_run(self, vm_id: str, run_id: str) -> Run:
        path = f"{_vm_path(vm_id)}/runs/{_segment(run_id, 'run id')}"
        return self._core.parse(Run, await self._call(_GET_RUN, path))

    # ── filesystems ─────────────────────────────────────────────────────────────────────────────────────

    async def list_filesystems(self, *, name_prefix: str | None = None) -> tuple[Filesystem, ...]:
        """Every filesystem visible to the caller (all pages), in the server's order."""
        found: list[Filesystem] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = {"cursor": cursor, "limit": MAX_PAGE_SIZE, "name_prefix": name_prefix}
            reply = await self._call(_LIST_FILESYSTEMS, "/v1/filesystems", params=params)
            page = self._core.parse(ListFilesystemsResponse, reply)
            found.extend(page.filesystems)
            cursor = self._next_cursor(page.next_cursor, seen, "/v1/filesystems")
            if cursor is None:
                return tuple(found)

    async def create_filesystem(self, name: str) -> Filesystem:
        """Not replayed after an ambiguous failure: a lost response would make the replay answer
        ``already_exists``. The error says ``ambiguous=True``; look the name up before retrying."""
        body = FilesystemCreateRequest(name=name).to_wire()
        return self._core.parse(
            Filesystem, await self._call(_CREATE_FILESYSTEM, "/v1/filesystems", body=body)
        )

    async def get_filesystem(self, filesystem_id: str) -> Filesystem:
        path = f"/v1/filesystems/{_segment(filesystem_id, 'filesystem id')}"
        return self._core.parse(Filesystem, await self._call(_GET_FILESYSTEM, path))

    async def delete_filesystem(self, filesystem_id: str) -> DeleteResult:
        path = f"/v1/filesystems/{_segment(filesystem_id, 'filesystem id')}"
        return self._core.parse(DeleteResult, await self._call(_DELETE_FILESYSTEM, path))

    # ── mounts ──────────────────────────────────────────────────────────────────────────────────────────

    async def create_mount(self, vm_id: str, filesystem_id: str, path: str | None = None) -> Mount:
        """Mount a filesystem (state ``attaching``: see ``wait_mount``). A repeat returns the same mount."""
        body: Mapping[str, Any]
        if isinstance(filesystem_id, str) and filesystem_id and (path is None or isinstance(path, str)):
            # What ``MountCreateRequest(...).to_wire()`` gives for valid arguments (``path`` is always set,
            # so a ``None`` goes as null), without a model per create; anything else is refused by it.
            body = {"filesystem_id": filesystem_id, "path": path}
        else:
            body = MountCreateRequest(filesystem_id=filesystem_id, path=path).to_wire()
        return self._core.parse(
            Mount, await self._call(_CREATE_MOUNT, f"{_vm_path(vm_id)}/mounts", body=body)
        )

    async def list_mounts(self, vm_id: str, *, filesystem_id: str | None = None) -> tuple[Mount, ...]:
        found: list[Mount] = []
        cursor: str | None = None
        seen: set[str] = set()
        path = f"{_vm_path(vm_id)}/mounts"
        while True:
            params = {"cursor": cursor, "limit": MAX_PAGE_SIZE, "filesystem_id": filesystem_id}
            page = self._core.parse(ListMountsResponse, await self._call(_LIST_MOUNTS, path, params=params))
            found.extend(page.mounts)
            cursor = self._next_cursor(page.next_cursor, seen, path)
            if cursor is None:
                return tuple(found)

    async def delete_mount(self, vm_id: str, mount_id: str) -> DeleteResult:
        path = f"{_vm_path(vm_id)}/mounts/{_segment(mount_id, 'mount id')}"
        return self._core.parse(DeleteResult, await self._call(_DELETE_MOUNT, path))

    async def wait_mount(
        self,
        vm_id: str,
        mount_id: str,
        *,
        timeout: float = 300.0,
        interval: float = 0.25,
        max_interval: float = 5.0,
    ) -> Mount:
        """Poll until the mount is ``mounted``. ``failed`` raises ``MountFailed`` naming the API's reason;
        running out of ``timeout`` raises ``ArkerWaitTimeout``. The contract has no single-mount GET, so
        this lists the VM's mounts (filtered server-side when possible)."""
        started = time.monotonic()
        waited = 0.0  # sum of requested sleeps: keeps the deadline meaningful under a fake sleep
        delay = interval
        while True:
            mount = next((m for m in await self.list_mounts(vm_id) if m.mount_id == mount_id), None)
            if mount is None:
                raise MountFailed(vm_id, mount_id, "the mount no longer exists")
            if mount.state == "mounted":
                return mount
            if mount.state == "failed":
                raise MountFailed(vm_id, mount_id, mount.state_detail or "no reason given")
            elapsed = max(time.monotonic() - started, waited)
            if elapsed >= timeout:
                raise ArkerWaitTimeout(
                    f"mount {mount_id} on VM {vm_id} still {mount.state or 'attaching'} after {timeout:g} s"
                )
            step = min(delay, max(0.0, timeout - elapsed))
            await self.retry.sleep(step)
            waited += step
            delay = min(max_interval, delay * 2)

    # ── sync: reads ─────────────────────────────────────────────────────────────────────────────────────

    async def sync_manifest(self, vm_id: str, directory: str) -> SyncManifestResponse:
        """Every regular file under ``directory`` (recursive, non-root) with its sha256. ``truncated`` is
        set past the server's entry limit: ask for narrower directories then."""
        body = {"op": "manifest", "path": directory}
        reply = await self._call(_SYNC, f"{_vm_path(vm_id)}/sync", body=body)
        manifest = self._core.parse(SyncManifestResponse, reply)
        if manifest.hash_algo != "sha256":
            raise ArkerProtocolError(
                f"manifest uses hash {manifest.hash_algo!r}, expected sha256", method="POST", path=reply.path
            )
        return manifest

    async def file_digests(self, vm_id: str, paths: Collection[str]) -> dict[str, str | None]:
        """sha256 of each absolute file path in the VM, ``None`` for a missing file. One manifest call per
        parent directory; a file the manifest cannot cover (in ``/``, or a truncated listing) is read."""
        result: dict[str, str | None] = {}
        by_dir: dict[str, list[str]] = {}
        for path in sorted(set(paths)):
            by_dir.setdefault(posixpath.dirname(path), []).append(path)
        for directory, files in sorted(by_dir.items()):
            hashes: dict[str, str] = {}
            complete = False
            if directory not in ("", "/"):
                try:
                    manifest = await self.sync_manifest(vm_id, directory)
                except NotFound:
                    manifest = None
                    complete = True  # no directory, no files
                if manifest is not None:
                    root = manifest.root.rstrip("/") or "/"
                    hashes = {_joined(root, entry.path): entry.hash for entry in manifest.entries}
                    complete = not manifest.truncated
            for path in files:
                if path in hashes:
                    result[path] = hashes[path]
                elif complete:
                    result[path] = None
                else:
                    try:
                        result[path] = _sha256(await self.sync_read(vm_id, path))
                    except NotFound:
                        result[path] = None
        return dict(sorted(result.items()))

    async def sync_read(self, vm_id: str, path: str, *, max_bytes: int = DEFAULT_MAX_READ_BYTES) -> bytes:
        """A file's content: inline for small files, else through the presigned URL the API returns."""
        reply = await self._call(_SYNC, f"{_vm_path(vm_id)}/sync", body={"op": "read", "path": path})
        try:
            answer = _SYNC_READ.validate_json(reply.content, strict=True)
        except ValidationError as exc:
            raise ArkerProtocolError(
                f"sync read response does not match the contract: {describe_validation_error(exc)}",
                method="POST",
                path=reply.path,
                status=reply.status,
            ) from None
        if answer.size > max_bytes:
            raise ArkerProtocolError(
                f"file {path} is {answer.size} bytes, above the {max_bytes}-byte read limit",
                method="POST",
                path=reply.path,
            )
        if isinstance(answer, SyncReadInlineResponse):
            data = self._decode_inline(answer, reply)
        else:
            data = await self._fetch_presigned(answer, max_bytes)
        if len(data) != answer.size:
            raise ArkerProtocolError(
                f"file {path}: got {len(data)} bytes, the API announced {answer.size}",
                method="POST",
                path=reply.path,
            )
        return data

    @staticmethod
    def _decode_inline(answer: SyncReadInlineResponse, reply: Reply) -> bytes:
        if answer.encoding == "utf8":
            return answer.content.encode("utf-8")
        try:
            return base64.b64decode(answer.content, validate=True)
        except (binascii.Error, ValueError):
            raise ArkerProtocolError(
                "sync read content is not valid base64", method="POST", path=reply.path
            ) from None

    def _presigned_target(self, raw_url: str) -> tuple[str, str, bool]:
        """Absolute URL, a log label without the (secret) query, and whether to send our key with it."""
        try:
            url = self._base.join(raw_url)
        except (httpx.InvalidURL, ValueError):
            raise ArkerProtocolError("presigned URL is not a valid URL", method="POST", path="sync") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ArkerProtocolError("presigned URL is not an http(s) URL", method="POST", path="sync")
        # Same origin as the regional API: it already holds our key. Any other host (object storage)
        # gets no Authorization header: the URL's own signature is its credential.
        same_origin = _origin(url) == _origin(self._base)
        return str(url), f"<presigned {url.host}>", same_origin

    async def _fetch_presigned(self, answer: SyncReadPresignedResponse, max_bytes: int) -> bytes:
        method = answer.method.upper() or "GET"
        if method != "GET":
            raise ArkerProtocolError(
                f"presigned read uses unsupported method {method}", method="POST", path="sync"
            )
        url, label, same_origin = self._presigned_target(answer.presigned_url)
        reply = await self._core.request(_PRESIGNED_GET, url, label, authorize=same_origin, cap=max_bytes + 1)
        return reply.content

    # ── sync: writes ────────────────────────────────────────────────────────────────────────────────────

    async def sync_write(
        self,
        vm_id: str,
        files: Mapping[str, bytes],
        *,
        secret: bool | Collection[str] = False,
        presigned_min_bytes: int | None = DEFAULT_PRESIGNED_MIN_BYTES,
    ) -> tuple[WrittenFile, ...]:
        """Write whole files into the VM, in path order, each verified by sha256.

        Small files share requests (up to ``CHUNK_SIZE`` raw bytes, 256 files); a larger file goes in
        ``CHUNK_SIZE`` chunks that share one ``upload_id``; files of ``presigned_min_bytes`` or more use the
        presigned upload + commit path (falling back to chunks where the API does not support it).
        ``secret`` marks contents as secret (``is_secret``) for all files or the named paths. A per-file
        error inside the 200 answer raises the matching typed error with ``file_path`` set.
        """
        secret_paths = set(files) if secret is True else set() if secret is False else set(secret)
        written: list[WrittenFile] = []
        batch: list[tuple[str, bytes, str]] = []
        batch_bytes = 0
        for path in sorted(files):
            data = bytes(files[path])
            digest = _sha256(data)  # once per file: sent with the content and reported as written
            large = presigned_min_bytes is not None and len(data) >= presigned_min_bytes
            if large and await self._write_presigned(vm_id, path, data, digest, path in secret_paths):
                written.append(WrittenFile(path, len(data), digest))
                continue
            if len(data) > CHUNK_SIZE:
                await self._write_chunked(vm_id, path, data, digest, path in secret_paths)
                written.append(WrittenFile(path, len(data), digest))
                continue
            if batch and (batch_bytes + len(data) > CHUNK_SIZE or len(batch) >= _MAX_BATCH_FILES):
                written.extend(await self._write_batch(vm_id, batch, secret_paths))
                batch, batch_bytes = [], 0
            batch.append((path, data, digest))
            batch_bytes += len(data)
        if batch:
            written.extend(await self._write_batch(vm_id, batch, secret_paths))
        return tuple(sorted(written, key=lambda item: item.path))

    @staticmethod
    def _chunk_entry(
        path: str, data: bytes, upload_id: str, start: int, end: int, digest: str, is_secret: bool
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "path": path,
            "size": len(data),
            "upload_id": upload_id,
            "content": base64.b64encode(data[start:end]).decode("ascii"),
            "start": start,
            "end": end,
            "sha256": digest,
        }
        if is_secret:
            entry["is_secret"] = True
        return entry

    async def _write_batch(
        self, vm_id: str, batch: list[tuple[str, bytes, str]], secret_paths: set[str]
    ) -> list[WrittenFile]:
        entries = [
            self._chunk_entry(path, data, _upload_id(), 0, len(data), digest, path in secret_paths)
            for path, data, digest in batch
        ]
        await self._send_chunks(vm_id, entries, final=True)
        return [WrittenFile(path, len(data), digest) for path, data, digest in batch]

    async def _write_chunked(self, vm_id: str, path: str, data: bytes, digest: str, is_secret: bool) -> None:
        upload_id = _upload_id()
        for start in range(0, len(data), CHUNK_SIZE):
            end = min(start + CHUNK_SIZE, len(data))
            entry = self._chunk_entry(path, data, upload_id, start, end, digest, is_secret)
            await self._send_chunks(vm_id, [entry], final=end == len(data))

    async def _send_chunks(self, vm_id: str, entries: list[dict[str, Any]], *, final: bool) -> None:
        """POST chunk entries; per-file transient errors are resent (chunks replay safely), others raise.
        With ``final``, every file must come back complete and written."""
        pending = entries
        retry = 0
        while True:
            reply = await self._call(
                _SYNC, f"{_vm_path(vm_id)}/sync", body={"op": "write", "writes": pending}
            )
            failed: list[dict[str, Any]] = []
            first_error: ArkerAPIError | None = None
            for entry, outcome in zip(pending, self._write_results(reply, len(pending)), strict=True):
                if isinstance(outcome, SyncFileError):
                    error = self._file_error(outcome, entry["path"], reply)
                    failed.append(entry)
                    first_error = first_error or error
                    if not _transient(error):
                        raise error
                    continue
                result = self._result(SyncChunkWriteResult, outcome, reply)
                if final and not (result.complete and result.written):
                    raise ArkerProtocolError(
                        f"file {entry['path']} was not committed after its last chunk "
                        f"(received {result.received_bytes} of {result.size} bytes)",
                        method="POST",
                        path=reply.path,
                    )
            if first_error is None:
                return
            retry += 1
            if retry >= self.retry.max_attempts:
                raise first_error
            await self.retry.sleep(self.retry.delay(retry - 1, first_error.retry_after))
            pending = failed

    async def _write_presigned(
        self, vm_id: str, path: str, data: bytes, digest: str, is_secret: bool
    ) -> bool:
        """Upload through a presigned URL and commit. False when the API does not offer presigned writes."""
        sync_path = f"{_vm_path(vm_id)}/sync"
        request: dict[str, Any] = {"path": path, "size": len(data), "presigned": True}
        if is_secret:
            request["is_secret"] = True
        try:
            reply = await self._call(_SYNC, sync_path, body={"op": "write", "writes": [request]})
        except UnsupportedOperation:
            return False
        (outcome,) = self._write_results(reply, 1)
        if isinstance(outcome, SyncFileError):
            error = self._file_error(outcome, path, reply)
            if isinstance(error, UnsupportedOperation):
                return False
            raise error
        slot = self._result(SyncPresignedWriteRequestResult, outcome, reply)
        if slot.method.upper() not in ("PUT", "POST"):
            raise ArkerProtocolError(
                f"presigned upload uses unsupported method {slot.method}", path=reply.path
            )
        url, label, same_origin = self._presigned_target(slot.presigned_url)
        upload = Operation(_PRESIGNED_PUT.id, slot.method.upper(), False, Replay.SAFE)
        await self._core.request(
            upload,
            url,
            label,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
            authorize=same_origin,
            ok=(200, 201, 204),
        )
        commit = {"path": path, "size": len(data), "upload_id": slot.upload_id, "sha256": digest}
        reply = await self._call(_SYNC, sync_path, body={"op": "write", "writes": [commit]})
        (outcome,) = self._write_results(reply, 1)
        if isinstance(outcome, SyncFileError):
            raise self._file_error(outcome, path, reply)
        result = self._result(SyncCommitWriteResult, outcome, reply)
        if not (result.complete and result.written):
            raise ArkerProtocolError(f"file {path} was not committed", method="POST", path=reply.path)
        return True

    def _write_results(self, reply: Reply, sent: int) -> list[dict[str, Any] | SyncFileError]:
        """One item per entry sent: its per-file error, or the raw result for ``_result`` to validate."""
        answer = self._core.parse(SyncWriteResponse, reply)
        if len(answer.results) != sent:
            raise ArkerProtocolError(
                f"sync write answered {len(answer.results)} results for {sent} entries",
                method="POST",
                path=reply.path,
            )
        outcomes: list[dict[str, Any] | SyncFileError] = []
        for raw in answer.results:
            error = raw.get("error")
            if error is None:
                outcomes.append(raw)
                continue
            try:
                outcomes.append(SyncFileError.model_validate(error, strict=True))
            except ValidationError as exc:
                raise ArkerProtocolError(
                    f"sync write error does not match the contract: {describe_validation_error(exc)}",
                    method="POST",
                    path=reply.path,
                ) from None
        return outcomes

    @staticmethod
    def _result(model: type[ResultT], raw: dict[str, Any], reply: Reply) -> ResultT:
        try:
            return model.model_validate(raw, strict=True)
        except ValidationError as exc:
            raise ArkerProtocolError(
                f"sync write result does not match {model.__name__}: {describe_validation_error(exc)}",
                method="POST",
                path=reply.path,
            ) from None

    def _file_error(self, error: SyncFileError, file_path: str, reply: Reply) -> ArkerAPIError:
        cls = ERROR_CLASSES.get(error.code, UnknownAPIError)
        return cls(
            self._core.scrub(error.message),
            status=reply.status,
            code=error.code,
            method="POST",
            path=reply.path,
            details=error.details,
            recovery=error.recovery,
            file_path=file_path,
        )


def _transient(error: ArkerAPIError) -> bool:
    return isinstance(error, TransientError)


def _upload_id() -> str:
    # Random per upload: a deterministic id could collide with a finished upload of the same content.
    # 128 random bits as 32 hex digits, as ``uuid4().hex`` gave, from a generator seeded by the OS: reading
    # the OS's randomness per file (uuid4) released the GIL, and in a burst of writes each of those could
    # hand the loop's thread over to the state writer's for a switch interval.
    return f"arkerctl-{_UPLOAD_RANDOM.getrandbits(128):032x}"
