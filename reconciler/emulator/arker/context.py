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

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .auth import Org
from .errors import ApiError, error_response, new_request_id
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
    async def run(request: Request) -> Response:
        request_id = new_request_id()
        try:
            org = state.orgs.authenticate(request.headers.get("authorization")) if auth else _NO_ORG
            body = b""
            if request.method in ("POST", "PUT", "PATCH"):
                body = await _read_body(request, body_limit)
            response = handler(Ctx(request, operation, request_id, state, org, body))
        except ApiError as refused:
            return error_response(refused, operation=operation, method=request.method, request_id=request_id)
        except ClientDisconnect:
            # The client went away mid-request (killed, timed out): nobody is left to answer.
            return Response(status_code=499)
        except Exception:
            _log.exception("unexpected error in %s", operation)
            internal = ApiError("internal", "An unexpected error prevented the operation from completing.")
            return error_response(internal, operation=operation, method=request.method, request_id=request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    run.__name__ = operation
    return run


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, int(declared) if declared and declared.isdigit() else None)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int, declared: int | None) -> ApiError:
    details: dict[str, int] = {"maximum_bytes": limit}
    if declared is not None:
        details["request_bytes"] = declared
    return ApiError(
        "payload_too_large", "The request body exceeds the supported byte limit.", details=details
    )
