"""The emulator's HTTP protocol sends a response's head and body in one write, holds a response until its
release time (the fault layer's latency), and holds nothing else."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette

from reconciler.emulator import EmulatorSettings, running
from reconciler.emulator._protocol import HttpProtocol, _HeldHeadTransport
from reconciler.emulator._release import _LIBC, Releases, _ThreadAlarm, _TimerFdAlarm
from reconciler.emulator.faults import ARRIVAL
from reconciler.emulator.server import _config


class _Recording(asyncio.Transport):
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(("writelines", [bytes(d) for d in list_of_data]))

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def test_a_head_leaves_with_the_body_in_one_call() -> None:
    inner = _Recording()
    transport = _HeldHeadTransport(inner)
    transport.write(HEAD)
    assert inner.calls == []
    transport.write(b"{}")
    assert inner.calls == [("writelines", [HEAD, b"{}"])]
    transport.write(b"more")  # not a head: straight through
    assert inner.calls[-1] == ("write", b"more")


def test_an_interim_response_is_not_held() -> None:
    inner = _Recording()
    _HeldHeadTransport(inner).write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert inner.calls == [("write", b"HTTP/1.1 100 Continue\r\n\r\n")]


def test_a_held_head_leaves_on_flush_or_close_and_is_dropped_on_abort() -> None:
    inner = _Recording()
    transport = _HeldHeadTransport(inner)
    transport.write(HEAD)
    transport.flush()
    transport.flush()  # nothing left to send
    transport.write(HEAD)
    transport.close()
    assert inner.calls == [("write", HEAD), ("write", HEAD), ("close", None)]
    inner.calls.clear()
    transport.write(HEAD)
    transport.abort()
    assert inner.calls == [("abort", None)]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)


def test_the_server_runs_the_protocol() -> None:
    assert _config(Starlette(), EmulatorSettings()).http is HttpProtocol


def test_bodies_heads_and_keep_alive_over_a_real_socket() -> None:
    settings = EmulatorSettings()
    key = settings.primary_api_key
    with running(settings) as url, httpx.Client(headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(3):  # one keep-alive connection, several responses in turn
            response = client.get(f"{url}/v1/vms", params={"limit": 1})
            assert response.status_code == 200
            assert int(response.headers["content-length"]) == len(response.content)
            assert "vms" in response.json()
        head = client.head(f"{url}/v1/health")  # a response with a head and no body write
        assert head.status_code == 405  # health takes GET only: an enveloped 405, its body not sent
        assert head.content == b""
        assert client.get(f"{url}/v1/health").status_code == 200


def test_each_request_carries_when_its_first_bytes_were_read() -> None:
    seen: list[tuple[float, float]] = []

    class App:
        state = SimpleNamespace()  # the server closes ``state.close`` when there is one

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append((scope["extensions"][ARRIVAL]["time"], asyncio.get_running_loop().time()))
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    def factory(_: EmulatorSettings) -> Starlette:
        return cast(Starlette, App())  # any ASGI app serves

    with running(EmulatorSettings(), app_factory=factory) as url, httpx.Client() as client:
        for _ in range(3):  # the same keep-alive connection: each request gets its own stamp
            assert client.get(f"{url}/v1/anything").status_code == 204
    assert len(seen) == 3
    assert all(arrived <= called for arrived, called in seen)
    assert seen[0][0] <= seen[1][0] <= seen[2][0]


def test_a_held_response_leaves_at_its_release_time_in_one_call() -> None:
    inner = _Recording()
    transport = _HeldHeadTransport(inner, releases=_NO_TIMER)
    now = time.monotonic()
    transport.hold_until(now + 60)
    transport.write(HEAD)
    transport.write(b"{}")
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # an interim response is never held
    assert inner.calls == [("write", b"HTTP/1.1 100 Continue\r\n\r\n")]
    assert transport.release(now + 59.9) == now + 60  # not yet due: nothing leaves
    assert transport.holding and len(inner.calls) == 1
    assert transport.release(now + 60) is None
    assert inner.calls[1:] == [("writelines", [HEAD, b"{}"])]
    assert not transport.holding
    transport.write(b"more")  # nothing held: straight through
    assert inner.calls[-1] == ("write", b"more")


def test_a_close_waits_for_the_held_responses_and_an_abort_drops_them() -> None:
    inner = _Recording()
    released: list[bool] = []
    transport = _HeldHeadTransport(inner, releases=_NO_TIMER)
    transport.on_released = lambda: released.append(True)
    now = time.monotonic()
    transport.hold_until(now + 10)
    transport.write(HEAD)
    transport.write(b"{}")
    transport.hold_until(now + 20)  # the next response of the connection, later
    transport.write(HEAD)
    transport.close()
    assert inner.calls == [] and transport.is_closing()
    assert transport.release(now + 15) == now + 20  # the first leaves, the second waits
    assert inner.calls == [("writelines", [HEAD, b"{}"])] and released == []
    assert transport.release(now + 20) is None
    assert inner.calls[1:] == [("writelines", [HEAD]), ("close", None)] and released == [True]
    inner.calls.clear()
    transport.hold_until(time.monotonic() + 10)
    transport.write(HEAD)
    transport.write(b"{}")
    transport.abort()
    assert inner.calls == [("abort", None)] and not transport.holding


def test_a_release_time_already_past_holds_nothing() -> None:
    inner = _Recording()
    transport = _HeldHeadTransport(inner, releases=_NO_TIMER)
    transport.hold_until(time.monotonic() - 1)
    transport.write(HEAD)
    transport.write(b"{}")
    assert inner.calls == [("writelines", [HEAD, b"{}"])]


class _Holder:
    """Records each release as (name, due, now); asks to be called again while not due; ``broken`` raises."""

    def __init__(self, log: list[tuple[str, float, float]], due: float, name: str = "") -> None:
        self.log, self.due, self.name = log, due, name

    def release(self, now: float) -> float | None:
        if self.name == "broken":
            raise RuntimeError("transport gone")
        if now < self.due:
            return self.due  # asked again later, as a transport that holds it would be
        self.log.append((self.name, self.due, now))
        return None


def _timer_fd(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> _TimerFdAlarm:
    if _LIBC is None:
        pytest.skip("no timerfd on this platform")
    return _TimerFdAlarm(loop, callback, _LIBC)


def _is_timer_fd(fd: int) -> bool:
    """Whether ``fd`` is (still) a timer fd: a closed number may already be reused by something else."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[timerfd]"
    except OSError:
        return False


_ALARMS = [pytest.param(_timer_fd, id="timerfd"), pytest.param(_ThreadAlarm, id="thread")]


def _kept(factory: Callable[..., Any], kept: list[Any]) -> Callable[..., Any]:
    """``factory``, keeping what it makes in ``kept``."""

    def make(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> Any:
        kept.append(factory(loop, callback))
        return kept[-1]

    return make


@pytest.mark.parametrize("alarm", _ALARMS)
def test_holders_due_at_the_same_time_leave_in_one_release(alarm: Any) -> None:
    released: list[tuple[str, float, float]] = []

    async def main() -> None:
        releases = Releases(asyncio.get_running_loop(), alarm=alarm)
        due = time.monotonic() + 0.02
        for _ in range(5):
            releases.add(_Holder(released, due), due)
        await asyncio.sleep(0.06)

    asyncio.run(main())
    assert len(released) == 5 and len({now for _, _, now in released}) == 1  # one call released all five
    assert released[0][2] >= released[0][1]  # never before the time asked


@pytest.mark.parametrize("alarm", _ALARMS)
def test_a_holder_that_fails_to_release_keeps_no_other_answer_back(alarm: Any) -> None:
    released: list[tuple[str, float, float]] = []

    async def main() -> None:
        releases = Releases(asyncio.get_running_loop(), alarm=alarm)
        due = time.monotonic() + 0.01
        for name in ("first", "broken", "last"):
            releases.add(_Holder(released, due, name), due)
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert [name for name, _, _ in released] == ["first", "last"]


@pytest.mark.parametrize("alarm", _ALARMS)
def test_releases_are_never_early_and_in_time_order(alarm: Any) -> None:
    released: list[tuple[str, float, float]] = []
    start = time.monotonic()

    async def main() -> None:
        releases = Releases(asyncio.get_running_loop(), alarm=alarm)
        for offset in (0.030, 0.010, 0.0105, 0.090):  # out of order: the earliest goes first
            releases.add(_Holder(released, start + offset), start + offset)
        await asyncio.sleep(0.04)
        sooner = time.monotonic() + 0.005  # sooner than the time the alarm is set for: it rings sooner
        releases.add(_Holder(released, sooner, "sooner"), sooner)
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert [name for name, _, _ in released] == ["", "", "", "sooner", ""]
    assert [due for _, due, _ in released] == sorted(due for _, due, _ in released)
    assert all(now >= due for _, due, now in released)  # never before its time
    assert released[3][2] < start + 0.090  # not kept for the later time the alarm was set for


def test_the_timer_fd_is_closed_when_nothing_is_held() -> None:
    async def main() -> tuple[int | None, int | None, int | None]:
        loop = asyncio.get_running_loop()
        alarm: list[_TimerFdAlarm] = []
        releases = Releases(loop, alarm=_kept(_timer_fd, alarm))
        before = alarm[0]._fd
        due = time.monotonic() + 0.01
        releases.add(_Holder([], due), due)
        held = alarm[0]._fd
        await asyncio.sleep(0.04)
        return before, held, alarm[0]._fd

    before, held, after = asyncio.run(main())
    assert before is None and held is not None and after is None
    assert not _is_timer_fd(held)  # closed, not leaked


def test_a_loop_closed_with_answers_held_leaves_no_timer_fd_open() -> None:
    opened: list[int | None] = []

    async def main() -> None:
        alarm: list[_TimerFdAlarm] = []
        releases = Releases(asyncio.get_running_loop(), alarm=_kept(_timer_fd, alarm))
        due = time.monotonic() + 600  # still held when the loop closes
        releases.add(_Holder([], due), due)
        opened.append(alarm[0]._fd)

    asyncio.run(main())
    gc.collect()  # the closed loop, its reader and the alarm form a cycle
    assert opened[0] is not None and not _is_timer_fd(opened[0])


def test_the_alarm_thread_ends_with_its_loop() -> None:
    released: list[tuple[str, float, float]] = []

    async def main() -> threading.Thread | None:
        alarm: list[_ThreadAlarm] = []
        releases = Releases(asyncio.get_running_loop(), alarm=_kept(_ThreadAlarm, alarm))
        due = time.monotonic() + 0.01
        releases.add(_Holder(released, due), due)
        await asyncio.sleep(0.04)
        return alarm[0]._thread

    thread = asyncio.run(main())
    assert len(released) == 1
    assert thread is not None and thread.is_alive()  # idle, waiting for more
    thread.join(5)  # the loop is closed: the alarm thread notices and ends
    assert not thread.is_alive()


def test_latency_holds_answers_over_a_real_socket_with_keep_alive() -> None:
    settings = EmulatorSettings(latency_ms=80)
    key = settings.primary_api_key
    with running(settings) as url, httpx.Client(headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(3):  # one keep-alive connection: each answer waits for its own latency
            started = time.monotonic()
            response = client.get(f"{url}/v1/vms", params={"limit": 1})
            assert time.monotonic() - started >= 0.08
            assert response.status_code == 200 and "vms" in response.json()
        started = time.monotonic()
        closing = client.get(f"{url}/v1/health", headers={"Connection": "close"})
        assert time.monotonic() - started >= 0.08  # the close waited for the held answer
        assert closing.status_code == 200 and closing.json()
        assert client.get(f"{url}/v1/health").status_code == 200  # a new connection after the close


class _NoTimer:
    """Releases that never fire: the test calls ``release`` itself."""

    def add(self, holder: Any, when: float) -> None:
        pass


_NO_TIMER = cast(Releases, _NoTimer())
