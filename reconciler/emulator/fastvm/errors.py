"""The FastVM error envelope: ``{"error": {code, message, requestId, details?, retryAfterSeconds?}}``.

The SDK parses no envelope (it keeps the JSON body and classifies by HTTP status), so the envelope is ours;
``docs/fastvm.md`` documents it. Each code has exactly one status. Non-transient refusals carry
``x-should-retry: false``: the vendor SDK otherwise retries every 409 and 429 on its own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import Response

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

_JSON = "application/json"


class ApiError(Exception):
    """A refusal rendered in the envelope."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        retry_after_seconds: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message
        self.details = dict(details) if details is not None else None
        self.retry_after_seconds = retry_after_seconds
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    @classmethod
    def bad_request(cls, message: str, violations: Iterable[tuple[str, str]] = ()) -> ApiError:
        found = [{"field": field or "body", "message": text} for field, text in violations]
        return cls("bad_request", message, details={"violations": found} if found else None)

    @classmethod
    def field(cls, field: str, message: str) -> ApiError:
        return cls.bad_request(f"{field}: {message}", [(field, message)])

    @classmethod
    def not_found(cls, resource: str) -> ApiError:
        return cls("not_found", f"{resource} not found.", details={"resource": resource})

    @classmethod
    def invalid_state(cls, resource: str, status: str, message: str) -> ApiError:
        return cls("invalid_state", message, details={"resource": resource, "status": status})

    @classmethod
    def conflict(cls, resource: str, message: str) -> ApiError:
        return cls("conflict", message, details={"resource": resource})


def new_request_id() -> str:
    return "req_" + secrets.token_hex(8)


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, media_type=_JSON, headers=dict(headers or {}))


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
    headers = dict(error.headers)
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    headers["X-Request-Id"] = request_id
    headers["x-should-retry"] = "true" if error.code in RETRYABLE_CODES else "false"
    return json_response(error_body(error, request_id), error.status, headers)
