"""The vendor SDK (fastvm 0.7.0, strict response validation) against the emulator: every SDK endpoint."""

from __future__ import annotations

from collections import Counter
from typing import Any

import fastvm
import httpx
import pytest

from reconciler.emulator.arker import EmulatorApp

from .conftest import KEY_B, make_settings, sdk_client

pytestmark = pytest.mark.anyio


def _operations(app: EmulatorApp) -> Counter[str]:
    snapshot: dict[str, Any] = app.state.stats.snapshot()
    return Counter({op: entry["requests"] for op, entry in snapshot["operations"].items()})


async def test_every_sdk_endpoint_validates_strictly(app: EmulatorApp, sdk: fastvm.AsyncFastvm) -> None:
    assert (await sdk.health()).status == "ok"

    vm = await sdk.vms.launch(
        machine_type="c2m4",
        name="  web   one ",
        disk_gi_b=20,
        metadata={"stack": "s1", "addr": "vm.web"},
        env_vars={"MODE": "prod"},
        firewall={"mode": "restricted", "ingress": [{"protocol": "tcp", "port_start": 22, "port_end": 23}]},
        ttl={"action": "pause", "seconds": 3600},
    )
    assert (vm.status, vm.name, vm.cpu, vm.memory_mi_b, vm.disk_gi_b) == ("running", "web one", 2, 4096, 20)
    assert vm.firewall is not None and vm.firewall.mode == "restricted"
    assert vm.firewall.ingress is not None
    assert [(r.port_start, r.port_end, r.source_cidrs) for r in vm.firewall.ingress] == [(22, 23, ["::/0"])]
    assert vm.ttl is not None and vm.expires_at_ms is not None

    assert [v.id for v in await sdk.vms.list()] == [vm.id]
    assert await sdk.vms.list(status="paused") == []
    assert (await sdk.vms.retrieve(vm.id)).env_vars == {"MODE": "prod"}
    renamed = await sdk.vms.update(vm.id, name="web-2", metadata={"stack": "s1"})
    assert (renamed.name, renamed.metadata) == ("web-2", {"stack": "s1"})

    opened = await sdk.vms.set_firewall(vm.id, mode="open")
    assert opened.firewall is not None and (opened.firewall.mode, opened.firewall.ingress) == ("open", [])
    patched = await sdk.vms.patch_firewall(
        vm.id,
        mode="restricted",
        ingress=[{"protocol": "udp", "port_start": 5353, "source_cidrs": ["fd00::/8"]}],
    )
    assert patched.firewall is not None and patched.firewall.ingress is not None
    assert [(r.protocol, r.source_cidrs) for r in patched.firewall.ingress] == [("udp", ["fd00::/8"])]

    service = await sdk.vms.services.register(vm.id, name="api", port=8080)
    assert (service.name, service.port, service.h2c) == ("api", 8080, False)
    assert (await sdk.vms.services.register(vm.id, name="api", port=8080)).port == 8080  # idempotent
    updated = await sdk.vms.services.update("api", id=vm.id, port=9090, h2c=True)
    assert (updated.port, updated.h2c) == (9090, True)
    assert [s.name for s in await sdk.vms.services.list(vm.id)] == ["api"]
    effective = (await sdk.vms.retrieve(vm.id)).effective_firewall
    assert effective is not None and effective.ingress is not None
    assert effective.ingress[-1].description == "auto: proxy service api"
    await sdk.vms.services.delete("api", id=vm.id)
    await sdk.vms.services.delete("api", id=vm.id)  # idempotent 204
    assert await sdk.vms.services.list(vm.id) == []

    presigned = await sdk.vms.files.presign(vm.id, path="/root/hello.txt")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as raw:
        assert (await raw.put(presigned.upload_url, content=b"hello\n")).status_code == 200
        assert (await raw.get(presigned.download_url)).content == b"hello\n"
    fetched = await sdk.vms.files.fetch(vm.id, path="/root/hello.txt", url=presigned.download_url)
    assert fetched.exit_code == 0
    digest = await sdk.vms.run(vm.id, command=["sha256sum", "/root/hello.txt"])
    assert digest.stdout.split()[0] == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert (await sdk.vms.run(vm.id, command=["sh", "-c", "make"])).exit_code == 127

    token = await sdk.vms.console_token(vm.id)
    assert token.websocket_path.endswith("/console") and token.expires_in_sec > 0

    refreshed = await sdk.vms.refresh_ttl(vm.id)
    assert refreshed.expires_at_ms is not None
    paused = await sdk.vms.pause(vm.id)
    assert (paused.status, paused.expires_at_ms) == ("paused", None) and paused.ttl_remaining_ms
    assert (await sdk.vms.pause(vm.id)).status == "paused"  # idempotent
    assert (await sdk.quotas.retrieve()).usage.vcpu == 0  # paused VMs hold no compute quota

    snapshot = await sdk.snapshots.create(vm_id=vm.id, name="base")
    assert (snapshot.status, snapshot.vm_id) == ("ready", vm.id)
    assert (await sdk.snapshots.retrieve(snapshot.id)).name == "base"
    assert (await sdk.snapshots.update(snapshot.id, name="base-2")).name == "base-2"
    assert [s.id for s in await sdk.snapshots.list()] == [snapshot.id]
    resumed = await sdk.vms.resume(vm.id)
    assert resumed.status == "running" and resumed.expires_at_ms is not None

    restored = await sdk.vms.launch(snapshot_id=snapshot.id)
    assert (restored.source_name, restored.memory_mi_b, restored.env_vars) == (
        "base-2",
        4096,
        {"MODE": "prod"},
    )
    quotas = await sdk.quotas.retrieve()
    assert (quotas.usage.vcpu, quotas.usage.snapshot_count, quotas.limits.vcpu) == (4, 1, 64)

    context = await sdk.build_contexts.presign()
    assert context.upload_url != context.download_url
    build = await sdk.builds.create(image_ref="python:3.13-slim", name="py")
    assert build.status == "pending"
    assert (await sdk.snapshots.delete(snapshot.id)).deleted is True

    assert (await sdk.vms.delete(restored.id)).deleted is True
    assert (await sdk.vms.delete(vm.id)).deleted is True
    assert await sdk.vms.list() == []

    # Every SDK endpoint was exercised (operation ids of the emulator's table).
    sdk_operations = {
        "health", "listVms", "launchVm", "getVm", "updateVm", "deleteVm", "pauseVm", "resumeVm",
        "refreshVmTtl", "setVmFirewall", "patchVmFirewall", "consoleToken", "execVm", "listServices",
        "registerService", "updateService", "deleteService", "presignFile", "fetchFile", "listSnapshots",
        "createSnapshot", "getSnapshot", "updateSnapshot", "deleteSnapshot", "getQuotas",
        "presignBuildContext", "createBuild",
    }  # fmt: skip
    assert sdk_operations <= set(_operations(app))


async def test_build_completes_into_a_snapshot(app: EmulatorApp, sdk: fastvm.AsyncFastvm) -> None:
    build = await sdk.builds.create(dockerfile_content="FROM python:3.13-slim\n", name="img")
    app.state.fastvm.clock = lambda: 4e9  # far past the build's deadline
    done = await sdk.builds.retrieve(build.id)
    assert done.status == "completed" and done.snapshot_id is not None
    assert (await sdk.snapshots.retrieve(done.snapshot_id)).name == "img"


async def test_sdk_errors_map_by_status(app: EmulatorApp, sdk: fastvm.AsyncFastvm) -> None:
    with pytest.raises(fastvm.NotFoundError) as missing:
        await sdk.vms.retrieve("00000000-0000-0000-0000-000000000000")
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["error"]["code"] == "not_found"
    with pytest.raises(fastvm.BadRequestError):
        await sdk.vms.launch(name="no machine type")
    with pytest.raises(fastvm.BadRequestError):
        await sdk.vms.launch(machine_type="c1m2", ttl={"action": "pause", "seconds": 31_536_001})
    vm = await sdk.vms.launch(machine_type="c1m2")
    with pytest.raises(fastvm.ConflictError) as conflict:
        await sdk.vms.refresh_ttl(vm.id)  # no TTL configured
    assert conflict.value.response.headers["x-should-retry"] == "false"
    other = sdk_client(app, KEY_B)
    try:
        with pytest.raises(fastvm.NotFoundError):
            await other.vms.retrieve(vm.id)  # another org's VM does not exist for it
        assert await other.vms.list() == []
    finally:
        await other.close()
    with pytest.raises(fastvm.AuthenticationError):
        bad = sdk_client(app, "wrong-key")
        try:
            await bad.vms.list()
        finally:
            await bad.close()


@pytest.mark.parametrize("settings", [make_settings(launch_delay_seconds=0.05)])
async def test_queued_launch_answers_202_then_runs(app: EmulatorApp, sdk: fastvm.AsyncFastvm) -> None:
    raw = await sdk.vms.with_raw_response.launch(machine_type="c1m2")
    assert raw.http_response.status_code == 202
    vm = await raw.parse()
    assert vm.status == "provisioning"
    clock = app.state.fastvm.clock
    app.state.fastvm.clock = lambda: clock() + 0.06
    assert (await sdk.vms.retrieve(vm.id)).status == "running"
