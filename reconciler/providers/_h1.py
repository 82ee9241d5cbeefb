"""HTTP/1.1 keep-alive connections on asyncio: the default :class:`~reconciler.providers._exchange.Exchange`.

Why not httpx's pool: a plan makes thousands of small calls, and each one cost ~1.5 ms of client CPU in
httpx's request/response models, httpcore's pool and h11 (profiled; docs/performance.md); here it is ~0.1
ms. The API client needs only this much of HTTP: one request at a time per connection (no pipelining),
bodies we send whole, responses read whole within a cap, TLS always verified. Anything else (proxies)
goes through httpx.

Connections are kept per origin and reused most-recently-freed first, so a few warm connections stay busy
and the rest expire; at most ``max_connections`` requests are in flight at once, and a request waits
for a free slot up to the pool timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
from collections import deque
from collections.abc import Mapping
from typing import TypeVar, cast
from urllib.parse import quote, urlencode, urlsplit

import httpx

from reconciler.providers._exchange import (
    ExchangeConnectError,
    ExchangeLost,
    ExchangeTimeout,
    ExchangeTooLarge,
    Params,
    RawReply,
)
from reconciler.providers._h1_wire import BodyTooLarge, ProtocolViolation, ResponseParser, request_head

__all__ = ["H1Exchange"]

# Seconds an idle connection is kept: below the 5 s many servers allow (uvicorn's default), so we drop a
# connection before the server does instead of racing its close with our next request.
KEEPALIVE_EXPIRY = 4.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters a request target may carry as they are; anything else is percent-encoded.
_TARGET_SAFE = "/%:@!$&'()*+,;=-._~"
_PLAIN_TARGET = re.compile(r"/[A-Za-z0-9/%:@!$&'()*+,;=\-._~?]*")
_AUTHORITY_END = re.compile(r"[/?#]")
_Origin = tuple[str, str, int]
_T = TypeVar("_T")


class _Connection(asyncio.Protocol):
    """One connection, one request at a time. ``exchange`` sends a request; its future is done when the
    response is whole."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser: ResponseParser | None = None
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None  # kept across requests: see ``exchange``
        self._timer_timeout: float | None = None  # the timeout the pending timer was set for
        self._read_timeout: float | None = None
        self._last_data = 0.0
        self._unsent = 0  # bytes of the request still in our write buffer at the last timer check
        self.closed = False
        self.idle_since = 0.0
        self.origin: _Origin | None = None

    # ── asyncio callbacks ───────────────────────────────────────────────────────────────────────────────

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not necessarily an ``asyncio.Transport`` subclass (uvloop's is not).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self._done is None or self._done.done():
            self.close()  # bytes nobody asked for: the connection can no longer be trusted
            return
        self._last_data = self._loop.time()
        try:
            complete = parser.feed(data)
        except (ProtocolViolation, BodyTooLarge) as exc:
            self._fail(exc)
            return
        if complete:
            self._done.set_result(None)

    def eof_received(self) -> bool:
        self._ended()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None:
            # A reset or a failed read is not an end of stream: a body read until close would look whole.
            self._fail(ConnectionError(f"connection lost: {type(exc).__name__}: {exc}"))
            return
        self._ended()

    def _ended(self) -> None:
        done = self._done
        if done is None or done.done() or self._parser is None:
            return
        try:
            self._parser.end_of_stream()
        except ProtocolViolation as violation:
            self._fail(violation)
            return
        done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)
        self.close()

    def _on_timer(self) -> None:
        # A timeout is inactivity, as httpx's: a long body that keeps arriving (or a large upload that
        # keeps leaving: our write buffer shrinking) is not timed out.
        self._timer = None
        timeout = self._read_timeout
        if timeout is None or self._done is None or self._done.done():
            return  # idle: the next request starts a timer again
        unsent = self._transport.get_write_buffer_size() if self._transport is not None else 0
        if unsent != self._unsent:
            self._unsent = unsent
            self._last_data = self._loop.time()
        quiet = self._loop.time() - self._last_data
        if quiet >= timeout:
            self._fail(TimeoutError())
        else:
            self._timer = self._loop.call_later(timeout - quiet, self._on_timer)

    # ── use ─────────────────────────────────────────────────────────────────────────────────────────────

    @property
    def usable(self) -> bool:
        transport = self._transport
        return not self.closed and transport is not None and not transport.is_closing()

    @property
    def sent(self) -> bool:
        """Whether the whole request left: a server may answer before reading all of a body, and a next
        request queued behind the rest of it could wait on a server that reads no more."""
        return self._transport is not None and not self._transport.get_write_buffer_size()

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._done is not None and not self._done.done():
            # Closed by us mid-response (aclose): our abort must not read as the server's end of a body.
            self._done.set_exception(ConnectionAbortedError("the connection was closed by the client"))
        if self._transport is not None:
            self._transport.abort()  # no graceful close: nothing more will be read or sent

    def exchange(
        self, data: bytes, parser: ResponseParser, read_timeout: float | None
    ) -> asyncio.Future[None]:
        """Send ``data`` (one whole request); the future is done when ``parser`` holds the whole response.

        A plain function returning the future (no coroutine of its own: one layer less per call). The
        finished future stays as ``_done`` until the next request: every check treats a done future as no
        request at all, as it did ``None``."""
        assert self._transport is not None
        self._parser = parser
        self._done = done = self._loop.create_future()
        self._read_timeout = read_timeout
        self._last_data = self._loop.time()
        if read_timeout is not None and (self._timer is None or self._timer_timeout != read_timeout):
            # A timer left from an earlier request on this connection fires no later than this one's
            # would (it counted from an earlier moment) and then waits out the rest of the quiet time:
            # one timer per busy connection instead of one set and cancelled per request.
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(read_timeout, self._on_timer)
            self._timer_timeout = read_timeout
        try:
            self._transport.write(data)
        except BaseException:
            done.cancel()
            raise
        self._unsent = self._transport.get_write_buffer_size()
        return done

    def finish(self) -> None:
        """The request is over: drop its parser (and the body it holds) while the connection idles."""
        self._parser = None


class _Slots:
    """At most ``capacity`` requests in flight; the rest wait in arrival order. ``asyncio.Semaphore``
    without its cost on the common path: a free slot is taken without a coroutine or a scan of waiters."""

    def __init__(self, capacity: int) -> None:
        self.free = capacity
        self._waiters: deque[asyncio.Future[None]] = deque()

    def take_now(self) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def take(self, timeout: float | None) -> None:
        """Wait for a slot; ``TimeoutError`` after ``timeout`` seconds."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):  # already taken off by ``release``
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        if not _hand_over(self._waiters, None):  # the slot goes straight to the longest waiter
            self.free += 1


def _hand_over(waiters: deque[asyncio.Future[_T]], value: _T) -> bool:
    """Give ``value`` to the longest waiter still waiting; False when there is none."""
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(value)
            return True
    return False


class H1Exchange:
    """The pool. ``exchange`` is safe to call from many tasks at once."""

    def __init__(
        self,
        *,
        max_connections: int,
        timeout: httpx.Timeout,
        user_agent: str,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._timeout = timeout
        self._user_agent = user_agent
        self._expiry = keepalive_expiry
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._slots = _Slots(max_connections)
        self._max_connections = max_connections
        self._opening: dict[_Origin, int] = {}  # connections ``warm`` is opening, per origin
        # Requests waiting for a connection ``warm`` is opening (rather than opening one more themselves).
        self._awaiting: dict[_Origin, deque[asyncio.Future[_Connection | None]]] = {}
        self._warming: set[asyncio.Task[None]] = set()
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    # ── connections ─────────────────────────────────────────────────────────────────────────────────────

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once per pool (it loads the CA bundle); honours SSL_CERT_FILE/SSL_CERT_DIR like httpx.
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=True, trust_env=True)
        return self._ssl

    async def _wait_for_slot(self) -> None:
        try:
            await self._slots.take(self._timeout.pool)
        except (asyncio.TimeoutError, TimeoutError):
            raise ExchangeConnectError("PoolTimeout: no free connection within the pool timeout") from None

    def _reuse(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            connection = idle.pop()
            if self._fresh(connection, now):
                return connection
            connection.close()
        return None

    def _fresh(self, connection: _Connection, now: float) -> bool:
        """Whether an idle connection may still be reused (open, and idle for less than the expiry)."""
        return connection.usable and now - connection.idle_since < self._expiry

    async def _connect(self, origin: _Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._ssl_context() if scheme == "https" else None
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop), host, port, ssl=tls, server_hostname=host if tls else None
                ),
                self._timeout.connect,
            )
        except (asyncio.TimeoutError, TimeoutError):
            raise ExchangeConnectError(f"ConnectTimeout: no connection to {host}:{port} in time") from None
        except (OSError, ssl.SSLError, UnicodeError) as exc:  # UnicodeError: a host name IDNA refuses
            raise ExchangeConnectError(f"ConnectError: {exc}") from None
        connection.origin = origin
        return connection

    def warm(self, url: str, connections: int) -> None:
        """Open connections to ``url``'s origin in the background until ``connections`` (at most the pool's
        size) are open or opening, so the burst of requests about to start finds them ready.

        Why: the first requests of an apply or a refresh leave together, and each would otherwise open
        its connection then (a TCP and TLS handshake on the critical path of every one of them, and a
        server that accepts one connection per loop pass, as uvloop's does, reads the last of them that
        much later). A connection that cannot be opened is left to the request that needs it, which
        reports the error.
        """
        if self._closed:
            return
        try:
            origin, _, _ = _split(url, None)
        except ExchangeConnectError:
            return  # a URL no request can use either: each request reports it
        now = asyncio.get_running_loop().time()
        idle = self._idle.get(origin, [])
        for connection in [c for c in idle if not self._fresh(c, now)]:
            idle.remove(connection)  # would not be reused: count only those that will be
            connection.close()
        busy = sum(1 for connection in self._busy if connection.origin == origin)
        have = len(idle) + busy + self._opening.get(origin, 0)
        for _ in range(min(connections, self._max_connections) - have):
            self._opening[origin] = self._opening.get(origin, 0) + 1
            task = asyncio.ensure_future(self._open_idle(origin))
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)

    async def _open_idle(self, origin: _Origin) -> None:
        connection: _Connection | None = None
        try:
            connection = await self._connect(origin)
        except Exception:  # best effort: the request that needs a connection opens (and reports) its own
            connection = None
        finally:
            self._opening[origin] -= 1
        # To the request that waited for it, if any (None: that request connects itself).
        if _hand_over(self._awaiting.get(origin, deque()), connection):
            return
        if connection is None:
            return
        if self._closed:
            connection.close()
            return
        self._park(origin, connection)

    def _park(self, origin: _Origin, connection: _Connection) -> None:
        connection.idle_since = asyncio.get_running_loop().time()
        # Behind those freed by requests: the pool reuses the most recently freed first.
        self._idle.setdefault(origin, []).insert(0, connection)

    async def _obtain(self, origin: _Origin) -> _Connection:
        """An idle connection, else one ``warm`` is opening and nobody waits for yet, else a new one."""
        connection = self._reuse(origin)
        if connection is not None:
            return connection
        waiting = self._awaiting.setdefault(origin, deque())
        if self._opening.get(origin, 0) > len(waiting):
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            waiting.append(waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    given = waiter.result()
                    if given is not None:
                        self._park(origin, given)  # handed over just as we gave up: keep it for others
                else:
                    waiter.cancel()
                    with contextlib.suppress(ValueError):
                        waiting.remove(waiter)
                raise
            if handed is not None:
                return handed
        return await self._connect(origin)

    def _release(self, origin: _Origin, connection: _Connection, reusable: bool) -> None:
        self._busy.discard(connection)
        if reusable and connection.usable and not self._closed:
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.close()

    # ── requests ────────────────────────────────────────────────────────────────────────────────────────

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Params | None,
        headers: Mapping[str, str],
        content: bytes | None,
        cap: int,
    ) -> RawReply:
        if self._closed:
            raise ExchangeConnectError("the client is closed")
        origin, host_header, target = _split(url, params)
        if content is None and method in ("POST", "PUT", "PATCH"):
            content = b""  # a body-carrying method says so, or servers wait for one
        try:
            head = request_head(
                method,
                target,
                host_header,
                [("User-Agent", self._user_agent), *headers.items()],
                None if content is None else len(content),
            )
        except ValueError as exc:  # CR/LF or non-ASCII in a header or the host: nothing was sent
            raise ExchangeConnectError(f"InvalidRequest: {exc}") from None
        slots = self._slots
        if not slots.take_now():
            await self._wait_for_slot()
        try:
            connection = await self._obtain(origin)
            self._busy.add(connection)
            parser = ResponseParser(cap=cap, head_only=method == "HEAD")
            reusable = False
            try:
                await connection.exchange(head + content if content else head, parser, self._timeout.read)
                reusable = parser.reusable and connection.sent
            except BodyTooLarge as exc:
                raise ExchangeTooLarge(str(exc), exc.status) from None
            except ProtocolViolation as exc:
                raise ExchangeLost(f"RemoteProtocolError: {exc}") from None
            except TimeoutError:
                raise ExchangeTimeout(f"ReadTimeout: no answer within {self._timeout.read} s") from None
            except OSError as exc:
                raise ExchangeLost(f"ReadError: {exc}") from None
            finally:
                connection.finish()
                self._release(origin, connection, reusable)
        finally:
            slots.release()
        return RawReply(parser.status, parser.headers, parser.body)

    async def aclose(self) -> None:
        self._closed = True
        warming, self._warming = self._warming, set()
        for task in warming:
            task.cancel()
        await asyncio.gather(*warming, return_exceptions=True)
        awaiting, self._awaiting = self._awaiting, {}
        for waiters in awaiting.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(ExchangeConnectError("the client is closed"))
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()
        for connection in list(self._busy):
            connection.close()
        await asyncio.sleep(0)  # let the transports run their close callbacks


def _split(url: str, params: Params | None) -> tuple[_Origin, str, str]:
    """Origin (scheme, host, port), the Host header and the request target of ``url`` + ``params``."""
    scheme_end = url.find("://")
    found = _AUTHORITY_END.search(url, scheme_end + 3 if scheme_end >= 0 else 0)
    end = found.start() if found is not None else len(url)
    base, rest = url[:end], url[end:]
    if not rest.startswith("/"):
        rest = "/" + rest
    origin, host_header = _origin(base)
    if "#" in rest:
        rest = rest.partition("#")[0]
    # Our clients build paths from quoted segments: the common case needs no re-quoting.
    target = rest if _PLAIN_TARGET.fullmatch(rest) else quote(rest, safe=_TARGET_SAFE + "?")
    if params:
        target = f"{target}{'&' if '?' in target else '?'}{urlencode(params)}"
    return origin, host_header, target


@functools.lru_cache(maxsize=64)
def _origin(base: str) -> tuple[_Origin, str]:
    parts = urlsplit(base)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ExchangeConnectError(f"UnsupportedProtocol: {scheme or 'no'} scheme in the URL")
    host = parts.hostname
    if not host:
        raise ExchangeConnectError("UnsupportedProtocol: no host in the URL")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ExchangeConnectError("UnsupportedProtocol: invalid port in the URL") from None
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    return (scheme, host, port), host_header
