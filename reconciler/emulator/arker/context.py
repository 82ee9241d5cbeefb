"""The request context handlers receive, and the wrapper that turns a handler into a Starlette endpoint.

The wrapper does what every operation shares: a request id, authentication, reading the body within the
operation's size limit, and rendering :class:`~.errors.ApiError` (or any unexpected exception, as
``internal``) in the error envelope tagged with the operation id. Handlers are plain synchronous
functions: with no ``await`` between reading and writing state, each request is atomic on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from .._endpoint import wrap_operation
from .auth import Org
from .errors import ApiError, error_response
from .state import ArkerState

__all__ = ["DEFAULT_BODY_LIMIT", "Ctx", "Handler", "endpoint"]

_log = logging.getLogger("reconciler.emulator.arker")

# The contract's example limit for JSON bodies (fork: 1 MiB).
DEFAULT_BODY_LIMIT = 1024 * 1024


@dataclass
class Ctx:
    request: Request
    operation: str
    request_id: str
    state: ArkerState
    org: Org
    body: bytes

    @property
    def params(self) -> Mapping[str, str]:
        return self.request.path_params

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` as the client addressed us (for URLs we hand back)."""
        url = self.request.url
        return f"{url.scheme}://{url.netloc}"

    @property
    def api_base(self) -> str:
        """The base URL the client used: the origin, plus ``/api`` when it came through that prefix."""
        return self.origin + ("/api" if self.request.url.path.startswith("/api/") else "")

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


Handler = Callable[[Ctx], Response]

_NO_ORG = Org("", "")


def endpoint(
    state: ArkerState,
    operation: str,
    handler: Handler,
    *,
    auth: bool = True,
    body_limit: int = DEFAULT_BODY_LIMIT,
) -> Callable[[Request], Awaitable[Response]]:
    def authenticate(request: Request) -> Org:
        return state.orgs.authenticate(request.headers.get("authorization")) if auth else _NO_ORG

    def handle(request: Request, request_id: str, org: Org, body: bytes) -> Response:
        return handler(Ctx(request, operation, request_id, state, org, body))

    def render(error: ApiError, request: Request, request_id: str) -> Response:
        return error_response(error, operation=operation, method=request.method, request_id=request_id)

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


def _internal() -> ApiError:
    return ApiError("internal", "An unexpected error prevented the operation from completing.")


def _too_large(limit: int, declared: int | None) -> ApiError:
    details: dict[str, int] = {"maximum_bytes": limit}
    if declared is not None:
        details["request_bytes"] = declared
    return ApiError(
        "payload_too_large", "The request body exceeds the supported byte limit.", details=details
    )
