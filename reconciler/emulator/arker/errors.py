"""The Arker error envelope: ``{"error": {code, message, timestamp, request_id, request, details?}}``.

Each code has exactly one HTTP status (the contract's ``x-http-status``); handlers raise :class:`ApiError`
with a code and the operation wrapper renders it with the request's operation id and request id.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .._envelope import EnvelopeError, envelope_headers, json_response, new_request_id
from .clock import now_rfc3339

__all__ = [
    "STATUS_BY_CODE",
    "ApiError",
    "error_body",
    "error_response",
    "json_response",
    "new_request_id",
]

STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "insufficient_resources": 400,
    "unauthorized": 401,
    "payment_required": 402,
    "forbidden": 403,
    "action_required": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "resource_busy": 409,
    "invalid_state": 409,
    "already_exists": 409,
    "idempotency_conflict": 409,
    "expired": 410,
    "payload_too_large": 413,
    "unsupported_operation": 422,
    "unrecoverable": 422,
    "operation_failed": 422,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "internal": 500,
    "capacity_unavailable": 503,
    "unavailable": 503,
    "gateway_timeout": 504,
}


class ApiError(EnvelopeError):
    """An error answered with the contract's envelope. ``details`` is the code's details object."""

    status_by_code = STATUS_BY_CODE

    @classmethod
    def not_found(cls, resource: str, message: str | None = None) -> ApiError:
        return cls(
            "not_found", message or f"The requested {resource} was not found.", details={"resource": resource}
        )

    @classmethod
    def already_exists(cls, resource: str, message: str) -> ApiError:
        return cls("already_exists", message, details={"resource": resource})

    @classmethod
    def invalid_state(cls, kind: str, ident: str | None, requirement: str, message: str) -> ApiError:
        ref: dict[str, Any] = {"kind": kind}
        if ident:
            ref["id"] = ident
        return cls("invalid_state", message, details={"resource": ref, "requirement": requirement})

    @classmethod
    def unauthorized(cls) -> ApiError:
        return cls(
            "unauthorized",
            "Valid authentication credentials are required.",
            headers={"WWW-Authenticate": 'Bearer realm="arker"'},
        )


def error_body(error: ApiError, *, operation: str | None, method: str, request_id: str) -> dict[str, Any]:
    request: dict[str, Any] = (
        {"kind": "matched", "operation_id": operation}
        if operation
        else {"kind": "unmatched", "method": method}
    )
    body: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "timestamp": now_rfc3339(),
        "request_id": request_id,
        "request": request,
    }
    if error.details is not None:
        body["details"] = error.details
    if error.retry_after_seconds is not None:
        body["retry_after_seconds"] = error.retry_after_seconds
    return {"error": body}


def error_response(error: ApiError, *, operation: str | None, method: str, request_id: str) -> Response:
    headers = envelope_headers(error, request_id)
    payload = error_body(error, operation=operation, method=method, request_id=request_id)
    return json_response(payload, error.status, headers)
