"""Typed async client of the FastVM API (the reference model; see ``docs/fastvm.md``).

One ``httpx.AsyncClient`` (transport injectable: sockets, ``httpx.MockTransport`` or ``httpx.ASGITransport``
over the emulator) serves every call. Errors are the typed tree of ``errors.py``; retries follow
``retry.py``. The key goes in an ``X-API-Key`` header on API requests only, so presigned storage URLs on
another host never see it; redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from reconciler.providers._http_core import ClientLifecycle, open_exchange

from ._http import CallStats, HttpCore, Operation, Reply
from .connection import FastvmSettings
from .errors import (
    FastvmProtocolError,
    FastvmTransportError,
    FastvmWaitTimeout,
    VmLaunchFailed,
    VolumeMountFailed,
)
from .retry import Replay, RetryPolicy
from .wire import (
    DeleteResult,
    ExecResult,
    Firewall,
    LaunchRequest,
    OrgQuotas,
    PresignedUrls,
    Service,
    Snapshot,
    SshKey,
    Vm,
    VmUpdate,
    Volume,
    VolumeAttachment,
)

__all__ = ["TERMINAL_FAILURE_STATUSES", "FastvmClient"]

T = TypeVar("T")
TERMINAL_FAILURE_STATUSES = frozenset({"error", "stopped", "deleting"})
_USER_AGENT = "arkerctl/0.1 (python-httpx)"
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_S, _U = Replay.SAFE, Replay.UNSAFE
_OPS = {
    op.id: op
    for op in (
        Operation("health", "GET", _S),
        Operation("listVms", "GET", _S),
        Operation("launchVm", "POST", _U),
        Operation("getVm", "GET", _S),
        Operation("updateVm", "PATCH", _S),
        Operation("deleteVm", "DELETE", _S),
        Operation("pauseVm", "POST", _S),
        Operation("resumeVm", "POST", _S),
        Operation("refreshVmTtl", "POST", _S),
        Operation("setVmFirewall", "PUT", _S),
        Operation("patchVmFirewall", "PATCH", _S),
        Operation("execVm", "POST", _U),
        Operation("listSshKeys", "GET", _S),
        Operation("addSshKey", "POST", _S),
        Operation("deleteSshKey", "DELETE", _S),
        Operation("listServices", "GET", _S),
        Operation("registerService", "POST", _S),
        Operation("updateService", "PUT", _S),
        Operation("deleteService", "DELETE", _S),
        Operation("presignFile", "POST", _S),
        Operation("fetchFile", "POST", _S),
        Operation("uploadStaged", "PUT", _S),
        Operation("listVmVolumes", "GET", _S),
        Operation("attachVolume", "POST", _S),
        Operation("detachVolume", "DELETE", _S),
        Operation("listVolumes", "GET", _S),
        Operation("createVolume", "POST", _U),
        Operation("getVolume", "GET", _S),
        Operation("updateVolume", "PATCH", _S),
        Operation("deleteVolume", "DELETE", _S),
        Operation("listSnapshots", "GET", _S),
        Operation("createSnapshot", "POST", _U),
        Operation("getQuotas", "GET", _S),
    )
}

_VM = TypeAdapter(Vm)
_VMS = TypeAdapter(tuple[Vm, ...])
_SERVICE = TypeAdapter(Service)
_SERVICES = TypeAdapter(tuple[Service, ...])
_KEY = TypeAdapter(SshKey)
_KEYS = TypeAdapter(tuple[SshKey, ...])
_VOLUME = TypeAdapter(Volume)
_VOLUMES = TypeAdapter(tuple[Volume, ...])
_ATTACHMENT = TypeAdapter(VolumeAttachment)
_ATTACHMENTS = TypeAdapter(tuple[VolumeAttachment, ...])
_SNAPSHOT = TypeAdapter(Snapshot)
_SNAPSHOTS = TypeAdapter(tuple[Snapshot, ...])
_DELETED = TypeAdapter(DeleteResult)
_EXEC = TypeAdapter(ExecResult)
_PRESIGNED = TypeAdapter(PresignedUrls)
_QUOTAS = TypeAdapter(OrgQuotas)
_HEALTH = TypeAdapter(dict[str, Any])


def _segment(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} must not be empty")
    return quote(value, safe="")


def _vm(vm_id: str) -> str:
    return f"/v1/vms/{_segment(vm_id, 'VM id')}"


def _volume(volume_id: str) -> str:
    return f"/v1/volumes/{_segment(volume_id, 'volume id')}"


class FastvmClient(ClientLifecycle):
    """Async FastVM client: ``async with FastvmClient(settings) as client: ...``.

    Every method raises only ``FastvmError`` subclasses, except ``ValueError`` for arguments that can never
    be valid (an empty id). ``stats`` counts HTTP requests per operation id. ``clock``/``sleep`` drive the
    ``wait_*`` polls (injectable for tests).
    """

    _core: HttpCore

    def __init__(
        self,
        settings: FastvmSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 30.0,
        max_connections: int = 64,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.settings = settings
        exchange = open_exchange(
            transport=transport, timeout=timeout, max_connections=max_connections, user_agent=_USER_AGENT
        )
        self._core = HttpCore(
            exchange,
            api_key=settings.api_key.get_secret_value(),
            retry=retry or RetryPolicy(),
            max_response_bytes=max_response_bytes,
        )

    def __repr__(self) -> str:
        return f"FastvmClient(base_url={self.settings.base_url!r})"

    @property
    def stats(self) -> CallStats:
        return self._core.stats

    def warm(self, connections: int) -> None:
        """Open up to ``connections`` to the API in the background, ahead of a burst of calls."""
        self._core.exchange.warm(self.settings.base_url, connections)

    # ── plumbing ────────────────────────────────────────────────────────────────────────────────────────

    async def _call(
        self,
        operation_id: str,
        path: str,
        *,
        params: tuple[tuple[str, str], ...] | None = None,
        body: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        done_on_retry: tuple[int, ...] = (),
        replay: Replay | None = None,
    ) -> Reply:
        url = self.settings.base_url + path
        return await self._core.request(
            _OPS[operation_id],
            url,
            path,
            params=params,
            body=body,
            ok=ok,
            done_on_retry=done_on_retry,
            replay=replay,
        )

    async def _get(self, adapter: TypeAdapter[T], operation_id: str, path: str, **kwargs: Any) -> T:
        return self._core.parse(adapter, await self._call(operation_id, path, **kwargs))

    # ── service ─────────────────────────────────────────────────────────────────────────────────────────

    async def health(self) -> str:
        """The ``status`` of ``GET /healthz`` (``"ok"`` when healthy)."""
        document = await self._get(_HEALTH, "health", "/healthz")
        status = document.get("status")
        return status if isinstance(status, str) else "unknown"

    async def quotas(self) -> OrgQuotas:
        return await self._get(_QUOTAS, "getQuotas", "/v1/org/quotas")

    # ── VMs ─────────────────────────────────────────────────────────────────────────────────────────────

    async def list_vms(
        self, *, status: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> tuple[Vm, ...]:
        """The org's VMs, optionally only those with ``status`` and every ``metadata`` key equal to its value
        (how a VM is found again after a launch whose response was lost)."""
        params = [("status", status)] if status is not None else []
        params += [(f"metadata.{key}", value) for key, value in sorted((metadata or {}).items())]
        return await self._get(_VMS, "listVms", "/v1/vms", params=tuple(params))

    async def launch_vm(self, request: LaunchRequest) -> Vm:
        """Launch (201 running or 202 queued). Not retried after an ambiguous failure: find the VM with
        ``list_vms(metadata=...)`` instead of launching a duplicate."""
        if request.machine_type is None and request.snapshot_id is None:
            raise ValueError("a launch needs machine_type unless it restores snapshot_id")
        return await self._get(_VM, "launchVm", "/v1/vms", body=request.to_wire(), ok=(201, 202))

    async def get_vm(self, vm_id: str) -> Vm:
        return await self._get(_VM, "getVm", _vm(vm_id))

    async def update_vm(self, vm_id: str, update: VmUpdate) -> Vm:
        return await self._get(_VM, "updateVm", _vm(vm_id), body=update.to_wire())

    async def delete_vm(self, vm_id: str) -> None:
        """Delete; a retry that finds the VM already gone counts as done."""
        await self._call("deleteVm", _vm(vm_id), done_on_retry=(404,))

    async def pause_vm(self, vm_id: str) -> Vm:
        return await self._get(_VM, "pauseVm", f"{_vm(vm_id)}/pause")

    async def resume_vm(self, vm_id: str) -> Vm:
        return await self._get(_VM, "resumeVm", f"{_vm(vm_id)}/resume", ok=(200, 202))

    async def refresh_ttl(self, vm_id: str) -> Vm:
        return await self._get(_VM, "refreshVmTtl", f"{_vm(vm_id)}/ttl/refresh")

    async def set_firewall(self, vm_id: str, firewall: Firewall) -> Vm:
        """Replace the whole firewall (all three axes)."""
        return await self._get(_VM, "setVmFirewall", f"{_vm(vm_id)}/firewall", body=firewall.to_wire())

    async def patch_firewall(self, vm_id: str, axes: Mapping[str, Any]) -> Vm:
        """Replace only the axes given (``{"egress": {...}}``); values are the reference JSON shapes."""
        unknown = set(axes) - {"ingress", "egress", "dns"}
        if unknown:
            raise ValueError(f"unknown firewall axes: {sorted(unknown)}")
        return await self._get(_VM, "patchVmFirewall", f"{_vm(vm_id)}/firewall", body=dict(axes))

    async def wait_running(self, vm_id: str, timeout: float, *, poll_interval: float = 0.5) -> Vm:
        """Poll until ``running``; ``VmLaunchFailed`` on error/stopped/deleting, ``FastvmWaitTimeout`` after
        ``timeout`` seconds. Unknown statuses count as still in transition."""
        deadline = time.monotonic() + timeout
        while True:
            vm = await self.get_vm(vm_id)
            if vm.status == "running":
                return vm
            if vm.status in TERMINAL_FAILURE_STATUSES:
                raise VmLaunchFailed(vm_id, vm.status)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FastvmWaitTimeout(
                    f"VM {vm_id} not running after {timeout:g}s (status {vm.status!r})", last_status=vm.status
                )
            await asyncio.sleep(min(poll_interval, remaining))

    # ── SSH keys, services ──────────────────────────────────────────────────────────────────────────────

    async def list_ssh_keys(self, vm_id: str) -> tuple[SshKey, ...]:
        return await self._get(_KEYS, "listSshKeys", f"{_vm(vm_id)}/ssh-keys")

    async def add_ssh_key(self, vm_id: str, public_key: str) -> SshKey:
        body = {"publicKey": public_key}
        return await self._get(_KEY, "addSshKey", f"{_vm(vm_id)}/ssh-keys", body=body, ok=(200, 201))

    async def delete_ssh_key(self, vm_id: str, fingerprint: str) -> None:
        path = f"{_vm(vm_id)}/ssh-keys/{_segment(fingerprint, 'fingerprint')}"
        await self._call("deleteSshKey", path, ok=(204,), done_on_retry=(404,))

    async def list_services(self, vm_id: str) -> tuple[Service, ...]:
        return await self._get(_SERVICES, "listServices", f"{_vm(vm_id)}/services")

    async def register_service(self, vm_id: str, name: str, port: int, *, h2c: bool = False) -> Service:
        body = {"name": name, "port": port, "h2c": h2c}
        return await self._get(_SERVICE, "registerService", f"{_vm(vm_id)}/services", body=body, ok=(201,))

    async def put_service(self, vm_id: str, name: str, port: int, *, h2c: bool = False) -> Service:
        path = f"{_vm(vm_id)}/services/{_segment(name, 'service name')}"
        return await self._get(_SERVICE, "updateService", path, body={"port": port, "h2c": h2c})

    async def delete_service(self, vm_id: str, name: str) -> None:
        await self._call(
            "deleteService", f"{_vm(vm_id)}/services/{_segment(name, 'service name')}", ok=(204,)
        )

    # ── files ───────────────────────────────────────────────────────────────────────────────────────────

    async def write_file(self, vm_id: str, path: str, data: bytes, *, timeout_sec: int | None = None) -> str:
        """Write ``data`` to ``path`` in the VM (presign, upload, fetch); returns its sha256 hex digest."""
        presigned = await self._get(
            _PRESIGNED, "presignFile", f"{_vm(vm_id)}/files/presign", body={"path": path}
        )
        if len(data) > presigned.max_upload_bytes:
            raise ValueError(
                f"{len(data)} bytes exceed the VM's upload limit of {presigned.max_upload_bytes}"
            )
        await self._upload(presigned.upload_url, data)
        body: dict[str, Any] = {"path": path, "url": presigned.download_url}
        if timeout_sec is not None:
            body["timeoutSec"] = timeout_sec
        result = await self._get(_EXEC, "fetchFile", f"{_vm(vm_id)}/files/fetch", body=body)
        if result.exit_code != 0:
            raise FastvmProtocolError(
                f"fetching into {path} exited {result.exit_code}: {result.stderr.strip()[:200]}",
                method="POST",
                path=f"{_vm(vm_id)}/files/fetch",
            )
        return hashlib.sha256(data).hexdigest()

    async def _upload(self, url: str, data: bytes) -> None:
        # A presigned URL on the storage host: no API key, and its query string (the signature) never logged.
        core = self._core
        operation = _OPS["uploadStaged"]
        log_path = httpx.URL(url).path
        attempt = 0
        while True:
            attempt += 1
            try:
                reply = await core.send_once(
                    operation,
                    url,
                    log_path,
                    params=None,
                    content=data,
                    headers={"Content-Type": "application/octet-stream"},
                    attempt=attempt,
                )
            except Exception as exc:
                if attempt >= core.retry.max_attempts or not _retryable_upload(exc):
                    raise
                await core.retry.sleep(core.retry.delay(attempt - 1, None))
                continue
            if 200 <= reply.status < 300:
                return
            error = core.error_for(reply)
            if attempt >= core.retry.max_attempts or reply.status < 500:
                raise error
            await core.retry.sleep(core.retry.delay(attempt - 1, None))

    async def file_sha256(self, vm_id: str, path: str) -> str | None:
        """The sha256 hex digest of a file in the VM (``sha256sum`` in the guest), None if it is missing."""
        body = {"command": ["sha256sum", path]}
        result = await self._get(_EXEC, "execVm", f"{_vm(vm_id)}/exec", body=body, replay=Replay.SAFE)
        if result.exit_code != 0:
            if "No such file" in result.stderr:
                return None
            raise FastvmProtocolError(
                f"sha256sum exited {result.exit_code}: {result.stderr.strip()[:200]}",
                method="POST",
                path=f"{_vm(vm_id)}/exec",
            )
        digest = result.stdout.split(maxsplit=1)[0] if result.stdout.strip() else ""
        if len(digest) != 64:
            raise FastvmProtocolError("sha256sum printed no digest", method="POST", path=f"{_vm(vm_id)}/exec")
        return digest

    async def exec(self, vm_id: str, command: list[str], *, timeout_sec: int | None = None) -> ExecResult:
        """Run ``command`` in the VM. Never replayed after an ambiguous failure: it could run twice."""
        body: dict[str, Any] = {"command": command}
        if timeout_sec is not None:
            body["timeoutSec"] = timeout_sec
        return await self._get(_EXEC, "execVm", f"{_vm(vm_id)}/exec", body=body)

    # ── volumes ─────────────────────────────────────────────────────────────────────────────────────────

    async def list_volumes(self) -> tuple[Volume, ...]:
        return await self._get(_VOLUMES, "listVolumes", "/v1/volumes")

    async def create_volume(self, name: str, size_gib: int, *, access_mode: str = "rw") -> Volume:
        """Create (not replayed after an ambiguous failure: look the volume up by name instead)."""
        body = {"name": name, "sizeGiB": size_gib, "accessMode": access_mode}
        return await self._get(_VOLUME, "createVolume", "/v1/volumes", body=body, ok=(201,))

    async def get_volume(self, volume_id: str) -> Volume:
        return await self._get(_VOLUME, "getVolume", _volume(volume_id))

    async def update_volume(
        self, volume_id: str, *, name: str | None = None, size_gib: int | None = None
    ) -> Volume:
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if size_gib is not None:
            body["sizeGiB"] = size_gib
        if not body:
            raise ValueError("update_volume needs name or size_gib")
        return await self._get(_VOLUME, "updateVolume", _volume(volume_id), body=body)

    async def delete_volume(self, volume_id: str) -> None:
        await self._call("deleteVolume", _volume(volume_id), done_on_retry=(404,))

    async def list_attachments(self, vm_id: str) -> tuple[VolumeAttachment, ...]:
        return await self._get(_ATTACHMENTS, "listVmVolumes", f"{_vm(vm_id)}/volumes")

    async def attach_volume(
        self, vm_id: str, volume_id: str, mount_path: str, *, read_only: bool = False
    ) -> VolumeAttachment:
        body = {"volumeId": volume_id, "mountPath": mount_path, "readOnly": read_only}
        return await self._get(
            _ATTACHMENT, "attachVolume", f"{_vm(vm_id)}/volumes", body=body, ok=(200, 201, 202)
        )

    async def detach_volume(self, vm_id: str, volume_id: str) -> None:
        path = f"{_vm(vm_id)}/volumes/{_segment(volume_id, 'volume id')}"
        await self._call("detachVolume", path, ok=(204,), done_on_retry=(404,))

    async def wait_mounted(
        self, vm_id: str, volume_id: str, timeout: float, *, poll_interval: float = 0.2
    ) -> VolumeAttachment:
        """Poll until the attachment is ``mounted``; ``VolumeMountFailed`` if it fails,
        ``FastvmWaitTimeout`` after ``timeout`` seconds (also if the attachment disappears meanwhile)."""
        deadline = time.monotonic() + timeout
        last = "missing"
        while True:
            found = [a for a in await self.list_attachments(vm_id) if a.volume_id == volume_id]
            if found:
                attachment = found[0]
                last = attachment.mount_status
                if last == "mounted":
                    return attachment
                if last == "failed":
                    raise VolumeMountFailed(vm_id, volume_id, attachment.mount_error or "no reason given")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FastvmWaitTimeout(
                    f"volume {volume_id} on VM {vm_id} not mounted after {timeout:g}s (status {last!r})",
                    last_status=last,
                )
            await asyncio.sleep(min(poll_interval, remaining))

    # ── snapshots ───────────────────────────────────────────────────────────────────────────────────────

    async def list_snapshots(self) -> tuple[Snapshot, ...]:
        return await self._get(_SNAPSHOTS, "listSnapshots", "/v1/snapshots")

    async def create_snapshot(self, vm_id: str, name: str | None = None) -> Snapshot:
        body: dict[str, Any] = {"vmId": vm_id}
        if name is not None:
            body["name"] = name
        return await self._get(_SNAPSHOT, "createSnapshot", "/v1/snapshots", body=body, ok=(201,))


def _retryable_upload(exc: Exception) -> bool:
    return isinstance(exc, FastvmTransportError)
