"""Release times for held responses, kept by a timer thread rather than the loop's millisecond timers.

The fault layer's latency holds each answer until its arrival plus the latency. uvloop's timers count
whole milliseconds from a clock read at the start of a loop pass: an answer released by one left on
average ~0.9 ms after its time (and with a loop-clock deadline, up to a millisecond early). Here one
thread per event loop sleeps until the earliest release time on ``time.monotonic()`` (a condition wait:
tens of microseconds late) and hands every holder then due to the loop, which writes them back to back.
A holder is only ever given a ``now`` read on the loop at release: nothing leaves early. While the loop
is busy the release waits for it, as any callback does.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
import time
import weakref
from typing import Protocol

__all__ = ["Holder", "Releases", "releases_for"]

_log = logging.getLogger(__name__)

_IDLE_CHECK = 1.0  # seconds: how often an idle timer thread checks whether its loop has closed


class Holder(Protocol):
    def release(self, now: float) -> float | None:
        """Write what is due at ``now``; the release time of what it still holds, if any."""


class Releases:
    """Calls each holder's :meth:`Holder.release` on the loop once the time it was added for has come,
    then again each time it names a later one, until it holds nothing. The holder writes only what is due
    at the ``now`` it is given (read on the loop, after the time): nothing leaves early."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[tuple[float, int, Holder]] = []  # heap of (release time, order, holder)
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, holder: Holder, when: float) -> None:
        with self._changed:
            heapq.heappush(self._due, (when, next(self._order), holder))
            if self._due[0][2] is holder:
                self._changed.notify()  # a new earliest time: the thread sleeps too long otherwise
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emulator-releases", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """The timer thread: hand what is due to the loop; end once the loop has closed."""
        with self._changed:
            while not self._loop.is_closed():
                if not self._due:
                    self._changed.wait(_IDLE_CHECK)
                    continue
                wait = self._due[0][0] - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                now = time.monotonic()
                due = []
                while self._due and self._due[0][0] <= now:
                    due.append(heapq.heappop(self._due)[2])
                try:
                    self._loop.call_soon_threadsafe(self._fire, due)
                except RuntimeError:  # the loop closed meanwhile: nobody is left to answer
                    break
            self._thread = None

    def _fire(self, holders: list[Holder]) -> None:
        now = time.monotonic()
        for holder in holders:
            try:
                later = holder.release(now)
            except Exception:  # one broken connection must not keep the others' answers back
                _log.exception("emulator: releasing held answers failed")
                continue
            if later is not None:
                self.add(holder, later)  # not due yet after all: asked again at its time


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Releases] = weakref.WeakKeyDictionary()


def releases_for(loop: asyncio.AbstractEventLoop) -> Releases:
    """The loop's one :class:`Releases`."""
    found = _BY_LOOP.get(loop)
    if found is None:
        found = _BY_LOOP[loop] = Releases(loop)
    return found
