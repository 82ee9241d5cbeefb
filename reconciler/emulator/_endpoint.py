"""The platform-neutral operation wrapper of the emulators: a Starlette endpoint around a handler.

It does what every operation of every platform shares: a request id, authentication, reading the body
within a size limit, and rendering a refusal (or any unexpected exception, as ``internal``) in the
platform's envelope. Each platform's ``context`` module supplies its context type, how it authenticates,
renders and words its refusals, and calls the handler (synchronously: with no ``await`` between reading
and writing state, each request is atomic on the event loop).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ._envelope import EnvelopeError, new_request_id, set_header

__all__ = ["read_body", "wrap_operation"]

_Org = TypeVar("_Org")
_Refusal = TypeVar("_Refusal", bound=EnvelopeError)

# ``too_large(limit, declared)``: the refusal for a body above ``limit`` bytes (``declared`` is the
# request's Content-Length when it gave a number).
TooLarge = Callable[[int, "int | None"], Exception]


async def read_body(request: Request, limit: int, too_large: TooLarge) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit, int(declared) if declared and declared.isdigit() else None)
        chunks.append(chunk)
    return b"".join(chunks)


def wrap_operation(
    operation: str,
    *,
    authenticate: Callable[[Request], _Org],
    handle: Callable[[Request, str, _Org, bytes], Response],
    body_limit: int,
    too_large: TooLarge,
    refusal: type[_Refusal],
    render: Callable[[_Refusal, Request, str], Response],
    internal: Callable[[], _Refusal],
    log: logging.Logger,
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for ``operation``: ``handle(request, request_id, org, body)`` answers it; a ``refusal``
    it (or authentication, or the body limit) raises is rendered with ``render``."""

    async def run(request: Request) -> Response:
        request_id = new_request_id()
        try:
            org = authenticate(request)
            body = b""
            if request.method in ("POST", "PUT", "PATCH"):
                body = await read_body(request, body_limit, too_large)
            response = handle(request, request_id, org, body)
        except refusal as refused:
            return render(refused, request, request_id)
        except ClientDisconnect:
            # The client went away mid-request (killed, timed out): nobody is left to answer.
            return Response(status_code=499)
        except Exception:
            log.exception("unexpected error in %s", operation)
            return render(internal(), request, request_id)
        set_header(response, "X-Request-Id", request_id)
        return response

    run.__name__ = operation
    return run
