"""Retries under the emulator's fault injection, ambiguous launches found again by metadata, and the
error mapping at the boundary (no httpx exception escapes)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from reconciler.emulator.arker import EmulatorApp
from reconciler.engine.errors import PermanentError, TransientError
from reconciler.providers.fastvm import (
    FastvmClient,
    FastvmConnectError,
    FastvmConnectionLost,
    FastvmError,
    FastvmProtocolError,
    FastvmSettings,
    LaunchRequest,
    RateLimited,
    RetryPolicy,
    Unavailable,
    UnknownAPIError,
    UnknownTransientAPIError,
)

from .conftest import KEY, make_client, make_settings

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("settings", [make_settings(fail_rate=0.4, seed=3)])
async def test_safe_operations_survive_failures(app: EmulatorApp) -> None:
    async with make_client(app, attempts=20) as client:
        for _ in range(30):
            assert await client.list_vms() == ()
        assert sum(client.stats.retries.values()) > 5
        stats = app.state.stats.snapshot()["operations"]["listVms"]
        assert stats["requests"] == client.stats.calls["listVms"]


@pytest.mark.parametrize("settings", [make_settings(ambiguous_rate=1.0)])
async def test_dropped_launch_is_ambiguous_and_not_replayed(app: EmulatorApp) -> None:
    async with make_client(app) as client:
        tags = {"arkerctl/lineage": "L1", "arkerctl/address": "vm.web"}
        with pytest.raises(FastvmConnectionLost) as lost:
            await client.launch_vm(LaunchRequest(machine_type="c1m2", metadata=tags))
        assert lost.value.ambiguous and "outcome unknown" in str(lost.value)
        assert client.stats.calls["launchVm"] == 1  # never replayed
    # The emulator did the work before dropping the connection.
    assert [vm.metadata for vm in app.state.fastvm.vms.values()] == [tags]


@pytest.mark.parametrize("settings", [make_settings(ambiguous_rate=0.5, seed=1)])
async def test_lost_launch_is_found_again_by_metadata(app: EmulatorApp) -> None:
    async with make_client(app, attempts=20) as client:
        for attempt in range(20):
            tags = {"arkerctl/lineage": "L2", "arkerctl/address": f"vm.db-{attempt}"}
            try:
                await client.launch_vm(LaunchRequest(machine_type="c1m2", metadata=tags))
            except FastvmConnectionLost:
                break
        else:
            pytest.fail("no launch was dropped")
        # Listing is safe to replay, so dropped list requests are retried until one answers.
        found = await client.list_vms(metadata=tags)
        assert [vm.metadata for vm in found] == [tags]


@pytest.mark.parametrize("settings", [make_settings(fail_rate=1.0, rate_limited_share=0.0)])
async def test_unsafe_launch_not_retried_after_503(app: EmulatorApp) -> None:
    async with make_client(app) as client:
        with pytest.raises(Unavailable) as refused:
            await client.launch_vm(LaunchRequest(machine_type="c1m2"))
        assert isinstance(refused.value, TransientError) and refused.value.retry_after == 0
        assert client.stats.calls["launchVm"] == 1
        with pytest.raises(Unavailable):
            await client.get_vm("x")
        assert client.stats.calls["getVm"] == 5  # safe: every attempt used


@pytest.mark.parametrize("settings", [make_settings(fail_rate=1.0, rate_limited_share=1.0)])
async def test_rate_limits_are_retried_even_for_launch(app: EmulatorApp) -> None:
    async with make_client(app, attempts=3) as client:
        with pytest.raises(RateLimited):
            await client.launch_vm(LaunchRequest(machine_type="c1m2"))
        assert client.stats.calls["launchVm"] == 3
    assert app.state.fastvm.vms == {}


def _mock_client(handler: Callable[[httpx.Request], httpx.Response], attempts: int = 2) -> FastvmClient:
    async def no_sleep(seconds: float) -> None:
        return None

    return FastvmClient(
        FastvmSettings.create(KEY, "http://127.0.0.1:9"),
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=attempts, sleep=no_sleep),
    )


@pytest.mark.parametrize(
    ("response", "expected", "permanent"),
    [
        (httpx.Response(502, text="<html>bad gateway</html>"), UnknownTransientAPIError, False),
        (httpx.Response(418, json={"error": {"code": "teapot", "message": "no"}}), UnknownAPIError, True),
        (httpx.Response(200, json={"id": 1}), FastvmProtocolError, True),
        (httpx.Response(200, content=b"not json"), FastvmProtocolError, True),
    ],
)
async def test_malformed_answers_are_typed(
    response: httpx.Response, expected: type[FastvmError], permanent: bool
) -> None:
    async with _mock_client(lambda request: response) as client:
        with pytest.raises(expected) as raised:
            await client.get_vm("vm-1")
    assert isinstance(raised.value, PermanentError) is permanent


async def test_connect_errors_and_key_scrubbing() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == KEY
        raise httpx.ConnectError(f"refused while sending {KEY}")

    async with _mock_client(refuse) as client:
        with pytest.raises(FastvmConnectError) as refused:
            await client.launch_vm(LaunchRequest(machine_type="c1m2"))
        assert KEY not in str(refused.value) and not refused.value.ambiguous
        assert client.stats.calls["launchVm"] == 2  # nothing was sent: safe to retry even a launch

    def leaky(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "bad_request", "message": f"bad key {KEY}", "details": {"k": KEY}}}
        return httpx.Response(400, content=json.dumps(body).encode())

    async with _mock_client(leaky) as client:
        with pytest.raises(FastvmError) as bad:
            await client.list_vms()
    assert KEY not in str(bad.value) and KEY not in json.dumps(getattr(bad.value, "details", {}))


async def test_delete_retry_that_finds_nothing_is_done() -> None:
    calls: list[int] = []

    def flaky_delete(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ReadTimeout("lost")
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "vm not found."}})

    async with _mock_client(flaky_delete) as client:
        await client.delete_vm("vm-1")
    assert len(calls) == 2
