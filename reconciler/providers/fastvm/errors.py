"""Typed errors of the FastVM client. The client raises nothing else: no httpx, pydantic or JSON exception
escapes it.

Every class inherits one of the engine's markers (``TransientError`` / ``PermanentError``)::

    FastvmError                                (OperationError)
     ├── FastvmConfigurationError              [permanent] missing/unusable FASTVM_API_KEY / FASTVM_BASE_URL
     ├── FastvmTransportError                  [transient] no usable HTTP response; ``ambiguous`` says whether
     │    │                                                the server may have done the work anyway
     │    ├── FastvmConnectError                           never reached the server: nothing was processed
     │    ├── FastvmTimeoutError                           sent, no answer in time: outcome unknown
     │    └── FastvmConnectionLost                         connection dropped or garbled mid-exchange
     ├── FastvmProtocolError                   [permanent] the response breaks the API's shapes
     ├── FastvmWaitTimeout                     [transient] wait_running / wait_mounted ran out of time
     ├── VmLaunchFailed                        [permanent] the VM reached error / stopped / deleting
     ├── VolumeMountFailed                     [permanent] an attachment reached mountStatus failed
     └── FastvmAPIError                                    the API answered with its error envelope
          ├── BadRequest                       400 bad_request                      [permanent]
          ├── Unauthorized                     401 unauthorized                     [permanent]
          ├── Forbidden                        403 forbidden                        [permanent]
          ├── NotFound                         404 not_found                        [permanent]
          ├── MethodNotAllowed                 405 method_not_allowed               [permanent]
          ├── Conflict                         409 conflict                         [permanent]
          ├── InvalidState                     409 invalid_state                    [permanent]
          ├── PayloadTooLarge                  413 payload_too_large                [permanent]
          ├── RateLimited                      429 rate_limited                     [transient]
          ├── QuotaExceeded                    429 quota_exceeded                   [permanent]
          ├── Internal                         500 internal                         [transient]
          ├── Unavailable                      503 unavailable                      [transient]
          ├── UnknownAPIError                  any other code/status                [permanent]
          └── UnknownTransientAPIError         any other code with 429/502/503/504  [transient]

The envelope's ``code`` decides the class; an error status without a readable envelope is classified by
status alone. ``str(error)`` is one line and never contains the API key (the client scrubs it).
"""

from __future__ import annotations

from collections.abc import Mapping

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
    "BadRequest",
    "Conflict",
    "FastvmAPIError",
    "FastvmConfigurationError",
    "FastvmConnectError",
    "FastvmConnectionLost",
    "FastvmError",
    "FastvmProtocolError",
    "FastvmTimeoutError",
    "FastvmTransportError",
    "FastvmWaitTimeout",
    "Forbidden",
    "Internal",
    "InvalidState",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "QuotaExceeded",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "UnknownAPIError",
    "UnknownTransientAPIError",
    "VmLaunchFailed",
    "VolumeMountFailed",
    "api_error_class",
]


class FastvmError(ProviderError):
    """Root of every error the FastVM client raises."""


class FastvmConfigurationError(FastvmError, PermanentError):
    """Connection settings are missing or unusable."""


class FastvmTransportError(FastvmError, ProviderTransportError):
    """No usable HTTP response; ``ambiguous``: the request may have been processed anyway."""


class FastvmConnectError(FastvmTransportError):
    """The connection could not be opened: nothing was sent."""


class FastvmTimeoutError(FastvmTransportError):
    """Sent, but no complete response in time."""


class FastvmConnectionLost(FastvmTransportError):
    """The connection broke or the server spoke malformed HTTP after the request was sent."""


class FastvmProtocolError(FastvmError, ProviderProtocolError):
    """The response does not match the API (bad JSON, wrong types, unexpected status)."""


class FastvmWaitTimeout(FastvmError, TransientError):
    """A client-side wait gave up; ``last_status`` is the last state seen."""

    def __init__(self, message: str, *, last_status: str | None = None) -> None:
        super().__init__(message)
        self.last_status = last_status


class VmLaunchFailed(FastvmError, PermanentError):
    """The VM reached a terminal failure status (``error``, ``stopped`` or ``deleting``)."""

    def __init__(self, vm_id: str, status: str) -> None:
        self.vm_id = vm_id
        self.status = status
        super().__init__(f"VM {vm_id} failed to reach running (status {status!r})")


class VolumeMountFailed(FastvmError, PermanentError):
    """An attachment reached ``mountStatus: failed``; ``reason`` is the API's ``mountError``."""

    def __init__(self, vm_id: str, volume_id: str, reason: str) -> None:
        self.vm_id = vm_id
        self.volume_id = volume_id
        self.reason = one_line(reason)
        super().__init__(f"volume {volume_id} on VM {vm_id} failed to mount: {self.reason}")


class FastvmAPIError(FastvmError, ProviderAPIError):
    """The API refused the request: ``status``, ``code``, ``request_id``, ``retry_after`` (s), ``details``."""

    _request_id_label = "requestId"


class BadRequest(FastvmAPIError, PermanentError):
    code = "bad_request"


class Unauthorized(FastvmAPIError, PermanentError):
    code = "unauthorized"


class Forbidden(FastvmAPIError, PermanentError):
    code = "forbidden"


class NotFound(FastvmAPIError, PermanentError):
    code = "not_found"


class MethodNotAllowed(FastvmAPIError, PermanentError):
    code = "method_not_allowed"


class Conflict(FastvmAPIError, PermanentError):
    code = "conflict"


class InvalidState(FastvmAPIError, PermanentError):
    code = "invalid_state"


class PayloadTooLarge(FastvmAPIError, PermanentError):
    code = "payload_too_large"


class RateLimited(FastvmAPIError, TransientError):
    code = "rate_limited"


class QuotaExceeded(FastvmAPIError, PermanentError):
    code = "quota_exceeded"


class Internal(FastvmAPIError, TransientError):
    code = "internal"


class Unavailable(FastvmAPIError, TransientError):
    code = "unavailable"


class UnknownAPIError(FastvmAPIError, PermanentError):
    """A code this client does not know, or an error status without an envelope."""


class UnknownTransientAPIError(FastvmAPIError, TransientError):
    """Like :class:`UnknownAPIError`, with a status that signals a passing condition (429/502/503/504)."""


ERROR_CLASSES: Mapping[str, type[FastvmAPIError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        InvalidState,
        PayloadTooLarge,
        RateLimited,
        QuotaExceeded,
        Internal,
        Unavailable,
    )
}

_CODE_BY_STATUS: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


def api_error_class(code: str | None, status: int) -> tuple[type[FastvmAPIError], str]:
    """The class and effective code for an error response: by ``code`` when known, else by ``status``."""
    return classify_api_error(
        code,
        status,
        classes=ERROR_CLASSES,
        code_by_status=_CODE_BY_STATUS,
        unknown=UnknownAPIError,
        unknown_transient=UnknownTransientAPIError,
    )
