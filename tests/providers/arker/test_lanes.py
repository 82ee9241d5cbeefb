"""LaneTransport: one connection per request in flight, over a real loopback socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings, running
from reconciler.providers.arker import ArkerClient, ConnectionSettings
from reconciler.providers.arker._lanes import LaneTransport

KEY = "k-lanes"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    settings = EmulatorSettings(api_keys=(ApiKeyGrant(key=SecretStr(KEY), org="lanes"),), latency_ms=20)
    with running(settings) as base:
        yield base


def _get(client: httpx.AsyncClient, url: str) -> asyncio.Future[httpx.Response]:
    return asyncio.ensure_future(client.get(f"{url}/v1/health", headers={"Authorization": f"Bearer {KEY}"}))


def test_many_concurrent_requests_share_a_bounded_set_of_connections(url: str) -> None:
    async def main() -> tuple[list[int], int, int]:
        transport = LaneTransport(4)
        async with httpx.AsyncClient(transport=transport) as client:
            replies = await asyncio.gather(*(_get(client, url) for _ in range(40)))
            lanes = len(transport._all)
            free = len(transport._free)
        return [r.status_code for r in replies], lanes, free

    statuses, lanes, free = asyncio.run(main())
    assert statuses == [200] * 40
    assert lanes == 4  # never more connections than lanes, and all of them used
    assert free == 4  # every lane came back


def test_a_response_closed_unread_frees_its_lane(url: str) -> None:
    async def main() -> int:
        transport = LaneTransport(1)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):  # with one lane, a leaked lane would hang the second request
                request = client.build_request("GET", f"{url}/v1/health")
                response = await asyncio.wait_for(client.send(request, stream=True), 5)
                await response.aclose()
            return len(transport._free)

    assert asyncio.run(main()) == 1


def test_waiting_for_a_lane_honours_the_pool_timeout(url: str) -> None:
    async def main() -> None:
        transport = LaneTransport(1)
        timeout = httpx.Timeout(5.0, pool=0.01)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            held = await client.send(client.build_request("GET", f"{url}/v1/health"), stream=True)
            try:
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(f"{url}/v1/health")
            finally:
                await held.aclose()
            assert (await client.get(f"{url}/v1/health")).status_code == 200

    asyncio.run(main())


def test_a_failed_connect_frees_its_lane() -> None:
    async def main() -> int:
        transport = LaneTransport(1)
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(2):
                with pytest.raises(httpx.ConnectError):
                    await client.get("http://127.0.0.1:9/unreachable")
            return len(transport._free)

    assert asyncio.run(main()) == 1


def test_the_client_uses_lanes_unless_a_proxy_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    settings = ConnectionSettings.from_env({"ARKER_API_KEY": KEY, "ARKER_BASE_URL": "http://127.0.0.1:1/api"})

    def transport_of(client: ArkerClient) -> object:
        return client._core.http._transport

    async def main() -> tuple[object, object]:
        async with ArkerClient(settings, max_connections=8) as plain:
            first = transport_of(plain)
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
        async with ArkerClient(settings) as proxied:
            second = transport_of(proxied)
        return first, second

    plain, proxied = asyncio.run(main())
    assert isinstance(plain, LaneTransport) and plain._capacity == 8
    assert not isinstance(proxied, LaneTransport)
