"""H1Exchange over real loopback sockets: reuse, limits, timeouts, broken servers, cancellation."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from reconciler.providers._exchange import (
    ExchangeConnectError,
    ExchangeLost,
    ExchangeTimeout,
    ExchangeTooLarge,
    Params,
)
from reconciler.providers._h1 import H1Exchange, _Connection, _Slots, _split
from reconciler.providers._h1_wire import ResponseParser

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Server:
    """Loopback server: ``handler`` answers each request on a connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        request = head + (await reader.readexactly(length) if length else b"")
        self.requests.append(request)
        return request


@asynccontextmanager
async def _serving(
    handler: Callable[[_Server], Handler], *, limit: int = 1 << 16
) -> AsyncIterator[tuple[_Server, str]]:
    server = _Server(lambda r, w: asyncio.sleep(0))
    server.handler = handler(server)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, limit=limit)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()


def _ok(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body


def _keepalive(delay: float = 0.0, body: bytes = b"{}") -> Callable[[_Server], Handler]:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                if delay:
                    await asyncio.sleep(delay)
                writer.write(_ok(body))

        return handle

    return make


def _pool(connections: int = 4, **timeouts: float) -> H1Exchange:
    return H1Exchange(
        max_connections=connections, timeout=httpx.Timeout(5.0, **timeouts), user_agent="arkerctl-test"
    )


async def _get(
    pool: H1Exchange, url: str, *, cap: int = 1 << 20, params: Params | None = None
) -> tuple[int, bytes]:
    reply = await pool.exchange("GET", url, params=params, headers={"Accept": "x/y"}, content=None, cap=cap)
    return reply.status, reply.content


def test_requests_reuse_connections_and_never_exceed_the_limit() -> None:
    async def main() -> None:
        async with _serving(_keepalive(delay=0.01)) as (server, url):
            pool = _pool(4)
            replies = await asyncio.gather(*(_get(pool, f"{url}/v1/vms") for _ in range(40)))
            assert replies == [(200, b"{}")] * 40
            assert server.connections == 4  # 40 requests, 4 connections, each used ten times
            await pool.aclose()

    asyncio.run(main())


def test_request_line_headers_query_and_body_are_sent_as_given() -> None:
    async def main() -> None:
        async with _serving(_keepalive()) as (server, url):
            pool = _pool()
            await _get(pool, f"{url}/v1/vms/a%2Fb", params={"cursor": "x y", "limit": "5"})
            reply = await pool.exchange(
                "POST", f"{url}/v1/fork", params=None, headers={"X-K": "v"}, content=b'{"a":1}', cap=100
            )
            assert reply.status == 200
            await pool.exchange("POST", f"{url}/v1/run", params=None, headers={}, content=None, cap=100)
            await pool.aclose()
        port = url.rsplit(":", 1)[1]
        get, post, empty = server.requests
        assert get.startswith(
            b"GET /v1/vms/a%2Fb?cursor=x+y&limit=5 HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode()
        )
        assert b"\r\nUser-Agent: arkerctl-test\r\n" in get and b"\r\nAccept: x/y\r\n" in get
        assert post.startswith(b"POST /v1/fork HTTP/1.1") and post.endswith(
            b'Content-Length: 7\r\n\r\n{"a":1}'
        )
        assert empty.endswith(b"Content-Length: 0\r\n\r\n")  # a POST without a body says so

    asyncio.run(main())


def test_a_connection_the_server_closed_is_not_reused() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(_ok())
            await writer.drain()  # then close: the idle connection dies in the pool

        return handle

    async def main() -> None:
        async with _serving(make) as (server, url):
            pool = _pool(1)
            for _ in range(3):
                assert await _get(pool, url) == (200, b"{}")
                await asyncio.sleep(0.05)
            assert server.connections == 3
            await pool.aclose()

    asyncio.run(main())


def test_connection_close_and_read_until_close_bodies() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close")

        return handle

    async def main() -> None:
        async with _serving(make) as (server, url):
            pool = _pool(1)
            assert await _get(pool, url) == (200, b"until-close")
            assert await _get(pool, url) == (200, b"until-close")
            assert server.connections == 2
            await pool.aclose()

    asyncio.run(main())


def test_chunked_response_split_across_writes() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                for piece in (
                    b"HTTP/1.1 200 OK\r\nTransfer-",
                    b"Encoding: chunked\r\n\r\n4\r\nab",
                    b"cd\r\n0\r\n\r\n",
                ):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.005)

        return handle

    async def main() -> None:
        async with _serving(make) as (server, url):
            pool = _pool(1)
            assert await _get(pool, url) == (200, b"abcd")
            assert await _get(pool, url) == (200, b"abcd")
            assert server.connections == 1
            await pool.aclose()

    asyncio.run(main())


def test_connect_failures_are_connect_errors() -> None:
    async def main() -> None:
        pool = _pool(1)
        with pytest.raises(ExchangeConnectError, match="ConnectError"):
            await _get(pool, "http://127.0.0.1:9/unreachable")
        with pytest.raises(ExchangeConnectError, match="scheme"):
            await _get(pool, "ftp://127.0.0.1/x")
        # The failed attempt gave its slot back: the only slot is free for the next one.
        with pytest.raises(ExchangeConnectError):
            await asyncio.wait_for(_get(pool, "http://127.0.0.1:9/unreachable"), 5)
        await pool.aclose()

    asyncio.run(main())


def test_a_silent_server_is_a_read_timeout_and_the_slot_comes_back() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            if len(server.requests) == 1:
                await asyncio.sleep(10)  # the first request never gets an answer
            writer.write(_ok())
            await server.read_request(reader)

        return handle

    async def main() -> None:
        async with _serving(make) as (server, url):
            pool = _pool(1, read=0.2)
            with pytest.raises(ExchangeTimeout, match="ReadTimeout"):
                await _get(pool, url)
            assert await _get(pool, url) == (200, b"{}")  # on a new connection: the old one was dropped
            assert server.connections == 2
            await pool.aclose()

    asyncio.run(main())


def test_a_kept_connection_times_out_its_later_request_from_that_request_on() -> None:
    # One read timer per connection outlives each request: a request sent late in the timer's period
    # still gets its whole timeout, and a silent answer to it still times out.
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                if len(server.requests) == 3:
                    await asyncio.sleep(10)  # the third request never gets an answer
                await asyncio.sleep(0.25 if len(server.requests) == 2 else 0)
                writer.write(_ok())

        return handle

    async def main() -> None:
        async with _serving(make) as (server, url):
            pool = _pool(1, read=0.4)
            assert await _get(pool, url) == (200, b"{}")
            await asyncio.sleep(0.3)  # the first request's timer is due in 0.1 s
            assert await _get(pool, url) == (200, b"{}")  # answered after 0.25 s: not a timeout
            assert server.connections == 1
            started = asyncio.get_running_loop().time()
            with pytest.raises(ExchangeTimeout, match="ReadTimeout"):
                await _get(pool, url)
            assert 0.35 < asyncio.get_running_loop().time() - started < 2.0
            await pool.aclose()

    asyncio.run(main())


def test_a_slow_but_steady_body_is_not_a_timeout() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
            for byte in b"abcdef":
                await asyncio.sleep(0.1)
                writer.write(bytes([byte]))

        return handle

    async def main() -> None:
        async with _serving(make) as (_, url):
            pool = _pool(1, read=0.3)  # the whole body takes 0.6 s, no gap is longer than 0.1 s
            assert await _get(pool, url) == (200, b"abcdef")
            await pool.aclose()

    asyncio.run(main())


def test_waiting_for_a_connection_honours_the_pool_timeout() -> None:
    async def main() -> None:
        async with _serving(_keepalive(delay=0.5)) as (_, url):
            pool = _pool(1, pool=0.05)
            held = asyncio.ensure_future(_get(pool, url))
            await asyncio.sleep(0.05)
            with pytest.raises(ExchangeConnectError, match="PoolTimeout"):
                await _get(pool, url)
            assert await held == (200, b"{}")
            await pool.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", ExchangeLost),  # closed without a response
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", ExchangeLost),  # closed mid-body
        (b"garbage\r\n\r\n", ExchangeLost),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 999999\r\n\r\n", ExchangeTooLarge),
    ],
)
def test_broken_answers_are_typed_and_the_connection_is_dropped(
    answer: bytes, error: type[Exception]
) -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            if len(server.requests) == 1:
                writer.write(answer)
                return  # and close
            writer.write(_ok())

        return handle

    async def main() -> None:
        async with _serving(make) as (server, url):
            pool = _pool(1)
            with pytest.raises(error):
                await _get(pool, url, cap=1000)
            assert await _get(pool, url) == (200, b"{}")
            assert server.connections == 2
            await pool.aclose()

    asyncio.run(main())


def test_cancelling_a_request_frees_its_slot_and_drops_its_connection() -> None:
    async def main() -> None:
        async with _serving(_keepalive(delay=0.3)) as (server, url):
            pool = _pool(1, pool=2.0)
            task = asyncio.ensure_future(_get(pool, url))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await _get(pool, url) == (200, b"{}")
            assert server.connections == 2  # the cancelled exchange's connection was not reused
            await pool.aclose()

    asyncio.run(main())


def test_idle_connections_expire() -> None:
    async def main() -> None:
        async with _serving(_keepalive()) as (server, url):
            pool = H1Exchange(
                max_connections=1, timeout=httpx.Timeout(5.0), user_agent="t", keepalive_expiry=0.05
            )
            await _get(pool, url)
            await asyncio.sleep(0.1)
            await _get(pool, url)
            assert server.connections == 2
            await pool.aclose()
            with pytest.raises(ExchangeConnectError, match="closed"):
                await _get(pool, url)

    asyncio.run(main())


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        ("http://127.0.0.1:8080/v1/vms/a%2Fb", {"limit": "5"}, ("127.0.0.1:8080", "/v1/vms/a%2Fb?limit=5")),
        ("https://api.example/v1/x y?z=1#frag", None, ("api.example", "/v1/x%20y?z=1")),
        ("https://api.example:443/v1", (("a", "1"), ("a", "2")), ("api.example", "/v1?a=1&a=2")),
        ("http://h?x=1", {"y": "a b"}, ("h", "/?x=1&y=a+b")),
        ("http://[::1]:8080", None, ("[::1]:8080", "/")),
    ],
)
def test_request_targets_and_host_headers(url: str, params: Params | None, expected: tuple[str, str]) -> None:
    _, host, target = _split(url, params)
    assert (host, target) == expected


class _DrainingTransport(asyncio.Transport):
    """A transport whose write buffer empties by one step every ``interval`` seconds, then answers:
    an upload that keeps leaving for longer than the read timeout (no kernel buffers involved)."""

    def __init__(self, connection: _Connection, steps: int, interval: float) -> None:
        super().__init__()
        self.connection = connection
        self.left = steps
        self.interval = interval
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        asyncio.get_running_loop().call_later(self.interval, self._drain)

    def _drain(self) -> None:
        if self.closed:
            return
        self.left -= 1
        if self.left > 0:
            asyncio.get_running_loop().call_later(self.interval, self._drain)
        else:
            self.connection.data_received(_ok())

    def get_write_buffer_size(self) -> int:
        return self.left * 1024

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True


def test_a_slow_but_steady_upload_is_not_a_timeout() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        connection = _Connection(loop)
        # 20 steps of 50 ms: the upload takes ~1 s against a 0.3 s inactivity timeout.
        connection.connection_made(_DrainingTransport(connection, steps=20, interval=0.05))
        parser = ResponseParser(cap=100)
        started = loop.time()
        await connection.exchange(b"PUT / HTTP/1.1\r\n\r\n", parser, 0.3)
        assert parser.status == 200 and loop.time() - started >= 0.9
        # With no progress at all the same timeout fires.
        stalled = _Connection(loop)
        stalled.connection_made(_DrainingTransport(stalled, steps=1000, interval=10.0))
        with pytest.raises(TimeoutError):
            await stalled.exchange(b"PUT / HTTP/1.1\r\n\r\n", ResponseParser(cap=100), 0.3)

    asyncio.run(main())


def test_a_reset_during_a_body_read_until_close_is_lost_not_a_short_body() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"partial":')
            await writer.drain()
            await asyncio.sleep(0.05)
            # Linger 0: the close is a reset (RST), not an end of stream (FIN).
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            writer.transport.abort()

        return handle

    async def main() -> None:
        async with _serving(make) as (_, url):
            pool = _pool(1)
            with pytest.raises(ExchangeLost, match="reset"):
                await _get(pool, url)
            await pool.aclose()

    asyncio.run(main())


def test_closing_the_pool_mid_response_fails_the_request_rather_than_cutting_its_body() -> None:
    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"partial":')
            await asyncio.sleep(10)

        return handle

    async def main() -> None:
        async with _serving(make) as (_, url):
            pool = _pool(1)
            request = asyncio.ensure_future(_get(pool, url))
            await asyncio.sleep(0.1)
            await pool.aclose()
            with pytest.raises(ExchangeLost):
                await request

    asyncio.run(main())


def test_a_connection_whose_request_was_answered_before_it_was_all_sent_is_not_reused() -> None:
    body = b"x" * (32 << 20)  # far more than the socket buffers hold

    def make(server: _Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if server.connections == 1:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(_ok())  # an early answer, keep-alive, and the body is never read
                await asyncio.sleep(10)
            while True:
                await server.read_request(reader)
                writer.write(_ok())

        return handle

    async def main() -> None:
        async with _serving(make) as (server, url):
            pool = _pool(1, read=1.0)
            reply = await pool.exchange("PUT", url, params=None, headers={}, content=body, cap=100)
            assert reply.status == 200
            assert await _get(pool, url) == (200, b"{}")  # not queued behind the unread body
            assert server.connections == 2
            await pool.aclose()

    asyncio.run(main())


def test_a_header_that_cannot_be_sent_is_refused_before_anything_is_sent() -> None:
    async def main() -> None:
        async with _serving(_keepalive()) as (server, url):
            pool = _pool(1)
            secret = "key-with\r\nInjected: yes"
            with pytest.raises(ExchangeConnectError, match="InvalidRequest") as refused:
                await pool.exchange(
                    "GET", url, params=None, headers={"Authorization": secret}, content=None, cap=100
                )
            assert "key-with" not in str(refused.value)
            assert server.connections == 0
            assert await _get(pool, url) == (200, b"{}")  # the slot came back
            await pool.aclose()

    asyncio.run(main())


def test_slots_are_taken_at_once_while_free_then_handed_over_in_arrival_order() -> None:
    async def main() -> None:
        slots = _Slots(2)
        assert slots.take_now() and slots.take_now() and not slots.take_now()
        order: list[str] = []

        async def wait(name: str) -> None:
            await slots.take(5.0)
            order.append(name)

        first, second = asyncio.ensure_future(wait("first")), asyncio.ensure_future(wait("second"))
        await _turns()
        slots.release()  # goes to the longest waiter, not back to the free count
        await _turns()
        assert order == ["first"] and slots.free == 0 and not slots.take_now()
        slots.release()
        await asyncio.gather(first, second)
        assert order == ["first", "second"]
        slots.release()
        slots.release()
        assert slots.free == 2

    asyncio.run(main())


def test_a_slot_waiter_that_gives_up_takes_nothing_and_blocks_no_one() -> None:
    async def main() -> None:
        slots = _Slots(1)
        assert slots.take_now()
        with pytest.raises(TimeoutError):
            await slots.take(0.01)
        cancelled = asyncio.ensure_future(slots.take(5.0))
        await _turns()
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        slots.release()
        assert slots.free == 1 and slots.take_now()  # no stale waiter holds the fast path back
        # Handed a slot just as it is cancelled: either it keeps the slot (``wait_for`` returns a result
        # that arrived with the cancel) and gives it back when done, or the slot is passed on: never lost.
        late = asyncio.ensure_future(slots.take(5.0))
        await _turns()
        slots.release()
        late.cancel()
        try:
            await late
        except asyncio.CancelledError:
            pass
        else:
            slots.release()
        assert slots.free == 1

    asyncio.run(main())


async def _turns() -> None:
    for _ in range(5):  # let woken waiters run (a timed wait resumes through a few loop turns)
        await asyncio.sleep(0)


def test_warm_opens_connections_ahead_of_a_burst_within_the_pool_size() -> None:
    async def main() -> None:
        async with _serving(_keepalive(delay=0.02)) as (server, url):
            pool = _pool(4)
            await _get(pool, f"{url}/v1/vms")  # one connection already open and idle
            pool.warm(f"{url}/v1/anything", 10)  # asks for more than the pool may hold
            for _ in range(100):
                if server.connections >= 4:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert server.connections == 4  # topped up to the pool's size, not to 10 nor 1 + 10
            pool.warm(url, 4)  # enough open already: nothing more
            replies = await asyncio.gather(*(_get(pool, f"{url}/v1/vms") for _ in range(4)))
            assert replies == [(200, b"{}")] * 4
            assert server.connections == 4  # the burst found its connections open
            await pool.aclose()

    asyncio.run(main())


def test_warm_is_best_effort_and_closing_the_pool_stops_it() -> None:
    async def main() -> None:
        pool = _pool(2)
        pool.warm("http://127.0.0.1:9/refused", 2)  # nothing listens: no error here
        pool.warm("ftp://127.0.0.1/x", 2)  # a URL no request could use: ignored
        await asyncio.sleep(0.05)
        with pytest.raises(ExchangeConnectError, match="ConnectError"):
            await _get(pool, "http://127.0.0.1:9/refused")  # the request reports the failure itself

        silent = socket.socket()  # accepts nothing: connects hang in the backlog or time out
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        try:
            port = silent.getsockname()[1]
            pool2 = _pool(8, connect=30.0)
            for _ in range(3):  # fill the backlog so later connects hang
                pool2.warm(f"http://127.0.0.1:{port}", 8)
            await asyncio.sleep(0.01)
            await asyncio.wait_for(pool2.aclose(), 5)  # pending warm-ups are cancelled, not awaited out
        finally:
            silent.close()
        await pool.aclose()
        async with _serving(_keepalive()) as (server, url):
            pool.warm(url, 2)  # after close: nothing starts
            await asyncio.sleep(0.05)
            assert server.connections == 0

    asyncio.run(main())


def test_a_burst_right_after_warm_waits_for_the_connections_under_way_instead_of_doubling_them() -> None:
    async def main() -> None:
        async with _serving(_keepalive(delay=0.01)) as (server, url):
            pool = _pool(6)
            pool.warm(url, 6)
            replies = await asyncio.gather(*(_get(pool, f"{url}/v1/vms") for _ in range(6)))  # at once
            assert replies == [(200, b"{}")] * 6
            assert server.connections == 6  # each request took a connection warm was opening
            idle = [c for conns in pool._idle.values() for c in conns]
            assert len(idle) == 6 and all(c._parser is None for c in idle)  # no response kept while idle
            await pool.aclose()

        pool = _pool(2)
        pool.warm("http://127.0.0.1:9/refused", 2)  # the connects under way fail
        for _ in range(2):
            with pytest.raises(ExchangeConnectError, match="ConnectError"):
                await _get(pool, "http://127.0.0.1:9/refused")  # told so, each connects and reports
        await pool.aclose()

    asyncio.run(main())
