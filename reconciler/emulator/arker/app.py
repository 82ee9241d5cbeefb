"""The Arker platform as a Starlette app: routes from the operation table, the error envelope for unknown
routes and methods, the ``/_emulator/*`` extras, and the fault layer around everything.

The API is served under ``/api/v1/...`` (base URL ``http://HOST:PORT/api``, like the contract's server
``https://arker.ai/api``) and, for convenience, under bare ``/v1/...`` too.
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
from . import filesystems, meta, mounts, policies, runs, sync, vms
from .context import Handler, endpoint
from .errors import ApiError, error_response, new_request_id
from .fork import fork
from .operations import API_PREFIXES, OPERATIONS, WITHOUT_RATE_LIMIT, OperationMatcher, canonical_operation
from .state import ArkerState

__all__ = ["ArkerFaultTarget", "EmulatorApp", "create_app"]

_HANDLERS: dict[str, tuple[Handler, dict[str, Any]]] = {
    "health": (meta.health, {"auth": False}),
    "listRegions": (meta.list_regions, {"auth": False}),
    "whoami": (meta.whoami, {}),
    "fork": (fork, {}),
    "listVms": (vms.list_vms, {}),
    "getVm": (vms.get_vm, {}),
    "patchVm": (vms.patch_vm, {}),
    "deleteVm": (vms.delete_vm, {}),
    "getVmPolicies": (policies.get_vm_policies, {}),
    "putVmPolicies": (policies.put_vm_policies, {}),
    "createRun": (runs.create_run, {"body_limit": runs.RUN_BODY_LIMIT}),
    "listRuns": (runs.list_runs, {}),
    "getRun": (runs.get_run, {}),
    "createMount": (mounts.create_mount, {}),
    "listMounts": (mounts.list_mounts, {}),
    "deleteMount": (mounts.delete_mount, {}),
    "sync": (sync.sync, {"body_limit": sync.SYNC_BODY_LIMIT}),
    "listFilesystems": (filesystems.list_filesystems, {}),
    "createFilesystem": (filesystems.create_filesystem, {}),
    "getFilesystem": (filesystems.get_filesystem, {}),
    "deleteFilesystem": (filesystems.delete_filesystem, {}),
}


class ArkerFaultTarget(FaultTargetBase):
    """How the fault layer sees the Arker API: which operation a request is, and Arker's 429/503."""

    def __init__(self) -> None:
        # The contract declares no 429 for these operations: an injected rate limit is a 503 instead.
        super().__init__(OperationMatcher(), WITHOUT_RATE_LIMIT)

    def refusal(self, operation: str, kind: FaultKind, retry_after_seconds: int) -> tuple[int, Response]:
        if kind is FaultKind.RATE_LIMITED:
            error = ApiError(
                "rate_limited",
                "Too many requests; retry after the indicated delay.",
                details={"limiter": "arker"},
                retry_after_seconds=retry_after_seconds,
            )
        else:
            error = ApiError(
                "unavailable",
                "The service is temporarily unavailable; retry after the indicated delay.",
                retry_after_seconds=retry_after_seconds,
            )
        request_id = new_request_id()
        return error.status, error_response(error, operation=operation, method="", request_id=request_id)


def _method_not_allowed(request: Request, allowed: list[str]) -> Response:
    error = ApiError(
        "method_not_allowed",
        f"{request.method} is not supported on this route.",
        details={"allowed_methods": allowed},
        headers={"Allow": ", ".join(allowed)},
    )
    return error_response(error, operation=None, method=request.method, request_id=new_request_id())


def _api_routes(state: ArkerState) -> list[BaseRoute]:
    by_path: dict[str, dict[str, Callable[[Request], Any]]] = {}
    for spec in OPERATIONS:
        handler, options = _HANDLERS[spec.operation_id]
        by_path.setdefault(spec.path, {})[spec.method] = endpoint(
            state, spec.operation_id, handler, **options
        )
    routes: list[BaseRoute] = []
    for prefix in API_PREFIXES:
        for path, by_method in by_path.items():
            methods = [*by_method, "PUT", "POST", "PATCH", "DELETE", "GET", "HEAD", "OPTIONS"]
            routes.append(
                Route(
                    prefix + path,
                    dispatcher(path, by_method, _method_not_allowed),
                    methods=sorted(set(methods)),
                )
            )
    return routes


def _extra_routes(state: ArkerState, stats: OperationStats, plan: FaultPlan) -> list[BaseRoute]:
    get_stats, post_reset = control_endpoints(state, stats, plan)

    async def get_presigned(request: Request) -> Response:
        return sync.presigned_get(state, request.path_params["token"])

    async def put_presigned(request: Request) -> Response:
        return await sync.presigned_put(state, request.path_params["token"], request)

    routes: list[BaseRoute] = [
        Route(f"{sync.PRESIGNED_PREFIX}/uploads/{{token}}", put_presigned, methods=["PUT"]),
        Route(f"{sync.PRESIGNED_PREFIX}/{{token}}", get_presigned, methods=["GET"]),
    ]
    for prefix in API_PREFIXES:  # also reachable as $ARKER_BASE_URL/_emulator/...
        routes.append(Route(f"{prefix}/_emulator/stats", get_stats, methods=["GET"]))
        routes.append(Route(f"{prefix}/_emulator/reset", post_reset, methods=["POST"]))
    return routes


async def _unmatched(request: Request, exc: Exception) -> Response:
    """Unknown routes (404 ``not_found``/route) and methods (405), tagged as unmatched requests."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405 and isinstance(exc, HTTPException):
        return _method_not_allowed(request, allowed_methods(exc))
    if status == 404:
        error = ApiError.not_found("route", "No such route.")
    else:
        error = ApiError("internal", "An unexpected error occurred.")
    return error_response(error, operation=None, method=request.method, request_id=new_request_id())


def create_app(settings: EmulatorSettings | None = None) -> EmulatorApp:
    """The Arker emulator as an ASGI app (mount it with ``httpx.ASGITransport`` or serve it with uvicorn).

    ``app.state.arker`` is the :class:`ArkerState`, ``app.state.stats`` the request counters; call
    ``app.state.arker.close()`` when done with a ``--db`` backed app. Raises ValueError for an unknown
    operation name in ``settings.latency_ops``.
    """
    settings = settings or EmulatorSettings()
    plan = fault_plan(settings, canonical_operation)
    state = ArkerState(settings)
    stats = OperationStats()
    target = ArkerFaultTarget()
    app = EmulatorApp(
        outer=lambda inner: FaultInjector(inner, target, plan, stats),
        routes=[*_extra_routes(state, stats, plan), *_api_routes(state)],
        exception_handlers={HTTPException: _unmatched},
    )
    # A trailing slash is an unknown route (404 envelope), not a redirect.
    app.router.redirect_slashes = False
    app.state.arker = state
    app.state.stats = stats
    app.state.settings = settings
    app.state.close = state.close
    return app
