"""The client against the in-process emulator (``httpx.ASGITransport``): real request/response shapes end
to end, including injected faults. Skipped cleanly when the emulator cannot be imported."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from reconciler.providers.arker import (
    ArkerClient,
    ConnectionSettings,
    ForkRequest,
    MountFailed,
    NotFound,
    PatchVmRequest,
    PolicyUpdate,
    PolicyWriteRequest,
    ResourcesInput,
    RetryPolicy,
    SshKeyInput,
    compile_egress,
    fork_idempotency_key,
)

emulator = pytest.importorskip("reconciler.emulator", reason="the emulator package is not importable")

T = TypeVar("T")
KEY = "integration-key-3f9a1c"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBpZsbG4qXZ8lXv0cTqj3tE1xM0wH4f8e2yQp6rN9sK4 alice@host"


class _Egress:
    mode = "allow"
    entries = ("github.com",)
    ports = (443,)


async def _instant(_: float) -> None:
    await asyncio.sleep(0)


def run(call: Callable[[ArkerClient, Any], Awaitable[T]], *, real_sleep: bool = False, **overrides: Any) -> T:
    values: dict[str, Any] = {
        "api_keys": (emulator.ApiKeyGrant(key=SecretStr(KEY), org="acme"),),
        "mount_delay_seconds": 0.02,
        "retry_after_seconds": 0,
    }
    values.update(overrides)
    app = emulator.create_app(emulator.EmulatorSettings(**values))

    async def go() -> T:
        policy = (
            RetryPolicy(max_attempts=8, base_delay=0.0)
            if real_sleep
            else RetryPolicy(max_attempts=8, sleep=_instant)
        )
        settings = ConnectionSettings.create(KEY, "http://127.0.0.1/api")
        async with ArkerClient(settings, transport=httpx.ASGITransport(app=app), retry=policy) as client:
            return await call(client, app)

    try:
        return asyncio.run(go())
    finally:
        app.state.close()


def test_service_endpoints() -> None:
    async def go(client: ArkerClient, app: Any) -> None:
        assert (await client.health()).ok
        assert (await client.whoami()).org_name
        regions = await client.regions()
        assert all(r.endpoint for r in regions.regions)

    run(go)


def test_fork_patch_policies_and_delete() -> None:
    async def go(client: ArkerClient, app: Any) -> None:
        key = fork_idempotency_key("lineage-x", "vm.worker", "sha256:1")
        request = ForkRequest(
            source_vm_name="ubuntu",
            name="worker",
            description="CI sandbox",
            ssh_public_keys={"alice": SshKeyInput(public_key=SSH_KEY)},
            policies=PolicyUpdate(rules=compile_egress(_Egress())),
        )
        vm = await client.fork(request, idempotency_key=key)
        again = await client.fork(request, idempotency_key=key)
        assert again.vm_id == vm.vm_id  # the same key hands back the same VM
        assert vm.name == "worker" and vm.ssh_key_ids == ("alice",)
        assert vm.policies is not None and "egress-default" in vm.policies.rules

        patched = await client.patch_vm(
            vm.vm_id,
            PatchVmRequest(
                description="changed",
                resources=ResourcesInput(vcpu=2),
                ssh_public_keys={"alice": None},
                policies=PolicyUpdate(rules={"egress-allow-hosts": None}),
            ),
        )
        assert patched.description == "changed" and patched.ssh_key_ids == ()
        assert patched.policies is not None and "egress-allow-hosts" not in patched.policies.rules
        fetched = await client.get_vm("worker")
        assert fetched.vm_id == vm.vm_id and fetched.resources.vcpu == 2

        doc = await client.get_policies(vm.vm_id)
        replaced = await client.put_policies(vm.vm_id, PolicyWriteRequest(policies=doc.policies))
        assert len(replaced.policies) == len(doc.policies)

        listed = [v.vm_id async for v in client.list_vms()]
        assert vm.vm_id in listed
        assert (await client.delete_vm(vm.vm_id)).deleted
        with pytest.raises(NotFound):
            await client.get_vm(vm.vm_id)

    run(go)


def test_sync_write_and_read_back_a_file_larger_than_a_chunk() -> None:
    big = hashlib.sha256(b"seed").digest() * (5 * 1024 * 1024 // 32 + 7)  # > 4 MiB, not chunk-aligned
    files = {"/home/user/big.bin": big, "/home/user/app/config.toml": b"x = 1\n", "/home/user/.env": b"T=1\n"}

    async def go(client: ArkerClient, app: Any) -> None:
        vm = await client.fork(ForkRequest(source_vm_name="ubuntu", name="syncer"), idempotency_key="sync-1")
        written = await client.sync_write(vm.vm_id, files, secret={"/home/user/.env"})
        assert {w.path: w.sha256 for w in written} == {
            p: hashlib.sha256(d).hexdigest() for p, d in files.items()
        }
        assert await client.sync_read(vm.vm_id, "/home/user/big.bin") == big  # presigned (over 1 MiB)
        assert await client.sync_read(vm.vm_id, "/home/user/app/config.toml") == b"x = 1\n"  # inline
        digests = await client.file_digests(vm.vm_id, [*files, "/home/user/absent"])
        assert digests == {
            **{p: hashlib.sha256(d).hexdigest() for p, d in files.items()},
            "/home/user/absent": None,
        }
        assert client.stats.calls["sync"] >= 4

    run(go)


def test_sync_write_through_the_presigned_path() -> None:
    data = b"p" * (2 * 1024 * 1024)

    async def go(client: ArkerClient, app: Any) -> None:
        vm = await client.fork(ForkRequest(source_vm_name="ubuntu", name="presign"), idempotency_key="pre-1")
        await client.sync_write(vm.vm_id, {"/data/blob": data}, presigned_min_bytes=1024 * 1024)
        assert client.stats.calls.get("sync.presignedPut") == 1
        assert await client.sync_read(vm.vm_id, "/data/blob") == data

    run(go)


def test_filesystem_mount_lifecycle() -> None:
    async def go(client: ArkerClient, app: Any) -> None:
        vm = await client.fork(ForkRequest(source_vm_name="ubuntu", name="m"), idempotency_key="mount-1")
        fs = await client.create_filesystem("datasets")
        assert [f.name for f in await client.list_filesystems()] == ["datasets"]
        mount = await client.create_mount(vm.vm_id, fs.filesystem_id, "/mnt/datasets")
        done = await client.wait_mount(vm.vm_id, mount.mount_id, timeout=10, interval=0.01)
        assert done.state == "mounted"
        other = await client.create_filesystem("scratch")
        bad = await client.create_mount(vm.vm_id, other.filesystem_id, "/proc/nope")
        with pytest.raises(MountFailed) as caught:
            await client.wait_mount(vm.vm_id, bad.mount_id, timeout=10, interval=0.01)
        assert caught.value.reason
        assert (await client.delete_mount(vm.vm_id, mount.mount_id)).deleted
        assert (await client.delete_filesystem(fs.filesystem_id)).deleted

    run(go, real_sleep=True)


def test_forks_under_drops_and_failures_create_each_vm_exactly_once() -> None:
    names = [f"w{i}" for i in range(12)]

    async def go(client: ArkerClient, app: Any) -> None:
        for name in names:
            key = fork_idempotency_key("lineage-f", f"vm.{name}", "sha256:0")
            vm = await client.fork(ForkRequest(source_vm_name="ubuntu", name=name), idempotency_key=key)
            assert vm.name == name
        # The faults really happened: some forks were done and then their answer was dropped.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as raw:
            served = (await raw.get("http://127.0.0.1/_emulator/stats")).json()
        assert served["operations"]["fork"]["dropped"] > 0
        assert client.stats.retries.get("fork", 0) > 0

    def check(client: ArkerClient, app: Any) -> Awaitable[None]:
        async def inner() -> None:
            await go(client, app)
            mine = [vm async for vm in client.list_vms() if vm.name in names]
            assert sorted(vm.name or "" for vm in mine) == sorted(names)  # each exactly once

        return inner()

    run(check, fail_rate=0.25, ambiguous_rate=0.25, seed=3)
