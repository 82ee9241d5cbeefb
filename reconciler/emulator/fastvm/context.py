"""The request context handlers receive, and the wrapper turning a handler into a Starlette endpoint.

The wrapper does what every operation shares: a request id, ``X-API-Key`` authentication, reading the
body within a size limit, and rendering :class:`~.errors.ApiError` (or any unexpected exception, as
``internal``) in the envelope. Handlers are synchronous, so each request is atomic on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from .._endpoint import read_body as _read_body
from .._endpoint import wrap_operation
from .auth import Org
from .errors import ApiError, error_response
from .state import FastvmState

__all__ = ["DEFAULT_BODY_LIMIT", "FIREWALL_FORMAT_HEADER", "Ctx", "Handler", "endpoint"]

_log = logging.getLogger("reconciler.emulator.fastvm")

DEFAULT_BODY_LIMIT = 1024 * 1024
# Request header choosing how firewalls are rendered: "reference" (default) or "legacy" (the SDK 0.7 form).
FIREWALL_FORMAT_HEADER = "X-FastVM-Firewall-Format"


@dataclass
class Ctx:
    request: Request
    operation: str
    request_id: str
    state: FastvmState
    org: Org
    body: bytes

    @property
    def params(self) -> Mapping[str, str]:
        return self.request.path_params

    @property
    def query(self) -> QueryParams:
        return self.request.query_params

    @property
    def origin(self) -> str:
        url = self.request.url
        return f"{url.scheme}://{url.netloc}"

    @property
    def legacy_firewall(self) -> bool:
        return (self.request.headers.get(FIREWALL_FORMAT_HEADER) or "").strip().lower() == "legacy"


Handler = Callable[[Ctx], Response]
_NO_ORG = Org("", "")


def endpoint(
    state: FastvmState,
    operation: str,
    handler: Handler,
    *,
    auth: bool = True,
    body_limit: int = DEFAULT_BODY_LIMIT,
) -> Callable[[Request], Awaitable[Response]]:
    def authenticate(request: Request) -> Org:
        return state.orgs.authenticate(request.headers.get("x-api-key")) if auth else _NO_ORG

    def handle(request: Request, request_id: str, org: Org, body: bytes) -> Response:
        with state.lock:
            return handler(Ctx(request, operation, request_id, state, org, body))

    def render(error: ApiError, request: Request, request_id: str) -> Response:
        return error_response(error, request_id)

    return wrap_operation(
        operation,
        authenticate=authenticate,
        handle=handle,
        body_limit=body_limit,
        too_large=_too_large,
        refusal=ApiError,
        render=render,
        internal=_internal,
        log=_log,
    )


async def read_body(request: Request, limit: int) -> bytes:
    return await _read_body(request, limit, _too_large)


def _internal() -> ApiError:
    return ApiError("internal", "An unexpected error occurred.")


def _too_large(limit: int, declared: int | None = None) -> ApiError:
    return ApiError("payload_too_large", "The request body is too large.", details={"maximumBytes": limit})
