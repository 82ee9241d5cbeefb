"""Release times for held responses, kept on ``time.monotonic()`` rather than the loop's millisecond timers.

The fault layer's latency holds each answer until its arrival plus the latency. uvloop's timers count
whole milliseconds from a clock read at the start of a loop pass: an answer released by one left on
average ~0.9 ms after its time (and with a loop-clock deadline, up to a millisecond early).

:class:`Releases` keeps the holders in a heap on the loop and an *alarm* rings the loop at the earliest
release time; every holder then due is released back to back. A holder is only ever given a ``now`` read
on the loop after the time: nothing leaves early. While the loop is busy the release waits for it, as any
callback does. Two alarms:

- On Linux, a kernel timer (``timerfd``) that the loop watches like a socket: it becomes readable at the
  time (nanosecond resolution), and the loop's poll returns for it. No thread and no lock is involved:
  a thread ringing the loop first had to win the GIL from the loop it wanted to wake, which left answers
  ~0.5 ms later on average in a busy emulator (measured over a 200-VM apply).
- Elsewhere, a thread per loop waiting on a condition until the time, then calling into the loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import heapq
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["Holder", "Releases", "releases_for"]

_log = logging.getLogger(__name__)

_IDLE_CHECK = 1.0  # seconds: how often an idle alarm thread checks whether its loop has closed


class Holder(Protocol):
    def release(self, now: float) -> float | None:
        """Write what is due at ``now``; the release time of what it still holds, if any."""


class _Alarm(Protocol):
    def ring_at(self, when: float) -> None:
        """Call the loop's callback once, at or after ``when`` (replacing any earlier ``ring_at``)."""

    def stop(self) -> None:
        """Nothing is due any more: ring no more and hold no resources until the next ``ring_at``."""


_AlarmFactory = Callable[[asyncio.AbstractEventLoop, Callable[[], None]], _Alarm]


class Releases:
    """Calls each holder's :meth:`Holder.release` on the loop once the time it was added for has come,
    then again each time it names a later one, until it holds nothing. The holder writes only what is due
    at the ``now`` it is given (read on the loop, after the time): nothing leaves early.

    Used from the loop's thread only. ``alarm`` picks the alarm (tests); by default the platform's best.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, alarm: _AlarmFactory | None = None) -> None:
        self._due: list[tuple[float, int, Holder]] = []  # heap of (release time, order, holder)
        self._order = itertools.count()
        self._armed: float | None = None  # the time the alarm rings at
        self._alarm: _Alarm = (alarm or _best_alarm)(loop, self._ring)

    def add(self, holder: Holder, when: float) -> None:
        heapq.heappush(self._due, (when, next(self._order), holder))
        if self._armed is None or when < self._armed:
            self._armed = when
            self._alarm.ring_at(when)

    def _ring(self) -> None:
        self._armed = None
        now = time.monotonic()
        due = self._due
        ready = []
        while due and due[0][0] <= now:
            ready.append(heapq.heappop(due)[2])
        for holder in ready:
            try:
                later = holder.release(now)
            except Exception:  # one broken connection must not keep the others' answers back
                _log.exception("emulator: releasing held answers failed")
                continue
            if later is not None:
                heapq.heappush(due, (later, next(self._order), holder))  # asked again at its time
        if not due:
            self._alarm.stop()
        elif self._armed is None or due[0][0] < self._armed:
            self._armed = due[0][0]
            self._alarm.ring_at(self._armed)


# ── alarms ──────────────────────────────────────────────────────────────────────────────────────────────


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_CLOCK_MONOTONIC = 1  # the clock of time.monotonic() on Linux
_TFD_TIMER_ABSTIME = 1


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class _TimerFdAlarm:
    """A kernel timer the loop polls as a file descriptor. Opened on the first ``ring_at`` and closed by
    ``stop`` (when nothing is held); a loop that closed with answers still held closes it when the alarm
    is collected."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None], libc: ctypes.CDLL):
        self._loop = loop
        self._callback = callback
        self._libc = libc
        self._fd: int | None = None
        self._close: Callable[[], object] = lambda: None  # closes ``_fd`` once (a weakref.finalize)
        self._spec = _Itimerspec()  # it_interval stays zero: one shot per ring_at

    def _open(self) -> int:
        fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        try:
            self._loop.add_reader(fd, self._on_readable)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._close = weakref.finalize(self, os.close, fd)
        return fd

    def ring_at(self, when: float) -> None:
        fd = self._fd if self._fd is not None else self._open()
        seconds = int(when)
        value = self._spec.it_value
        # A zero it_value would disarm the timer: a time at a whole second rings a nanosecond later.
        value.tv_sec, value.tv_nsec = seconds, max(1, int((when - seconds) * 1e9))
        if self._libc.timerfd_settime(fd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def _on_readable(self) -> None:
        fd = self._fd
        if fd is None:
            return
        try:
            os.read(fd, 8)  # the expiry count: reading it makes the descriptor quiet again
        except BlockingIOError:
            return  # re-armed since it became readable: it rings at its new time
        self._callback()

    def stop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            self._loop.remove_reader(fd)
            self._close()


class _ThreadAlarm:
    """A thread that waits on a condition until the time, then calls into the loop; it ends once the loop
    has closed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._when: float | None = None
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def ring_at(self, when: float) -> None:
        with self._changed:
            self._when = when
            self._changed.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emulator-releases", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._changed:
            self._when = None

    def _run(self) -> None:
        with self._changed:
            while not self._loop.is_closed():
                if self._when is None:
                    self._changed.wait(_IDLE_CHECK)
                    continue
                wait = self._when - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                self._when = None
                try:
                    self._loop.call_soon_threadsafe(self._callback)
                except RuntimeError:  # the loop closed meanwhile: nobody is left to answer
                    break
            self._thread = None


def _best_alarm(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> _Alarm:
    if _LIBC is not None:
        return _TimerFdAlarm(loop, callback, _LIBC)
    return _ThreadAlarm(loop, callback)


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Releases] = weakref.WeakKeyDictionary()


def releases_for(loop: asyncio.AbstractEventLoop) -> Releases:
    """The loop's one :class:`Releases`."""
    found = _BY_LOOP.get(loop)
    if found is None:
        found = _BY_LOOP[loop] = Releases(loop)
    return found
