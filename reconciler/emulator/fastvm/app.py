"""The FastVM platform as a Starlette app: routes from the operation table, the envelope for unknown
routes and methods, the ``/_emulator/*`` extras (stats, reset, staged objects), and the shared fault
layer around everything. The API is served at the root (base URL ``http://HOST:PORT``, like the SDK's
``https://api.fastvm.org``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .._app import (
    EmulatorApp,
    FaultTargetBase,
    allowed_methods,
    control_endpoints,
    dispatcher,
    fault_plan,
)
from ..faults import FaultInjector, FaultKind, FaultPlan
from ..settings import EmulatorSettings
from ..stats import OperationStats
from . import exec as exec_ops
from . import files, meta, quotas, services, snapshots, sshkeys, vms, volumes
from .context import Handler, endpoint
from .errors import ApiError, error_response, new_request_id
from .operations import OPERATIONS, WITHOUT_RATE_LIMIT, OperationMatcher, canonical_operation
from .state import FastvmState

__all__ = ["FastvmFaultTarget", "create_app"]

_HANDLERS: dict[str, tuple[Handler, dict[str, Any]]] = {
    "health": (meta.health, {"auth": False}),
    "listVms": (vms.list_vms, {}),
    "launchVm": (vms.launch_vm, {}),
    "getVm": (vms.get_vm, {}),
    "updateVm": (vms.update_vm, {}),
    "deleteVm": (vms.delete_vm, {}),
    "pauseVm": (vms.pause_vm, {}),
    "resumeVm": (vms.resume_vm, {}),
    "refreshVmTtl": (vms.refresh_ttl, {}),
    "setVmFirewall": (vms.set_firewall, {}),
    "patchVmFirewall": (vms.patch_firewall, {}),
    "consoleToken": (vms.console_token, {}),
    "execVm": (exec_ops.exec_vm, {}),
    "listSshKeys": (sshkeys.list_ssh_keys, {}),
    "addSshKey": (sshkeys.add_ssh_key, {}),
    "deleteSshKey": (sshkeys.delete_ssh_key, {}),
    "listServices": (services.list_services, {}),
    "registerService": (services.register_service, {}),
    "updateService": (services.update_service, {}),
    "deleteService": (services.delete_service, {}),
    "presignFile": (files.presign_file, {}),
    "fetchFile": (files.fetch_file, {}),
    "listVmVolumes": (volumes.list_vm_volumes, {}),
    "attachVolume": (volumes.attach_volume, {}),
    "detachVolume": (volumes.detach_volume, {}),
    "listVolumes": (volumes.list_volumes, {}),
    "createVolume": (volumes.create_volume, {}),
    "getVolume": (volumes.get_volume, {}),
    "updateVolume": (volumes.update_volume, {}),
    "deleteVolume": (volumes.delete_volume, {}),
    "listVolumeAttachments": (volumes.list_volume_attachments, {}),
    "listSnapshots": (snapshots.list_snapshots, {}),
    "createSnapshot": (snapshots.create_snapshot, {}),
    "getSnapshot": (snapshots.get_snapshot, {}),
    "updateSnapshot": (snapshots.update_snapshot, {}),
    "deleteSnapshot": (snapshots.delete_snapshot, {}),
    "getQuotas": (quotas.get_quotas, {}),
    "presignBuildContext": (files.presign_build_context, {}),
    "createBuild": (snapshots.create_build, {}),
    "getBuild": (snapshots.get_build, {}),
}


class FastvmFaultTarget(FaultTargetBase):
    """How the shared fault layer sees the FastVM API: the operation of a request, and FastVM's 429/503."""

    def __init__(self) -> None:
        super().__init__(OperationMatcher(), WITHOUT_RATE_LIMIT)

    def refusal(self, operation: str, kind: FaultKind, retry_after_seconds: int) -> tuple[int, Response]:
        if kind is FaultKind.RATE_LIMITED:
            error = ApiError(
                "rate_limited", "Too many requests; retry later.", retry_after_seconds=retry_after_seconds
            )
        else:
            error = ApiError(
                "unavailable",
                "The service is temporarily unavailable; retry later.",
                retry_after_seconds=retry_after_seconds,
            )
        return error.status, error_response(error, new_request_id())


def _method_not_allowed(request: Request, allowed: list[str]) -> Response:
    error = ApiError(
        "method_not_allowed",
        f"{request.method} is not supported on this route.",
        details={"allowedMethods": allowed},
        headers={"Allow": ", ".join(allowed)},
    )
    return error_response(error, new_request_id())


def _api_routes(state: FastvmState) -> list[BaseRoute]:
    by_path: dict[str, dict[str, Callable[[Request], Any]]] = {}
    for spec in OPERATIONS:
        handler, options = _HANDLERS[spec.operation_id]
        wrapped = endpoint(state, spec.operation_id, handler, **options)
        by_path.setdefault(spec.path, {})[spec.method] = wrapped
    every = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    return [
        Route(path, dispatcher(path, by_method, _method_not_allowed), methods=every)
        for path, by_method in by_path.items()
    ]


def _extra_routes(state: FastvmState, stats: OperationStats, plan: FaultPlan) -> list[BaseRoute]:
    get_stats, post_reset = control_endpoints(state, stats, plan)

    async def get_staged(request: Request) -> Response:
        return files.storage_get(state, request.path_params["token"])

    async def put_staged(request: Request) -> Response:
        return await files.storage_put(state, request.path_params["token"], request)

    return [
        Route("/_emulator/stats", get_stats, methods=["GET"]),
        Route("/_emulator/reset", post_reset, methods=["POST"]),
        Route(f"{files.STORAGE_PREFIX}/{{token}}", get_staged, methods=["GET"]),
        Route(f"{files.STORAGE_PREFIX}/{{token}}", put_staged, methods=["PUT"]),
    ]


async def _unmatched(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405 and isinstance(exc, HTTPException):
        return _method_not_allowed(request, allowed_methods(exc))
    error = ApiError.not_found("route") if status == 404 else ApiError("internal", "Unexpected error.")
    return error_response(error, new_request_id())


def create_app(settings: EmulatorSettings | None = None) -> EmulatorApp:
    """The FastVM emulator as an ASGI app. ``app.state.fastvm`` is the :class:`FastvmState`,
    ``app.state.stats`` the request counters. Raises ValueError for an unknown ``latency_ops`` name or a
    ``db_path`` (this platform keeps its state in memory only)."""
    settings = settings or EmulatorSettings(platform="fastvm")
    if settings.db_path is not None:
        raise ValueError("the FastVM emulator keeps its state in memory only; --db is not supported")
    plan = fault_plan(settings, canonical_operation)
    state = FastvmState(settings)
    stats = OperationStats()
    target = FastvmFaultTarget()
    app = EmulatorApp(
        outer=lambda inner: FaultInjector(inner, target, plan, stats),
        routes=[*_extra_routes(state, stats, plan), *_api_routes(state)],
        exception_handlers={HTTPException: _unmatched},
    )
    app.router.redirect_slashes = False
    app.state.fastvm = state
    app.state.stats = stats
    app.state.settings = settings
    app.state.close = state.close
    return app
