"""Retries through the real client: which requests are repeated, how often, and after which delays."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from reconciler.engine.errors import TransientError
from reconciler.providers.arker import (
    ArkerClient,
    ArkerConnectError,
    ArkerConnectionLost,
    ArkerTimeoutError,
    ForkRequest,
    GatewayTimeout,
    IdempotencyConflict,
    RateLimited,
    Unavailable,
    UnknownTransientAPIError,
    Vm,
    fork_idempotency_key,
)
from reconciler.providers.arker.wire import RunRequest

from .fakes import FakeArker, RecordingSleep, error_response, fs_json, make_client, mount_json, vm_json

T = TypeVar("T")


def run(fake: FakeArker, call: Callable[[ArkerClient], Awaitable[T]], **kwargs: Any) -> T:
    async def go() -> T:
        async with make_client(fake, **kwargs) as client:
            return await call(client)

    return asyncio.run(go())


def dropped(request: httpx.Request | None = None) -> httpx.ReadError:
    return httpx.ReadError("connection reset by peer")


def test_get_retries_503_then_succeeds_with_backoff_delays() -> None:
    sleep = RecordingSleep()
    fake = FakeArker().on(
        "GET",
        "/api/v1/vms/vm_01",
        error_response("unavailable"),
        error_response("unavailable"),
        httpx.Response(200, json=vm_json()),
    )
    vm = run(fake, lambda c: c.get_vm("vm_01"), sleep=sleep, random_value=0.5)
    assert vm.vm_id == "vm_01"
    assert len(fake.requests) == 3
    # full jitter with random()=0.5 over ceilings 1.0, 2.0 (base 1.0, doubling)
    assert sleep.delays == [0.5, 1.0]


def test_retry_after_header_and_body_hint_set_the_delay() -> None:
    sleep = RecordingSleep()
    fake = FakeArker().on(
        "GET",
        "/api/v1/vms/vm_01",
        error_response("rate_limited", headers={"Retry-After": "7"}),
        error_response("rate_limited", retry_after_seconds=3, headers={"Retry-After": "99"}),
        httpx.Response(429, text="slow down", headers={"Retry-After": "2"}),
        httpx.Response(200, json=vm_json()),
    )
    run(fake, lambda c: c.get_vm("vm_01"), sleep=sleep, attempts=5)
    # header alone; body beats header; a bare 429 still honours its header
    assert sleep.delays == [7.0, 3.0, 2.0]


def test_retry_after_is_bounded_by_the_policy() -> None:
    sleep = RecordingSleep()
    fake = FakeArker().on(
        "GET",
        "/api/v1/vms/vm_01",
        error_response("unavailable", retry_after_seconds=86400),
        httpx.Response(200, json=vm_json()),
    )
    run(fake, lambda c: c.get_vm("vm_01"), sleep=sleep)
    assert sleep.delays == [60.0]


def test_gives_up_after_max_attempts_with_the_last_typed_error() -> None:
    sleep = RecordingSleep()
    fake = FakeArker().on("GET", "/api/v1/vms/vm_01", error_response("gateway_timeout"))
    with pytest.raises(GatewayTimeout) as caught:
        run(fake, lambda c: c.get_vm("vm_01"), sleep=sleep, attempts=3)
    assert len(fake.requests) == 3 and len(sleep.delays) == 2
    assert isinstance(caught.value, TransientError)


@pytest.mark.parametrize(
    "code", ["not_found", "conflict", "invalid_state", "resource_busy", "internal", "quota_exceeded"]
)
def test_non_retryable_codes_are_sent_once(code: str) -> None:
    fake = FakeArker().on("DELETE", "/api/v1/vms/vm_01", error_response(code))
    with pytest.raises(Exception) as caught:
        run(fake, lambda c: c.delete_vm("vm_01"))
    assert getattr(caught.value, "code", None) == code
    assert len(fake.requests) == 1


def test_get_is_retried_after_a_dropped_connection_and_a_read_timeout() -> None:
    fake = FakeArker().on(
        "GET",
        "/api/v1/vms/vm_01",
        dropped(),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.Response(200, json=vm_json()),
    )
    vm = run(fake, lambda c: c.get_vm("vm_01"), attempts=4)
    assert vm.vm_id == "vm_01" and len(fake.requests) == 4


def test_fork_keeps_one_idempotency_key_across_all_retries() -> None:
    key = fork_idempotency_key("lineage-1", "vm.worker", "sha256:abc")
    fake = FakeArker().on(
        "POST",
        "/api/v1/fork",
        dropped(),
        error_response("unavailable", retry_after_seconds=1),  # key claimed, fork still running
        error_response("capacity_unavailable"),
        httpx.Response(200, json=vm_json()),
    )
    request = ForkRequest(source_vm_name="ubuntu", name="worker")
    vm = run(fake, lambda c: c.fork(request, idempotency_key=key), attempts=5)
    assert vm.name == "worker"
    keys = [r.headers.get("idempotency-key") for r in fake.calls("POST", "/api/v1/fork")]
    assert keys == [key] * 4
    assert fake.json_bodies("POST", "/api/v1/fork") == [{"source_vm_name": "ubuntu", "name": "worker"}] * 4


def test_fork_refuses_a_missing_or_malformed_key() -> None:
    fake = FakeArker()
    request = ForkRequest(source_vm_name="ubuntu")
    for bad in ("", "x" * 65, "naïve"):

        async def fork(client: ArkerClient, key: str = bad) -> Vm:
            return await client.fork(request, idempotency_key=key)

        with pytest.raises(ValueError):
            run(fake, fork)
    assert fake.requests == []


def test_idempotency_conflict_is_not_retried() -> None:
    fake = FakeArker().on("POST", "/api/v1/fork", error_response("idempotency_conflict"))
    with pytest.raises(IdempotencyConflict):
        run(fake, lambda c: c.fork(ForkRequest(image="ubuntu:24.04"), idempotency_key="k1"))
    assert len(fake.requests) == 1


def test_unsafe_create_filesystem_is_not_replayed_after_a_dropped_response() -> None:
    fake = FakeArker().on("POST", "/api/v1/filesystems", dropped(), httpx.Response(200, json=fs_json()))
    with pytest.raises(ArkerConnectionLost) as caught:
        run(fake, lambda c: c.create_filesystem("datasets"))
    assert caught.value.ambiguous is True
    assert "outcome unknown" in str(caught.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (httpx.ReadTimeout("slow"), ArkerTimeoutError),
        (httpx.WriteTimeout("slow"), ArkerTimeoutError),
        (httpx.Response(502, text="bad gateway"), UnknownTransientAPIError),
        (error_response("gateway_timeout"), GatewayTimeout),
    ],
)
def test_unsafe_create_filesystem_is_not_replayed_after_a_timeout_or_502_504(
    step: Exception | httpx.Response, expected: type[Exception]
) -> None:
    fake = FakeArker().on("POST", "/api/v1/filesystems", step, httpx.Response(200, json=fs_json()))
    with pytest.raises(expected):
        run(fake, lambda c: c.create_filesystem("datasets"))
    assert len(fake.requests) == 1


def test_unsafe_create_filesystem_is_retried_when_the_request_was_provably_not_processed() -> None:
    fake = FakeArker().on(
        "POST",
        "/api/v1/filesystems",
        httpx.ConnectError("connection refused"),
        error_response("rate_limited"),
        error_response("unavailable", recovery={"work": "not_started"}),
        httpx.Response(200, json=fs_json()),
    )
    fs = run(fake, lambda c: c.create_filesystem("datasets"), attempts=5)
    assert fs.filesystem_id == "fs_1" and len(fake.requests) == 4


def test_unsafe_create_filesystem_plain_unavailable_is_not_retried() -> None:
    fake = FakeArker().on("POST", "/api/v1/filesystems", error_response("unavailable"))
    with pytest.raises(Unavailable):
        run(fake, lambda c: c.create_filesystem("datasets"))
    assert len(fake.requests) == 1


def test_connect_errors_are_retried_then_raised_as_not_ambiguous() -> None:
    fake = FakeArker().on("POST", "/api/v1/filesystems", httpx.ConnectError("refused"))
    with pytest.raises(ArkerConnectError) as caught:
        run(fake, lambda c: c.create_filesystem("datasets"), attempts=3)
    assert caught.value.ambiguous is False and len(fake.requests) == 3


def test_run_without_key_is_unsafe_and_with_key_is_retried() -> None:
    request = RunRequest(command="true")
    fake = FakeArker().on(
        "POST", "/api/v1/vms/vm_01/runs", dropped(), httpx.Response(202, json={"run_id": "run_1"})
    )
    with pytest.raises(ArkerConnectionLost):
        run(fake, lambda c: c.create_run("vm_01", request))
    assert len(fake.requests) == 1

    fake = FakeArker().on(
        "POST", "/api/v1/vms/vm_01/runs", dropped(), httpx.Response(202, json={"run_id": "run_1"})
    )
    result = run(fake, lambda c: c.create_run("vm_01", request, idempotency_key="run-key-1"))
    assert result.run_id == "run_1"
    assert [r.headers["idempotency-key"] for r in fake.requests] == ["run-key-1", "run-key-1"]


def test_create_mount_is_replay_safe_per_contract() -> None:
    fake = FakeArker().on(
        "POST", "/api/v1/vms/vm_01/mounts", dropped(), httpx.Response(200, json=mount_json())
    )
    mount = run(fake, lambda c: c.create_mount("vm_01", "fs_1", "/mnt/data"))
    assert mount.mount_id == "mnt_1" and len(fake.requests) == 2


def test_patch_and_put_and_delete_are_retried_on_dropped_connections() -> None:
    from reconciler.providers.arker.wire import PatchVmRequest, PolicyWriteRequest

    fake = (
        FakeArker()
        .on("PATCH", "/api/v1/vms/vm_01", dropped(), httpx.Response(200, json=vm_json()))
        .on("PUT", "/api/v1/vms/vm_01/policies", dropped(), httpx.Response(200, json={"policies": []}))
        .on("DELETE", "/api/v1/vms/vm_01", dropped(), httpx.Response(200, json={"deleted": True}))
    )

    async def go(client: ArkerClient) -> None:
        await client.patch_vm("vm_01", PatchVmRequest(description="x"))
        await client.put_policies("vm_01", PolicyWriteRequest())
        assert (await client.delete_vm("vm_01")).deleted

    run(fake, go)
    assert len(fake.requests) == 6


def test_stats_count_every_attempt_and_retry_per_operation() -> None:
    fake = (
        FakeArker()
        .on("GET", "/api/v1/vms/vm_01", error_response("rate_limited"), httpx.Response(200, json=vm_json()))
        .on("GET", "/api/v1/whoami", httpx.Response(200, json={"org_id": "o", "org_name": "Org"}))
    )

    async def go(client: ArkerClient) -> ArkerClient:
        await client.get_vm("vm_01")
        await client.whoami()
        return client

    client = run(fake, go)
    assert client.stats.calls == {"getVm": 2, "whoami": 1}
    assert client.stats.retries == {"getVm": 1}
    assert client.stats.total == 3
    client.stats.reset()
    assert client.stats.total == 0


def test_rate_limited_error_carries_the_hint_when_exhausted() -> None:
    fake = FakeArker().on("GET", "/api/v1/vms/vm_01", error_response("rate_limited", retry_after_seconds=4))
    with pytest.raises(RateLimited) as caught:
        run(fake, lambda c: c.get_vm("vm_01"), attempts=2)
    assert caught.value.retry_after == 4.0
