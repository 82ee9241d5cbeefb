"""The platform-neutral part of the emulators' error envelopes: a refusal with a code, message, details,
retry hint and extra headers; JSON responses; request ids.

Each platform's ``errors`` module subclasses :class:`EnvelopeError` with its own code table and renders
the envelope in its own field names (``request_id`` or ``requestId``, ...).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic_core import to_json
from starlette.responses import Response

__all__ = [
    "EnvelopeError",
    "JsonResponse",
    "envelope_headers",
    "json_response",
    "new_request_id",
    "set_header",
]

_JSON = "application/json"
_JSON_TYPE = (b"content-type", _JSON.encode("latin-1"))

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


# Request ids only need to be unique, not secret: a seeded generator spares a system call per request.
_REQUEST_IDS = random.Random()


def new_request_id() -> str:
    return f"req_{_REQUEST_IDS.getrandbits(64):016x}"


class JsonResponse(Response):
    """A JSON response whose headers are built directly when it has none of its own: the same raw
    headers as Starlette's ``Response(content, status, media_type=JSON)``, without its generic scan."""

    media_type = _JSON

    def __init__(self, content: bytes, status: int, headers: Mapping[str, str] | None) -> None:
        self.status_code = status
        self.background = None
        self.body = content
        if headers:
            self.init_headers(headers)
        elif status < 200 or status in (204, 304):
            self.raw_headers = [_JSON_TYPE]
        else:
            self.raw_headers = [(b"content-length", str(len(content)).encode("latin-1")), _JSON_TYPE]


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    # Compact, non-ASCII kept as UTF-8, key order kept: what json.dumps(separators=(",", ":"),
    # ensure_ascii=False) writes (floats may use a shorter exponent form), several times faster.
    return JsonResponse(to_json(payload), status, headers)


def set_header(response: Response, name: str, value: str) -> None:
    """``response.headers[name] = value`` (replace the first, drop later duplicates, else append) on
    the raw header list, without building a ``MutableHeaders`` per response."""
    key = name.lower().encode("latin-1")
    raw = response.raw_headers
    item = (key, value.encode("latin-1"))
    if all(k != key for k, _ in raw):  # the usual case: the header is new
        raw.append(item)
        return
    found = [i for i, (k, _) in enumerate(raw) if k == key]
    for i in reversed(found[1:]):
        del raw[i]
    raw[found[0]] = item


def envelope_headers(error: EnvelopeError, request_id: str) -> dict[str, str]:
    """The refusal's own headers, its ``Retry-After`` hint and the request id."""
    headers = dict(error.headers)
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    headers["X-Request-Id"] = request_id
    return headers
