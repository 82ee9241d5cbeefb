"""The shared fault layer and stats on the FastVM platform; serving over a real socket."""

from __future__ import annotations

from collections import Counter

import fastvm
import httpx
import pytest

from reconciler.emulator import create_app, running
from reconciler.emulator.arker import EmulatorApp

from .conftest import KEY_A, http_client, make_settings

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("settings", [make_settings(fail_rate=0.3, seed=7)])
async def test_fail_rate_and_stats(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    statuses = Counter([(await api.get("/v1/vms")).status_code for _ in range(300)])
    failed = statuses[429] + statuses[503]
    assert set(statuses) <= {200, 429, 503} and abs(failed / 300 - 0.3) < 0.08, statuses
    limited = await api.get("/v1/vms")
    while limited.status_code != 429:
        statuses[limited.status_code] += 1
        limited = await api.get("/v1/vms")
    statuses[429] += 1
    assert limited.json()["error"]["code"] == "rate_limited" and "retry-after" in limited.headers
    stats = (await api.get("/_emulator/stats")).json()["operations"]["listVms"]
    assert stats["requests"] == sum(statuses.values())
    assert stats["statuses"] == {str(code): count for code, count in sorted(statuses.items())}
    assert (stats["injected_rate_limited"], stats["injected_unavailable"]) == (statuses[429], statuses[503])
    assert (await api.post("/_emulator/reset")).json() == {"reset": True}
    assert (await api.get("/_emulator/stats")).json()["operations"] == {}


@pytest.mark.parametrize("settings", [make_settings(ambiguous_rate=1.0)])
async def test_ambiguous_drop_does_the_work(app: EmulatorApp, api: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/v1/vms", json={"machineType": "c1m2", "metadata": {"k": "v"}})
    assert [vm.metadata for vm in app.state.fastvm.vms.values()] == [{"k": "v"}]


def test_latency_op_names_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown FastVM operation"):
        create_app(make_settings(latency_ops=(("nope", 5.0),)))
    assert create_app(make_settings(latency_ops=(("launch", 5.0),))).state.settings.platform == "fastvm"
    with pytest.raises(ValueError, match="in memory only"):
        create_app(make_settings(db_path="/tmp/x.db"))


async def test_reset_clears_state(app: EmulatorApp) -> None:
    async with http_client(app, KEY_A) as api:
        await api.post("/v1/vms", json={"machineType": "c1m2"})
        await api.post("/_emulator/reset")
        assert (await api.get("/v1/vms")).json() == []


def test_served_over_a_socket_for_the_sync_sdk() -> None:
    with running(make_settings()) as url:
        assert not url.endswith("/api")
        with fastvm.Fastvm(
            api_key=KEY_A, base_url=url, _strict_response_validation=True, max_retries=0
        ) as sdk:
            assert sdk.health().status == "ok"
            vm = sdk.vms.launch(machine_type="c1m2", extra_headers={"X-FastVM-Firewall-Format": "legacy"})
            assert vm.status == "running"
            assert httpx.get(f"{url}/_emulator/stats").json()["operations"]["launchVm"]["requests"] == 1
