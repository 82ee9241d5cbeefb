"""The platform-neutral part of the emulators' error envelopes: a refusal with a code, message, details,
retry hint and extra headers; JSON responses; request ids.

Each platform's ``errors`` module subclasses :class:`EnvelopeError` with its own code table and renders
the envelope in its own field names (``request_id`` or ``requestId``, ...).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from starlette.responses import Response

__all__ = ["EnvelopeError", "envelope_headers", "json_response", "new_request_id"]

_JSON = "application/json"

_E = TypeVar("_E", bound="EnvelopeError")


class EnvelopeError(Exception):
    """A refusal rendered in the envelope. ``status_by_code`` is the platform's code table (one status a
    code); ``details`` is the code's details object."""

    status_by_code: ClassVar[Mapping[str, int]]

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
        if code not in self.status_by_code:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message
        self.details = dict(details) if details is not None else None
        self.retry_after_seconds = retry_after_seconds
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return self.status_by_code[self.code]

    # --- constructors for the common cases ------------------------------------------------------

    @classmethod
    def bad_request(cls: type[_E], message: str, violations: Iterable[tuple[str, str]] = ()) -> _E:
        found = [{"field": field or "body", "message": text} for field, text in violations]
        return cls("bad_request", message, details={"violations": found} if found else None)

    @classmethod
    def field(cls: type[_E], field: str, message: str) -> _E:
        """A bad_request naming one offending request field."""
        return cls.bad_request(f"{field}: {message}", [(field, message)])

    @classmethod
    def conflict(cls: type[_E], resource: str, message: str) -> _E:
        return cls("conflict", message, details={"resource": resource})


def new_request_id() -> str:
    return "req_" + secrets.token_hex(8)


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, media_type=_JSON, headers=dict(headers or {}))


def envelope_headers(error: EnvelopeError, request_id: str) -> dict[str, str]:
    """The refusal's own headers, its ``Retry-After`` hint and the request id."""
    headers = dict(error.headers)
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    headers["X-Request-Id"] = request_id
    return headers
