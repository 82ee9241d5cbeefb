"""uvicorn's httptools protocol, sending each response's head and body in one system call.

uvicorn writes a response's status line and headers as soon as the app starts the response, then the
body as a second write: two sends per request, a good share of the emulator's CPU at small bodies.
:class:`HttpProtocol` holds the head until the next write (the body, sent with it by one ``writelines``),
the end of the response, a close or an abort. Interim ``1xx`` responses (``100 Continue``) are not held:
the client waits for them before it sends the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .faults import ARRIVAL

__all__ = ["HttpProtocol"]

_HEAD = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 1"

_Data = bytes | bytearray | memoryview


class _HeldHeadTransport(asyncio.Transport):
    """A transport that holds a response head until it can leave with what follows it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._head: _Data | None = None

    def write(self, data: _Data) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.writelines((head, data))
        elif data[: len(_HEAD)] == _HEAD and data[: len(_INTERIM)] != _INTERIM:
            self._head = data
        else:
            self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._transport.write(head)

    def writelines(self, list_of_data: Iterable[_Data]) -> None:
        self.flush()
        self._transport.writelines(list_of_data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

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
    while the emulator served others is not answered that much later than its latency.
    """

    _arrived = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeldHeadTransport(transport))

    def data_received(self, data: bytes) -> None:
        self._arrived = self.loop.time()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {ARRIVAL: {"time": self._arrived}}

    def on_response_complete(self) -> None:
        # A response without a body write (HEAD) ends here: its head leaves now.
        transport = self.transport
        if isinstance(transport, _HeldHeadTransport):
            transport.flush()
        super().on_response_complete()
