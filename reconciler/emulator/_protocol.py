"""uvicorn's httptools protocol, sending each response's head and body in one system call, and holding a
response until the time the fault layer's latency lets it leave.

uvicorn writes a response's status line and headers as soon as the app starts the response, then the
body as a second write: two sends per request, a good share of the emulator's CPU at small bodies.
:class:`HttpProtocol` holds the head until the next write (the body, sent with it by one ``writelines``),
the end of the response, a close or an abort. Interim ``1xx`` responses (``100 Continue``) are not held:
the client waits for them before it sends the body.

Each request's scope offers the fault layer ``extensions[HOLD]``: what the transport writes for the
request's response from then on leaves no earlier than a given time (after the earlier responses of the
connection, in order). The app answers at once and its task ends; the bytes wait in the transport and
leave with every other answer then due (:mod:`._release`), a close or end-of-file after them. That
spares a sleeping task per request, and a burst of answers due together leaves together instead of one
task wake-up after another.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ._release import Releases, releases_for
from .faults import ARRIVAL, HOLD

__all__ = ["HttpProtocol"]

_HEAD = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 1"

_Data = bytes | bytearray | memoryview


class _Held:
    """What one response wrote before its release time."""

    __slots__ = ("data", "release")

    def __init__(self, release: float) -> None:
        self.release = release
        self.data: list[_Data] = []


class _HeldHeadTransport(asyncio.Transport):
    """A transport that holds a response head until it can leave with what follows it, and a response
    until its release time (:meth:`hold_until`)."""

    def __init__(self, transport: asyncio.Transport, releases: Releases | None = None) -> None:
        super().__init__()
        self._transport = transport
        self._head: _Data | None = None
        self._releases = releases
        self._held: deque[_Held] = deque()  # in the order the responses were written
        self._then: list[Callable[[], None]] = []  # a close or end-of-file asked for while holding
        self._closing = False
        self.on_released: Callable[[], None] | None = None  # when the last held response has left

    # --- holding responses until their release time --------------------------------------------

    def hold_until(self, release: float) -> None:
        """What is written from now on leaves no earlier than ``release`` (``time.monotonic()``)."""
        held = self._held
        if not held and release <= time.monotonic():
            return
        held.append(_Held(release))
        if len(held) == 1:
            self._schedule(release)

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def _schedule(self, release: float) -> None:
        releases = self._releases
        if releases is None:
            releases = self._releases = releases_for(asyncio.get_running_loop())
        releases.add(self, release)

    def release(self, now: float) -> float | None:
        """Write the held responses due at ``now``; the release time of the next one still held."""
        held = self._held
        due: list[_Data] = []
        while held and held[0].release <= now:
            due.extend(held.popleft().data)
        if due and not self._transport.is_closing():
            self._transport.writelines(due)
        if held:
            return held[0].release
        then, self._then = self._then, []
        for action in then:
            action()
        if self.on_released is not None:
            self.on_released()
        return None

    def _send(self, data: _Data) -> None:
        if self._held:
            self._held[-1].data.append(data)
        else:
            self._transport.write(data)

    def _send_all(self, list_of_data: Iterable[_Data]) -> None:
        if self._held:
            self._held[-1].data.extend(list_of_data)
        else:
            self._transport.writelines(list_of_data)

    # --- asyncio.Transport ---------------------------------------------------------------------

    def write(self, data: _Data) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._send_all((head, data))
        elif data[: len(_HEAD)] == _HEAD:
            if data[: len(_INTERIM)] == _INTERIM:
                self._transport.write(data)  # the client waits for it: never held
            else:
                self._head = data
        else:
            self._send(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._send(head)

    def writelines(self, list_of_data: Iterable[_Data]) -> None:
        self.flush()
        self._send_all(list_of_data)

    def close(self) -> None:
        self.flush()
        if self._held:
            self._closing = True
            self._then.append(self._transport.close)
        else:
            self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._held.clear()
        self._then.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        if self._held:
            self._then.append(self._transport.write_eof)
        else:
            self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`_HeldHeadTransport` (pass as ``Config(http=...)``).

    Each request's scope also carries, under ``extensions[ARRIVAL]``, the event loop's time when its first
    bytes were read: the fault layer counts latency from there, so a request that waited in the socket
    while the emulator served others is not answered that much later than its latency. Under
    ``extensions[HOLD]`` it offers to hold the response (see the module).
    """

    _arrived = 0.0
    _arrived_precise = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held = _HeldHeadTransport(transport, releases_for(self.loop))
        held.on_released = self._released
        super().connection_made(held)

    def data_received(self, data: bytes) -> None:
        self._arrived = self.loop.time()
        self._arrived_precise = time.monotonic()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions: dict[str, Any] = {ARRIVAL: {"time": self._arrived}}
        transport = self.transport
        if isinstance(transport, _HeldHeadTransport):
            extensions[HOLD] = {"arrived": self._arrived_precise, "until": transport.hold_until}
        self.scope["extensions"] = extensions

    def on_response_complete(self) -> None:
        # A response without a body write (HEAD) ends here: its head leaves now (or at its release).
        transport = self.transport
        if isinstance(transport, _HeldHeadTransport):
            transport.flush()
        super().on_response_complete()
        if isinstance(transport, _HeldHeadTransport) and transport.holding:
            self._stop_keep_alive_timer()  # the idle time starts when the response has left

    def _stop_keep_alive_timer(self) -> None:
        timer, self.timeout_keep_alive_task = self.timeout_keep_alive_task, None
        if timer is not None:
            timer.cancel()

    def _released(self) -> None:
        """The last held response has left: start the idle timer uvicorn started at its end."""
        idle = (self.cycle is None or self.cycle.response_complete) and not self.pipeline
        if idle and self.timeout_keep_alive_task is None and not self.transport.is_closing():
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
