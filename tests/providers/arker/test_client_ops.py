"""Client operations against a scripted API: requests as sent, responses as parsed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import ValidationError

from reconciler.providers.arker import (
    ArkerClient,
    ArkerProtocolError,
    ArkerWaitTimeout,
    BackgroundRunResponse,
    CompletedRunResponse,
    MountFailed,
    PatchVmRequest,
    PolicyUpdate,
    PolicyWriteRequest,
    RunRequest,
    Unavailable,
)
from reconciler.providers.arker.wire import MountCreateRequest, SshKeyInput

from .fakes import FakeArker, RecordingSleep, error_response, fs_json, make_client, mount_json, vm_json

T = TypeVar("T")


def run(fake: FakeArker, call: Callable[[ArkerClient], Awaitable[T]], **kwargs: Any) -> T:
    async def go() -> T:
        async with make_client(fake, **kwargs) as client:
            return await call(client)

    return asyncio.run(go())


def _paged(total: int, page_size_cap: int) -> Callable[[httpx.Request], httpx.Response]:
    """A listVms that honours cursor/limit (capped by the 'service') over ``total`` VMs."""

    def handler(request: httpx.Request) -> httpx.Response:
        limit = min(int(request.url.params["limit"]), page_size_cap)
        start = int(request.url.params.get("cursor") or 0)
        rows = [vm_json(f"vm_{i:05d}", f"w-{i}") for i in range(start, min(start + limit, total))]
        following = start + limit
        return httpx.Response(
            200, json={"vms": rows, "next_cursor": str(following) if following < total else None}
        )

    return handler


def test_list_vms_walks_every_page_with_the_largest_page_size() -> None:
    fake = FakeArker().on("GET", "/api/v1/vms", _paged(2_500, page_size_cap=1000))

    async def go(client: ArkerClient) -> list[str]:
        return [vm.vm_id async for vm in client.list_vms(state="idle", public=False)]

    ids = run(fake, go)
    assert ids == [f"vm_{i:05d}" for i in range(2_500)]
    params = [dict(r.url.params) for r in fake.requests]
    assert [p.get("cursor") for p in params] == [None, "1000", "2000"]
    assert {p["limit"] for p in params} == {"1000"}
    assert {(p["state"], p["public"]) for p in params} == {("idle", "false")}


def test_list_vms_follows_a_service_cap_smaller_than_the_limit() -> None:
    fake = FakeArker().on("GET", "/api/v1/vms", _paged(250, page_size_cap=100))

    async def go(client: ArkerClient) -> int:
        return len([vm async for vm in client.list_vms()])

    assert run(fake, go) == 250 and len(fake.requests) == 3


def test_ten_thousand_vms_take_ten_calls() -> None:
    fake = FakeArker().on("GET", "/api/v1/vms", _paged(10_000, page_size_cap=1000))

    async def go(client: ArkerClient) -> tuple[int, int]:
        count = len([vm async for vm in client.list_vms()])
        return count, client.stats.calls["listVms"]

    assert run(fake, go) == (10_000, 10)


def test_a_repeated_cursor_is_a_protocol_error_not_an_endless_loop() -> None:
    fake = FakeArker().on("GET", "/api/v1/vms", httpx.Response(200, json={"vms": [], "next_cursor": "same"}))

    async def go(client: ArkerClient) -> None:
        async for _ in client.list_vms():
            pass

    with pytest.raises(ArkerProtocolError, match="cursor repeated"):
        run(fake, go)
    assert len(fake.requests) == 2


def test_list_vms_page_validates_limit() -> None:
    with pytest.raises(ValueError):
        run(FakeArker(), lambda c: c.list_vms_page(limit=1001))


def test_path_segments_are_escaped() -> None:
    fake = FakeArker().on("GET", "/api/v1/vms/a/../b?x", httpx.Response(200, json=vm_json()))  # decoded
    run(fake, lambda c: c.get_vm("a/../b?x"))
    assert fake.requests[0].url.raw_path == b"/api/v1/vms/a%2F..%2Fb%3Fx"
    with pytest.raises(ValueError):
        run(fake, lambda c: c.get_vm(""))


def test_patch_vm_sends_the_keyed_body() -> None:
    fake = FakeArker().on("PATCH", "/api/v1/vms/vm_01", httpx.Response(200, json=vm_json(description="CI")))
    body = PatchVmRequest(
        description="CI",
        ssh_public_keys={"alice": SshKeyInput(public_key="ssh-ed25519 AAAA alice"), "old": None},
        policies=PolicyUpdate(
            rules={"inbound-8080": {"type": "inbound", "priority": 108080, "action": "allow"}}
        ),
    )
    vm = run(fake, lambda c: c.patch_vm("vm_01", body))
    assert vm.description == "CI"
    assert fake.json_bodies("PATCH", "/api/v1/vms/vm_01") == [
        {
            "description": "CI",
            "ssh_public_keys": {"alice": {"public_key": "ssh-ed25519 AAAA alice"}, "old": None},
            "policies": {
                "rules": {"inbound-8080": {"type": "inbound", "priority": 108080, "action": "allow"}}
            },
        }
    ]
    assert fake.requests[0].headers["content-type"] == "application/json"


def test_policies_get_and_put() -> None:
    doc = {"policies": [{"type": "outbound", "action": "deny"}], "secrets": {"t": "***"}, "hostname": None}
    fake = (
        FakeArker()
        .on("GET", "/api/v1/vms/vm_01/policies", httpx.Response(200, json=doc))
        .on("PUT", "/api/v1/vms/vm_01/policies", httpx.Response(200, json=doc))
    )

    async def go(client: ArkerClient) -> None:
        got = await client.get_policies("vm_01")
        assert got.policies == ({"type": "outbound", "action": "deny"},) and got.secrets == {"t": "***"}
        put = await client.put_policies("vm_01", PolicyWriteRequest(policies=got.policies))
        assert put == got

    run(fake, go)
    assert fake.json_bodies("PUT", "/api/v1/vms/vm_01/policies") == [
        {"policies": [{"type": "outbound", "action": "deny"}], "secrets": {}}
    ]


def test_delete_vm_and_filesystem_crud() -> None:
    fake = (
        FakeArker()
        .on("DELETE", "/api/v1/vms/vm_01", httpx.Response(200, json={"deleted": True}))
        .on("POST", "/api/v1/filesystems", httpx.Response(200, json=fs_json()))
        .on("GET", "/api/v1/filesystems/fs_1", httpx.Response(200, json=fs_json()))
        .on("DELETE", "/api/v1/filesystems/fs_1", httpx.Response(200, json={"deleted": True}))
        .on(
            "GET",
            "/api/v1/filesystems",
            httpx.Response(200, json={"filesystems": [fs_json("fs_1", "a")], "next_cursor": "c2"}),
            httpx.Response(200, json={"filesystems": [fs_json("fs_2", "b")], "next_cursor": None}),
        )
    )

    async def go(client: ArkerClient) -> None:
        assert (await client.delete_vm("vm_01")).deleted
        assert (await client.create_filesystem("datasets")).name == "datasets"
        assert (await client.get_filesystem("fs_1")).filesystem_id == "fs_1"
        listed = await client.list_filesystems(name_prefix="data")
        assert [fs.name for fs in listed] == ["a", "b"]
        assert (await client.delete_filesystem("fs_1")).deleted

    run(fake, go)
    assert fake.json_bodies("POST", "/api/v1/filesystems") == [{"name": "datasets"}]
    listing = fake.calls("GET", "/api/v1/filesystems")
    assert [r.url.params.get("cursor") for r in listing] == [None, "c2"]
    assert {r.url.params["name_prefix"] for r in listing} == {"data"}


def test_runs_completed_background_and_poll() -> None:
    completed = {
        "stdout": "hi\n",
        "stdout_encoding": "utf-8",
        "stderr": "",
        "stderr_encoding": "utf-8",
        "exit_code": 0,
    }
    run_row = {
        "run_id": "run_2",
        "state": "completed",
        "started_at": "t",
        "exit_code": 3,
        "stdout": "",
        "stdout_encoding": "utf-8",
        "stderr": "boom",
        "stderr_encoding": "utf-8",
    }
    fake = (
        FakeArker()
        .on(
            "POST",
            "/api/v1/vms/vm_01/runs",
            httpx.Response(200, json=completed),
            httpx.Response(202, json={"run_id": "run_2", "state": "running"}),
        )
        .on("GET", "/api/v1/vms/vm_01/runs/run_2", httpx.Response(200, json=run_row))
    )

    async def go(client: ArkerClient) -> None:
        first = await client.create_run("vm_01", RunRequest(command="echo hi"))
        assert isinstance(first, CompletedRunResponse) and first.exit_code == 0
        second = await client.create_run("vm_01", RunRequest(command="sleep 100", time_to_background=0))
        assert isinstance(second, BackgroundRunResponse) and second.run_id == "run_2"
        polled = await client.get_run("vm_01", "run_2")
        assert polled.finished and polled.exit_code == 3

    run(fake, go)
    assert fake.json_bodies("POST", "/api/v1/vms/vm_01/runs")[1] == {
        "command": "sleep 100",
        "time_to_background": 0,
    }


def test_wait_mount_polls_until_mounted_with_growing_intervals() -> None:
    sleep = RecordingSleep()
    fake = (
        FakeArker()
        .on("POST", "/api/v1/vms/vm_01/mounts", httpx.Response(200, json=mount_json("attaching")))
        .on(
            "GET",
            "/api/v1/vms/vm_01/mounts",
            httpx.Response(200, json={"mounts": [mount_json("attaching")]}),
            httpx.Response(200, json={"mounts": [mount_json(None)]}),
            httpx.Response(200, json={"mounts": [mount_json("attaching")]}),
            httpx.Response(
                200, json={"mounts": [mount_json("mounted", mount_id="other"), mount_json("mounted")]}
            ),
        )
    )

    async def go(client: ArkerClient) -> str | None:
        mount = await client.create_mount("vm_01", "fs_1", "/mnt/data")
        done = await client.wait_mount("vm_01", mount.mount_id, interval=0.25, max_interval=1.0)
        return done.state

    assert run(fake, go, sleep=sleep) == "mounted"
    assert sleep.delays == [0.25, 0.5, 1.0]
    assert fake.json_bodies("POST", "/api/v1/vms/vm_01/mounts") == [
        {"filesystem_id": "fs_1", "path": "/mnt/data"}
    ]


def test_create_mount_body_is_the_request_model_s_and_bad_arguments_are_refused_by_it() -> None:
    fake = FakeArker().on(
        "POST", "/api/v1/vms/vm_01/mounts", httpx.Response(200, json=mount_json("attaching"))
    )

    async def go(client: ArkerClient) -> None:
        await client.create_mount("vm_01", "fs_1")
        with pytest.raises(ValidationError):
            await client.create_mount("vm_01", "")

    run(fake, go)
    sent = fake.json_bodies("POST", "/api/v1/vms/vm_01/mounts")
    assert sent == [{"filesystem_id": "fs_1", "path": None}]
    assert sent[0] == MountCreateRequest(filesystem_id="fs_1", path=None).to_wire()


def test_wait_mount_failed_names_the_reason() -> None:
    fake = FakeArker().on(
        "GET",
        "/api/v1/vms/vm_01/mounts",
        httpx.Response(200, json={"mounts": [mount_json("failed", "path is a file")]}),
    )
    with pytest.raises(MountFailed) as caught:
        run(fake, lambda c: c.wait_mount("vm_01", "mnt_1"))
    assert caught.value.reason == "path is a file" and "path is a file" in str(caught.value)


def test_wait_mount_times_out_and_detects_a_vanished_mount() -> None:
    sleep = RecordingSleep()
    fake = FakeArker().on(
        "GET", "/api/v1/vms/vm_01/mounts", httpx.Response(200, json={"mounts": [mount_json()]})
    )
    with pytest.raises(ArkerWaitTimeout, match="still attaching"):
        run(
            fake,
            lambda c: c.wait_mount("vm_01", "mnt_1", timeout=3.0, interval=1.0, max_interval=1.0),
            sleep=sleep,
        )
    assert sum(sleep.delays) == pytest.approx(3.0)

    fake = FakeArker().on("GET", "/api/v1/vms/vm_01/mounts", httpx.Response(200, json={"mounts": []}))
    with pytest.raises(MountFailed, match="no longer exists"):
        run(fake, lambda c: c.wait_mount("vm_01", "mnt_1"))


def test_delete_mount_and_list_mounts_filter() -> None:
    fake = (
        FakeArker()
        .on("DELETE", "/api/v1/vms/vm_01/mounts/mnt_1", httpx.Response(200, json={"deleted": True}))
        .on("GET", "/api/v1/vms/vm_01/mounts", httpx.Response(200, json={"mounts": [mount_json("mounted")]}))
    )

    async def go(client: ArkerClient) -> None:
        assert (await client.list_mounts("vm_01", filesystem_id="fs_1"))[0].state == "mounted"
        assert (await client.delete_mount("vm_01", "mnt_1")).deleted

    run(fake, go)
    assert fake.requests[0].url.params["filesystem_id"] == "fs_1"


def test_health_not_ready_is_a_result_and_an_outage_envelope_is_an_error() -> None:
    fake = FakeArker().on(
        "GET",
        "/api/v1/health",
        httpx.Response(503, json={"status": "unavailable", "timestamp": "t"}),
        error_response("unavailable"),
    )

    async def go(client: ArkerClient) -> None:
        health = await client.health()
        assert not health.ok and health.status == "unavailable"
        with pytest.raises(Unavailable):
            await client.health()

    run(fake, go)
    assert len(fake.requests) == 2  # a readiness probe reports, it does not retry


def test_regions_and_whoami_parse() -> None:
    regions = {
        "regions": [
            {"provider": "aws", "region": "us-west-2", "endpoint": "https://x/api", "platforms": ["a"]}
        ]
    }
    fake = (
        FakeArker()
        .on("GET", "/api/v1/regions", httpx.Response(200, json=regions))
        .on(
            "GET", "/api/v1/whoami", httpx.Response(200, content=json.dumps({"org_id": "o", "org_name": "O"}))
        )
    )

    async def go(client: ArkerClient) -> None:
        assert (await client.regions()).regions[0].platforms == ("a",)
        assert (await client.whoami()).org_name == "O"

    run(fake, go)


def test_one_client_serves_many_concurrent_operations() -> None:
    fake = FakeArker().on("GET", "/api/v1/vms/vm_01", httpx.Response(200, json=vm_json()))

    async def go(client: ArkerClient) -> int:
        results = await asyncio.gather(*(client.get_vm("vm_01") for _ in range(64)))
        return len({vm.vm_id for vm in results}) + client.stats.calls["getVm"]

    assert run(fake, go) == 1 + 64
