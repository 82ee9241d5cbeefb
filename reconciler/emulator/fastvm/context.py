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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .auth import Org
from .errors import ApiError, error_response, new_request_id
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
    async def run(request: Request) -> Response:
        request_id = new_request_id()
        try:
            org = state.orgs.authenticate(request.headers.get("x-api-key")) if auth else _NO_ORG
            body = b""
            if request.method in ("POST", "PUT", "PATCH"):
                body = await read_body(request, body_limit)
            with state.lock:
                response = handler(Ctx(request, operation, request_id, state, org, body))
        except ApiError as refused:
            return error_response(refused, request_id)
        except ClientDisconnect:
            # The client went away mid-request (killed, timed out): nobody is left to answer.
            return Response(status_code=499)
        except Exception:
            _log.exception("unexpected error in %s", operation)
            return error_response(ApiError("internal", "An unexpected error occurred."), request_id)
        response.headers["X-Request-Id"] = request_id
        return response

    run.__name__ = operation
    return run


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError("payload_too_large", "The request body is too large.", details={"maximumBytes": limit})
