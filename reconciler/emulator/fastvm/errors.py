"""The FastVM error envelope: ``{"error": {code, message, requestId, details?, retryAfterSeconds?}}``.

The SDK parses no envelope (it keeps the JSON body and classifies by HTTP status), so the envelope is ours;
``docs/fastvm.md`` documents it. Each code has exactly one status. Non-transient refusals carry
``x-should-retry: false``: the vendor SDK otherwise retries every 409 and 429 on its own.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .._envelope import EnvelopeError, envelope_headers, json_response, new_request_id

__all__ = ["STATUS_BY_CODE", "ApiError", "error_response", "json_response", "new_request_id"]

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "invalid_state": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "internal": 500,
    "unavailable": 503,
}

# Codes a client may retry as they are; every other code is answered with x-should-retry: false.
RETRYABLE_CODES = frozenset({"rate_limited", "internal", "unavailable"})


class ApiError(EnvelopeError):
    """A refusal rendered in the envelope."""

    status_by_code = STATUS_BY_CODE

    @classmethod
    def not_found(cls, resource: str) -> ApiError:
        return cls("not_found", f"{resource} not found.", details={"resource": resource})

    @classmethod
    def invalid_state(cls, resource: str, status: str, message: str) -> ApiError:
        return cls("invalid_state", message, details={"resource": resource, "status": status})


def no_content() -> Response:
    return Response(status_code=204)


def error_body(error: ApiError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message, "requestId": request_id}
    if error.details is not None:
        body["details"] = error.details
    if error.retry_after_seconds is not None:
        body["retryAfterSeconds"] = error.retry_after_seconds
    return {"error": body}


def error_response(error: ApiError, request_id: str) -> Response:
    headers = envelope_headers(error, request_id)
    headers["x-should-retry"] = "true" if error.code in RETRYABLE_CODES else "false"
    return json_response(error_body(error, request_id), error.status, headers)
