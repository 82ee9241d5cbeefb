"""The platform-neutral part of the provider error trees: one root with the request's method and path, a
transport failure that may be ``ambiguous``, a protocol breach with its status, an API refusal with its
envelope fields, and the code-then-status classification of error responses.

Each platform keeps its own tree (``ArkerError``, ``FastvmError``, ...) whose classes inherit these bases
and the engine's ``TransientError`` / ``PermanentError`` markers; what differs (the codes, which are
transient, extra envelope fields, the request-id label) stays in the platform module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from reconciler.engine.errors import OperationError, PermanentError, TransientError

__all__ = [
    "TRANSIENT_STATUSES",
    "ProviderAPIError",
    "ProviderError",
    "ProviderProtocolError",
    "ProviderTransportError",
    "classify_api_error",
    "one_line",
]


def one_line(text: str, limit: int = 500) -> str:
    """Collapse whitespace (a message must not forge extra log lines) and bound the length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ProviderError(OperationError):
    """Root of a provider's error tree. ``method``/``path`` name the request, if there was one."""

    def __init__(self, message: str, *, method: str | None = None, path: str | None = None) -> None:
        self.message = one_line(message)
        self.method = method
        self.path = path
        super().__init__(self.message)

    def _where(self) -> str:
        return f" on {self.method} {self.path}" if self.method and self.path else ""

    def __str__(self) -> str:
        return f"{self.message}{self._where()}"


class ProviderTransportError(ProviderError, TransientError):
    """No usable HTTP response arrived; ``ambiguous``: the request may have been processed anyway."""

    def __init__(
        self, message: str, *, method: str | None = None, path: str | None = None, ambiguous: bool = False
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        suffix = " (outcome unknown: the request may have been processed)" if self.ambiguous else ""
        return f"transport error{self._where()}: {self.message}{suffix}"


class ProviderProtocolError(ProviderError, PermanentError):
    """The response does not match the contract; ``status`` is the HTTP status when there was one."""

    def __init__(
        self, message: str, *, method: str | None = None, path: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"protocol error{self._where()}{status}: {self.message}"


class ProviderAPIError(ProviderError):
    """The API refused the request with its error envelope: ``status``, ``code``, ``request_id``,
    ``retry_after`` (seconds) and ``details``, as sent."""

    code: str = "unknown"
    # Set by a retry loop when an earlier attempt of the same request was sent and its answer lost: the
    # request may have been carried out even though this (last) answer refuses it.
    ambiguous: bool = False
    # How the request id is labelled in ``str()``: each platform uses its own envelope's field name.
    _request_id_label: ClassVar[str] = "request_id"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status
        if code is not None:
            self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.details: dict[str, Any] = dict(details or {})

    def _subject(self) -> str:
        """What the refusal is about, past the request itself (nothing by default)."""
        return ""

    def __str__(self) -> str:
        request_id = f" [{self._request_id_label}={self.request_id}]" if self.request_id else ""
        return f"{self.code} (HTTP {self.status}){self._where()}{self._subject()}: {self.message}{request_id}"


# Statuses that signal a passing condition when the code is unknown or missing.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})

_E = TypeVar("_E", bound=ProviderAPIError)


def classify_api_error(
    code: str | None,
    status: int,
    *,
    classes: Mapping[str, type[_E]],
    code_by_status: Mapping[int, str],
    unknown: type[_E],
    unknown_transient: type[_E],
) -> tuple[type[_E], str]:
    """The class and effective code for an error response: by ``code`` when known, else by ``status``."""
    if code is not None and code in classes:
        return classes[code], code
    if code is None and status in code_by_status:
        inferred = code_by_status[status]
        return classes[inferred], inferred
    fallback = unknown_transient if status in TRANSIENT_STATUSES else unknown
    return fallback, code or f"http_{status}"
