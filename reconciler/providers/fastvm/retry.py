"""When the FastVM client sends a request again, and how long it waits first.

Every operation is tagged with its replay safety. The FastVM API has no idempotency keys, so:

====================================  ================  =========================================
failure                               Replay.SAFE       Replay.UNSAFE
====================================  ================  =========================================
connect error / connect timeout       retry             retry (nothing was sent)
read timeout, dropped connection      retry             NO: raise, ``ambiguous=True``
429 rate_limited                      retry             retry (refused up front)
429 quota_exceeded                    no                no
500 internal, 503 unavailable,        retry             NO (the work may have happened)
unknown 502/503/504
anything else                         no                no
====================================  ================  =========================================

SAFE: every GET; PUT/PATCH (absolute values: firewall, name, metadata whole-map, TTL, service upsert,
volume update); DELETE (a repeat whose first attempt worked answers 404, which the client then takes as
done); pause/resume and TTL refresh (idempotent per the API); SSH key add, service register and volume
attach (a repeat of the same value returns the existing entry); file presign (an unused staging object
expires); file fetch (re-pulling the same staged bytes to the same path writes the same file).
UNSAFE: launch, volume create, snapshot create and exec: a lost response leaves the outcome unknown, and
the caller looks the object up (VMs by ``metadata`` filter, volumes by name) instead of repeating it.

Delays: full-jitter exponential backoff ``random() * min(max_delay, base_delay * 2**retry)``, replaced by
the server's hint (``retryAfterSeconds`` or ``Retry-After``) bounded by ``max_retry_after``.
"""

from __future__ import annotations

from reconciler.providers._retry import Replay, RetryPolicy

from .errors import (
    FastvmAPIError,
    FastvmConnectError,
    FastvmError,
    FastvmTransportError,
    Internal,
    RateLimited,
    Unavailable,
    UnknownTransientAPIError,
)

__all__ = ["Replay", "RetryPolicy", "parse_retry_after", "should_retry"]


def should_retry(error: FastvmError, replay: Replay) -> bool:
    """The decision table of the module docstring."""
    if isinstance(error, FastvmConnectError):
        return True
    if isinstance(error, FastvmTransportError):
        return replay is Replay.SAFE
    if not isinstance(error, FastvmAPIError):
        return False
    if isinstance(error, RateLimited):
        return True
    if isinstance(error, (Internal, Unavailable)):
        return replay is Replay.SAFE
    if isinstance(error, UnknownTransientAPIError):
        return replay is Replay.SAFE or error.status == 429
    return False


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (an HTTP date is ignored: FastVM sends seconds)."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 10**9 else None
