"""The emulator's HTTP protocol sends a response's head and body in one write, and holds nothing else."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import httpx
from starlette.applications import Starlette

from reconciler.emulator import EmulatorSettings, running
from reconciler.emulator._protocol import HttpProtocol, _HeldHeadTransport
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
    assert _config(object(), EmulatorSettings()).http is HttpProtocol  # type: ignore[arg-type]


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
