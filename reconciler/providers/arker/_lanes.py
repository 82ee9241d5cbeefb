"""A connection pool for many concurrent requests: one single-connection lane per request in flight.

httpcore's pool (1.0.x) hands every request queued in the same tick the same idle connection; all but one
fail over with ``ConnectionNotAvailable`` and re-run the assignment, which itself polls every pooled
socket. At 32 requests in flight that storm cost ~2.5 ms of CPU per request (profiled; see
``docs/performance.md``). Here a request first takes a free lane (its own keep-alive connection), so the
inner pool never has two candidates for one connection. Lanes are reused most-recently-freed first, to
keep the warm connections busy and let the others expire.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["LaneTransport"]


class _Releasing(httpx.AsyncByteStream):
    """The lane's response body; closing it (read to the end or not) frees the lane, exactly once."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class LaneTransport(httpx.AsyncBaseTransport):
    """At most ``lanes`` requests in flight, each on its own ``httpx.AsyncHTTPTransport`` of one connection.

    A request waits for a free lane up to the request's ``pool`` timeout (``httpx.PoolTimeout``, as the
    default pool raises). No proxy support: the client uses this only when no proxy applies.
    """

    def __init__(self, lanes: int, *, verify: ssl.SSLContext | bool = True) -> None:
        if lanes < 1:
            raise ValueError("lanes must be >= 1")
        self._capacity = lanes
        self._verify = verify
        self._free: list[httpx.AsyncHTTPTransport] = []
        self._all: list[httpx.AsyncHTTPTransport] = []
        self._gate: asyncio.Semaphore | None = None  # created in the running loop, on first use
        self._context: ssl.SSLContext | bool | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        # One context for every lane: building one loads the CA bundle (tens of ms each).
        if self._context is None:
            verify = self._verify
            shared = httpx.create_ssl_context(verify=True, trust_env=True) if verify is True else verify
            self._context = shared
        return self._context

    def _lane(self) -> httpx.AsyncHTTPTransport:
        if self._free:
            return self._free.pop()
        lane = httpx.AsyncHTTPTransport(
            verify=self._ssl(), limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
        )
        self._all.append(lane)
        return lane

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self._capacity)
        gate = self._gate
        timeout = request.extensions.get("timeout", {}).get("pool")
        if gate.locked():
            try:
                await asyncio.wait_for(gate.acquire(), timeout)
            except asyncio.TimeoutError:
                raise httpx.PoolTimeout("no free lane within the pool timeout", request=request) from None
        else:
            await gate.acquire()  # free now: no timer needed
        lane = self._lane()

        def release() -> None:
            self._free.append(lane)
            gate.release()

        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Releasing(response.stream, release),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        lanes, self._all, self._free = self._all, [], []
        for lane in lanes:
            await lane.aclose()
