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

import asyncio
import enum
import random as _random
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field

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


class Replay(enum.Enum):
    SAFE = "safe"
    UNSAFE = "unsafe"


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class RetryPolicy(BaseModel):
    """Retry budget and backoff shape; ``sleep`` and ``random`` are injectable so tests run instantly."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    max_attempts: int = Field(default=5, ge=1, le=100)
    base_delay: float = Field(default=0.25, ge=0)
    max_delay: float = Field(default=8.0, ge=0)
    max_retry_after: float = Field(default=60.0, ge=0)
    sleep: Callable[[float], Awaitable[None]] = Field(default=_asyncio_sleep, exclude=True, repr=False)
    random: Callable[[], float] = Field(default=_random.random, exclude=True, repr=False)

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, min(float(retry_after), self.max_retry_after))
        return self.random() * min(self.max_delay, self.base_delay * (2 ** min(retry, 32)))


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
