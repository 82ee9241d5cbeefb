"""Fault injection: configured rates are honoured (seeded), latency is applied, drops do the work."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from reconciler.emulator import create_app
from reconciler.emulator.arker import EmulatorApp
from reconciler.emulator.faults import ARRIVAL, FaultInjector, FaultKind, FaultPlan, InjectedResponse
from reconciler.emulator.stats import OperationStats

from .conftest import KEY_A, client_for, make_settings

pytestmark = pytest.mark.anyio

N = 400


@pytest.fixture
async def faulty(
    request: pytest.FixtureRequest, checker: Any
) -> AsyncIterator[tuple[EmulatorApp, httpx.AsyncClient]]:
    app = create_app(make_settings(**request.param))
    try:
        async with client_for(app, KEY_A, checker) as client:
            yield app, client
    finally:
        app.state.close()


def _user_vms(app: EmulatorApp) -> int:
    return sum(1 for vm in app.state.arker.store.vms.values() if not vm.golden)


async def _statuses(client: httpx.AsyncClient, count: int) -> list[int]:
    return [(await client.get("/v1/whoami")).status_code for _ in range(count)]


@pytest.mark.parametrize("faulty", [{"fail_rate": 0.3, "seed": 11}], indirect=True)
async def test_fail_rate_is_honoured(faulty: tuple[EmulatorApp, httpx.AsyncClient]) -> None:
    _, client = faulty
    outcomes = Counter(await _statuses(client, N))
    failed = outcomes[429] + outcomes[503]
    assert set(outcomes) <= {200, 429, 503}
    assert abs(failed / N - 0.3) < 0.07, outcomes
    assert abs(outcomes[429] / failed - 0.5) < 0.15, outcomes  # the default rate_limited share
    stats = (await client.get("http://emulator.test/_emulator/stats")).json()["operations"]["whoami"]
    assert stats["requests"] == N
    assert stats["injected_rate_limited"] == outcomes[429]
    assert stats["injected_unavailable"] == outcomes[503]
    assert stats["statuses"] == {str(code): count for code, count in sorted(outcomes.items())}


@pytest.mark.parametrize(
    "faulty", [{"fail_rate": 1.0, "rate_limited_share": 1.0, "retry_after_seconds": 7}], indirect=True
)
async def test_injected_failures_carry_retry_after(faulty: tuple[EmulatorApp, httpx.AsyncClient]) -> None:
    _, client = faulty
    limited = await client.get("/v1/whoami")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["retry_after_seconds"] == 7
    assert limited.json()["error"]["details"] == {"limiter": "arker"}
    # health declares no 429, so its injected failure is a 503 (still with Retry-After)
    health = await client.get("/v1/health")
    assert health.status_code == 503 and health.headers["retry-after"] == "7"


@pytest.mark.parametrize("faulty", [{"fail_rate": 0.5, "seed": 5}], indirect=True)
async def test_failures_happen_before_the_work(faulty: tuple[EmulatorApp, httpx.AsyncClient]) -> None:
    app, client = faulty
    statuses = [
        (await client.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": f"f{i}"})).status_code
        for i in range(100)
    ]
    assert 0 < statuses.count(200) < 100
    assert _user_vms(app) == statuses.count(200)


def test_seeded_runs_are_reproducible() -> None:
    import asyncio

    from .conformance import ConformanceChecker

    async def sequence() -> list[int]:
        app = create_app(make_settings(fail_rate=0.4, seed=99))
        try:
            async with client_for(app, KEY_A, ConformanceChecker()) as client:
                return await _statuses(client, 60)
        finally:
            app.state.close()

    first, second = asyncio.run(sequence()), asyncio.run(sequence())
    assert first == second and len(set(first)) > 1


@pytest.mark.parametrize("faulty", [{"ambiguous_rate": 0.25, "seed": 3}], indirect=True)
async def test_ambiguous_drops_do_the_work(faulty: tuple[EmulatorApp, httpx.AsyncClient]) -> None:
    app, client = faulty
    answered = dropped = 0
    for i in range(N // 2):
        try:
            response = await client.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": f"vm-{i}"})
        except httpx.RemoteProtocolError:
            dropped += 1
        else:
            assert response.status_code == 200
            answered += 1
    assert abs(dropped / (N // 2) - 0.25) < 0.08, dropped
    assert _user_vms(app) == N // 2  # every dropped fork still created its VM
    stats = app.state.stats.snapshot()["operations"]["fork"]
    assert (stats["dropped"], stats["requests"]) == (dropped, N // 2)
    assert stats["statuses"] == {"200": answered}


@pytest.mark.parametrize("faulty", [{"latency_ms": 60}], indirect=True)
async def test_latency_is_applied(faulty: tuple[EmulatorApp, httpx.AsyncClient]) -> None:
    _, client = faulty
    started = time.perf_counter()
    await client.get("/v1/whoami")
    assert time.perf_counter() - started >= 0.06


@pytest.mark.parametrize(
    "faulty", [{"latency_ops": {"fork": 250, "get": 0}, "latency_ms": 150}], indirect=True
)
async def test_latency_per_operation_overrides_the_global_value(
    faulty: tuple[EmulatorApp, httpx.AsyncClient],
) -> None:
    _, client = faulty
    timings = {}
    for label, call in (
        ("fork", lambda: client.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "x"})),
        ("getVm", lambda: client.get("/v1/vms/x")),
        ("whoami", lambda: client.get("/v1/whoami")),
    ):
        started = time.perf_counter()
        assert (await call()).status_code == 200
        timings[label] = time.perf_counter() - started
    assert timings["fork"] >= 0.25
    assert timings["getVm"] < 0.15  # alias "get" = getVm, set to 0
    assert timings["whoami"] >= 0.15


@pytest.mark.parametrize("faulty", [{"latency_ops": {"fork": 300, "get": 0}}], indirect=True)
async def test_latency_is_the_time_to_answer_and_the_work_runs_meanwhile(
    faulty: tuple[EmulatorApp, httpx.AsyncClient],
) -> None:
    _, client = faulty
    seen_during_fork: list[int] = []
    started = time.perf_counter()

    async def look() -> None:
        await anyio.sleep(0.1)  # the fork was received and is still waiting to answer
        seen_during_fork.append((await client.get("/v1/vms/early")).status_code)

    async with anyio.create_task_group() as group:
        group.start_soon(look)
        reply = await client.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "early"})
    assert reply.status_code == 200
    assert time.perf_counter() - started >= 0.3  # the answer waited for the latency
    assert seen_during_fork == [200]  # but the VM existed before the answer left


def test_unknown_latency_operation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        create_app(make_settings(latency_ops={"frobnicate": 5}))


async def test_stats_and_reset_need_no_key(
    app: EmulatorApp, anon: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await api.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "keep-me"})
    await api.get("/v1/vms/keep-me")
    await api.get("/v1/vms/keep-me")
    await api.post("/v1/filesystems", json={"name": "fs"})
    stats = (await anon.get("http://emulator.test/_emulator/stats")).json()
    assert stats["operations"]["getVm"]["requests"] == 2
    assert stats["operations"]["fork"]["statuses"] == {"200": 1}
    assert stats["totals"]["requests"] == 4
    reset = await anon.post("http://emulator.test/_emulator/reset")
    assert reset.json() == {"reset": True}
    assert (await api.get("/v1/vms/keep-me")).status_code == 404
    assert (await api.get("/v1/filesystems")).json()["filesystems"] == []
    assert (await api.get("/v1/vms/ubuntu")).status_code == 200  # goldens are back
    after = (await anon.get("http://emulator.test/_emulator/stats")).json()
    assert after["totals"]["requests"] == 3 and set(after["operations"]) == {"getVm", "listFilesystems"}


class _OneOperation:
    def operation_for(self, method: str, path: str) -> str | None:
        return "getVm"

    def injected_failure(self, operation: str, kind: FaultKind, retry_after_seconds: int) -> InjectedResponse:
        raise AssertionError("no failures are configured")


async def _answered_after(stamp_offset: float | None, latency: float) -> float:
    """Seconds until the answer of a request whose scope says it arrived ``stamp_offset`` s ago."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    injector = FaultInjector(inner, _OneOperation(), FaultPlan(latency_seconds=latency), OperationStats())
    loop = asyncio.get_running_loop()
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/v1/vms/x"}
    if stamp_offset is not None:
        scope["extensions"] = {ARRIVAL: {"time": loop.time() - stamp_offset}}
    answered: list[float] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            answered.append(loop.time())

    started = loop.time()
    await injector(scope, _no_body, send)
    return answered[0] - started


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_latency_counts_from_the_arrival_the_server_reports() -> None:
    # Waited 0.2 s in the socket already: answered 0.1 s later, not 0.3 s.
    assert 0.05 <= await _answered_after(0.2, 0.3) < 0.25
    # Without a stamp the clock starts here; a stamp from the future never delays the answer.
    assert await _answered_after(None, 0.2) >= 0.19
    assert 0.19 <= await _answered_after(-5.0, 0.2) < 1.0
