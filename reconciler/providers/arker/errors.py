"""Typed errors of the Arker client. The client raises nothing else: no httpx, pydantic or JSON exception
escapes it.

Every class inherits from exactly one of the engine's markers (``TransientError`` / ``PermanentError``), so
the executor can tell "try again later" from "retrying cannot help" without importing this provider::

    ArkerError                                 (OperationError)
     ├── ArkerConfigurationError               [permanent] bad or missing connection settings
     ├── ArkerTransportError                   [transient] no usable HTTP response; ``ambiguous`` says whether
     │    │                                                the server may have done the work anyway
     │    ├── ArkerConnectError                            never reached the server (connect error/timeout,
     │    │                                                pool timeout): the request was NOT processed
     │    ├── ArkerTimeoutError                            sent, but no answer in time: outcome unknown
     │    └── ArkerConnectionLost                          connection dropped or garbled mid-exchange
     ├── ArkerProtocolError                    [permanent] the server broke the contract: bad JSON, wrong
     │    │                                                types, missing fields, unexpected status
     │    └── ArkerResponseTooLarge                        body above the client's size cap
     ├── ArkerWaitTimeout                      [transient] a wait (mount attach, ...) ran out of time
     ├── MountFailed                           [permanent] a mount reached state ``failed`` (``reason``)
     └── ArkerAPIError                                     the API answered with its error envelope (or a
          │                                                per-file error inside a 200 sync result)
          ├── BadRequest                       400 bad_request                      [permanent]
          ├── InsufficientResources            400 insufficient_resources           [permanent]
          ├── Unauthorized                     401 unauthorized                     [permanent]
          ├── PaymentRequired                  402 payment_required                 [permanent]
          ├── Forbidden                        403 forbidden                        [permanent]
          ├── ActionRequired                   403 action_required                  [permanent]
          ├── NotFound                         404 not_found                        [permanent]
          ├── MethodNotAllowed                 405 method_not_allowed               [permanent]
          ├── Conflict                         409 conflict                         [permanent]
          ├── InvalidState                     409 invalid_state                    [permanent]
          ├── AlreadyExists                    409 already_exists                   [permanent]
          ├── IdempotencyConflict              409 idempotency_conflict             [permanent]
          ├── ResourceBusy                     409 resource_busy                    [transient]
          ├── Expired                          410 expired                          [permanent]
          ├── PayloadTooLarge                  413 payload_too_large                [permanent]
          ├── UnsupportedOperation             422 unsupported_operation            [permanent]
          ├── Unrecoverable                    422 unrecoverable                    [permanent]
          ├── OperationFailed                  422 operation_failed                 [permanent]
          ├── RateLimited                      429 rate_limited                     [transient]
          ├── QuotaExceeded                    429 quota_exceeded                   [permanent]
          ├── Internal                         500 internal                         [permanent]
          ├── CapacityUnavailable              503 capacity_unavailable             [transient]
          ├── Unavailable                      503 unavailable                      [transient]
          ├── GatewayTimeout                   504 gateway_timeout                  [transient]
          ├── UnknownAPIError                  any other code/status                [permanent]
          └── UnknownTransientAPIError         any other code with 429/502/503/504  [transient]

The code in the envelope decides the class (the contract: "clients must not parse message text"); the
HTTP status is kept as received. An error status without a readable envelope (a proxy's HTML 502, say) is
classified by its status alone. ``str(error)`` is one line: code, status, method, path (never the query
string, which may carry a presigned token) and the API's message. The API key never appears in it: the
client scrubs it from every server-supplied string before building an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.engine.errors import PermanentError, TransientError
from reconciler.providers.errors_base import (
    ProviderAPIError,
    ProviderError,
    ProviderProtocolError,
    ProviderTransportError,
    classify_api_error,
    one_line,
)

__all__ = [
    "ERROR_CLASSES",
    "ActionRequired",
    "AlreadyExists",
    "ArkerAPIError",
    "ArkerConfigurationError",
    "ArkerConnectError",
    "ArkerConnectionLost",
    "ArkerError",
    "ArkerProtocolError",
    "ArkerResponseTooLarge",
    "ArkerTimeoutError",
    "ArkerTransportError",
    "ArkerWaitTimeout",
    "BadRequest",
    "CapacityUnavailable",
    "Conflict",
    "Expired",
    "Forbidden",
    "GatewayTimeout",
    "IdempotencyConflict",
    "InsufficientResources",
    "Internal",
    "InvalidState",
    "MethodNotAllowed",
    "MountFailed",
    "NotFound",
    "OperationFailed",
    "PayloadTooLarge",
    "PaymentRequired",
    "QuotaExceeded",
    "RateLimited",
    "ResourceBusy",
    "Unauthorized",
    "UnknownAPIError",
    "UnknownTransientAPIError",
    "Unrecoverable",
    "UnsupportedOperation",
    "api_error_class",
]


class ArkerError(ProviderError):
    """Root of every error the Arker client raises. ``method``/``path`` name the request, if there was one."""


class ArkerConfigurationError(ArkerError, PermanentError):
    """Connection settings are missing or unusable (no API key, a malformed URL, plain HTTP off loopback)."""


class ArkerTransportError(ArkerError, ProviderTransportError):
    """No usable HTTP response arrived.

    ``ambiguous`` is True when the request may have reached the server and been acted upon (a read timeout
    or dropped connection after sending a request that is not safe to replay): the caller must look at the
    live state before trying again, since the work may already have happened.
    """


class ArkerConnectError(ArkerTransportError):
    """The connection could not be opened (refused, DNS, TLS, connect or pool timeout): nothing was sent."""


class ArkerTimeoutError(ArkerTransportError):
    """The request was (at least partly) sent but no complete response came back in time."""


class ArkerConnectionLost(ArkerTransportError):
    """The connection broke or the server spoke malformed HTTP after the request was sent."""


class ArkerProtocolError(ArkerError, ProviderProtocolError):
    """The response does not match the contract (malformed JSON, wrong types, missing fields, bad status)."""


class ArkerResponseTooLarge(ArkerProtocolError):
    """The response body exceeded the client's cap; it was not read further."""


class ArkerWaitTimeout(ArkerError, TransientError):
    """A client-side wait for an asynchronous state change gave up."""


class MountFailed(ArkerError, PermanentError):
    """A mount reached state ``failed``; ``reason`` is the API's ``state_detail``."""

    def __init__(self, vm_id: str, mount_id: str, reason: str) -> None:
        self.vm_id = vm_id
        self.mount_id = mount_id
        self.reason = one_line(reason)
        super().__init__(f"mount {mount_id} on VM {vm_id} failed: {self.reason}")


class ArkerAPIError(ArkerError, ProviderAPIError):
    """The API refused the request with a typed error.

    ``status`` is the HTTP status (200 for a per-file error inside a sync result, whose ``file_path`` is set),
    ``code`` the contract's error code, ``request_id`` the correlation id for support, ``retry_after`` the
    server's scheduling hint in seconds (body ``retry_after_seconds`` or the ``Retry-After`` header), and
    ``details``/``recovery`` the code's structured details and the recovery handles, as sent.
    """

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
        recovery: Mapping[str, Any] | None = None,
        file_path: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status=status,
            code=code,
            method=method,
            path=path,
            request_id=request_id,
            retry_after=retry_after,
            details=details,
        )
        self.recovery: dict[str, Any] = dict(recovery or {})
        self.file_path = file_path

    @property
    def work_not_started(self) -> bool:
        """True when the server states the request had no effect (``recovery.work == "not_started"``)."""
        return self.recovery.get("work") == "not_started"

    def _subject(self) -> str:
        return f" for file {self.file_path}" if self.file_path else ""


class BadRequest(ArkerAPIError, PermanentError):
    code = "bad_request"


class InsufficientResources(ArkerAPIError, PermanentError):
    code = "insufficient_resources"


class Unauthorized(ArkerAPIError, PermanentError):
    code = "unauthorized"


class PaymentRequired(ArkerAPIError, PermanentError):
    code = "payment_required"


class Forbidden(ArkerAPIError, PermanentError):
    code = "forbidden"


class ActionRequired(ArkerAPIError, PermanentError):
    code = "action_required"


class NotFound(ArkerAPIError, PermanentError):
    code = "not_found"


class MethodNotAllowed(ArkerAPIError, PermanentError):
    code = "method_not_allowed"


class Conflict(ArkerAPIError, PermanentError):
    code = "conflict"


class InvalidState(ArkerAPIError, PermanentError):
    code = "invalid_state"


class AlreadyExists(ArkerAPIError, PermanentError):
    code = "already_exists"


class IdempotencyConflict(ArkerAPIError, PermanentError):
    code = "idempotency_conflict"


class ResourceBusy(ArkerAPIError, TransientError):
    code = "resource_busy"


class Expired(ArkerAPIError, PermanentError):
    code = "expired"


class PayloadTooLarge(ArkerAPIError, PermanentError):
    code = "payload_too_large"


class UnsupportedOperation(ArkerAPIError, PermanentError):
    code = "unsupported_operation"


class Unrecoverable(ArkerAPIError, PermanentError):
    code = "unrecoverable"


class OperationFailed(ArkerAPIError, PermanentError):
    code = "operation_failed"


class RateLimited(ArkerAPIError, TransientError):
    code = "rate_limited"


class QuotaExceeded(ArkerAPIError, PermanentError):
    code = "quota_exceeded"


class Internal(ArkerAPIError, PermanentError):
    code = "internal"


class CapacityUnavailable(ArkerAPIError, TransientError):
    code = "capacity_unavailable"


class Unavailable(ArkerAPIError, TransientError):
    code = "unavailable"


class GatewayTimeout(ArkerAPIError, TransientError):
    code = "gateway_timeout"


class UnknownAPIError(ArkerAPIError, PermanentError):
    """A code this client does not know (a newer server), or an error status without an envelope."""


class UnknownTransientAPIError(ArkerAPIError, TransientError):
    """Like :class:`UnknownAPIError`, but with a status that signals a passing condition (429/502/503/504)."""


ERROR_CLASSES: Mapping[str, type[ArkerAPIError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        InsufficientResources,
        Unauthorized,
        PaymentRequired,
        Forbidden,
        ActionRequired,
        NotFound,
        MethodNotAllowed,
        Conflict,
        InvalidState,
        AlreadyExists,
        IdempotencyConflict,
        ResourceBusy,
        Expired,
        PayloadTooLarge,
        UnsupportedOperation,
        Unrecoverable,
        OperationFailed,
        RateLimited,
        QuotaExceeded,
        Internal,
        CapacityUnavailable,
        Unavailable,
        GatewayTimeout,
    )
}

# Statuses that carry exactly one contract code, used when an error response has no readable envelope.
# 409/422/429/503 are shared by several codes: the most common one stands in (a bare proxy 429 is a rate
# limit, a bare 503 an outage).
_CODE_BY_STATUS: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "expired",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
    504: "gateway_timeout",
}


def api_error_class(code: str | None, status: int) -> tuple[type[ArkerAPIError], str]:
    """The class and effective code for an error response: by ``code`` when known, else by ``status``."""
    return classify_api_error(
        code,
        status,
        classes=ERROR_CLASSES,
        code_by_status=_CODE_BY_STATUS,
        unknown=UnknownAPIError,
        unknown_transient=UnknownTransientAPIError,
    )
