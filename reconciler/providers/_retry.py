"""The platform-neutral retry budget: replay safety tags and full-jitter backoff bounded by server hints.

Which failures are retried for which tag is each platform's own table (its ``retry.should_retry``); so is
reading ``Retry-After``. Delays are ``random() * min(max_delay, base_delay * 2**retry)``, replaced by a
server hint bounded by ``max_retry_after`` so a hostile or confused server cannot park us for hours.
"""

from __future__ import annotations

import asyncio
import enum
import random as _random
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Replay", "RetryPolicy"]


class Replay(enum.Enum):
    """How safe an operation is to send again after a failure whose outcome is unknown."""

    SAFE = "safe"
    UNSAFE = "unsafe"


async def _asyncio_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class RetryPolicy(BaseModel):
    """Retry budget and backoff shape. ``sleep`` and ``random`` are injectable so tests run instantly."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    max_attempts: int = Field(default=5, ge=1, le=100)
    base_delay: float = Field(default=0.25, ge=0)
    max_delay: float = Field(default=8.0, ge=0)
    max_retry_after: float = Field(default=60.0, ge=0)
    sleep: Callable[[float], Awaitable[None]] = Field(default=_asyncio_sleep, exclude=True, repr=False)
    random: Callable[[], float] = Field(default=_random.random, exclude=True, repr=False)

    def backoff(self, retry: int) -> float:
        """Full-jitter delay before retry number ``retry`` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(retry, 32)))
        return self.random() * ceiling

    def delay(self, retry: int, retry_after: float | None) -> float:
        """The wait before retry number ``retry``: the server's hint when given (bounded), else backoff."""
        if retry_after is not None:
            return max(0.0, min(float(retry_after), self.max_retry_after))
        return self.backoff(retry)
