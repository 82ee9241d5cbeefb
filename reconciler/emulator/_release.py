"""Release times for held responses: one timer per millisecond of due responses, not one per response.

The fault layer's latency holds each answer until its arrival plus the latency. A burst of requests that
arrived together is due together: :class:`Releases` wakes once for all the holders due in the same
millisecond and lets them write back to back, instead of waking one task per answer. Times are
``time.monotonic()`` (precise; uvloop's ``loop.time()`` is a millisecond clock read at the start of a
loop iteration, which would let an answer leave up to a millisecond before its latency).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from typing import Protocol

__all__ = ["Holder", "Releases", "releases_for"]

_log = logging.getLogger(__name__)


class Holder(Protocol):
    def release(self, now: float) -> float | None:
        """Write what is due at ``now``; the release time of what it still holds, if any."""


class Releases:
    """Calls each holder's :meth:`Holder.release` once the millisecond of the time it was added for has
    begun, then again each time it names a later one, until it holds nothing. The holder writes only what
    is due at the ``now`` it is given: nothing leaves early."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: dict[int, list[Holder]] = {}
        # uvloop's and asyncio's clocks are time.monotonic() (uvloop's in whole milliseconds): a timer at
        # the millisecond itself then fires once that millisecond has begun, never before.
        self._same_clock = abs(loop.time() - time.monotonic()) < 1.0

    def add(self, holder: Holder, when: float) -> None:
        # At the start of ``when``'s millisecond: what is due by then leaves, the rest of that
        # millisecond waits for the next one (_fire). Half the holders leave a millisecond sooner than
        # if all waited for the next millisecond; none leaves before its time.
        self._add(holder, math.floor(when * 1000))

    def _add(self, holder: Holder, key: int) -> None:
        holders = self._due.get(key)
        if holders is not None:
            holders.append(holder)
            return
        self._due[key] = [holder]
        if self._same_clock:
            self._loop.call_at(key / 1000, self._fire, key)
        else:
            self._loop.call_later(key / 1000 - time.monotonic(), self._fire, key)

    def _fire(self, key: int) -> None:
        now = time.monotonic()
        for holder in self._due.pop(key, ()):
            try:
                later = holder.release(now)
            except Exception:  # one broken connection must not keep the others' answers back
                _log.exception("emulator: releasing held answers failed")
                continue
            if later is not None:
                # Not due yet: never the millisecond that has begun again (its timer would fire at once,
                # over and over, until the time came).
                self._add(holder, max(math.floor(later * 1000), math.floor(now * 1000) + 1, key + 1))


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Releases] = weakref.WeakKeyDictionary()


def releases_for(loop: asyncio.AbstractEventLoop) -> Releases:
    """The loop's one :class:`Releases`."""
    found = _BY_LOOP.get(loop)
    if found is None:
        found = _BY_LOOP[loop] = Releases(loop)
    return found
