"""The FastVM client against the emulator: every operation, waits, typed errors, metadata lookups."""

from __future__ import annotations

import base64
import hashlib

import pytest

from reconciler.emulator.arker import EmulatorApp
from reconciler.providers.fastvm import (
    BadRequest,
    Conflict,
    FastvmClient,
    FastvmWaitTimeout,
    Firewall,
    FirewallRule,
    InvalidState,
    LaunchRequest,
    NotFound,
    QuotaExceeded,
    Ttl,
    VmLaunchFailed,
    VmUpdate,
    VolumeMountFailed,
)
from reconciler.providers.fastvm.wire import DnsPolicy, IngressPolicy

from .conftest import make_settings

pytestmark = pytest.mark.anyio


def _key(seed: str) -> str:
    kind = b"ssh-ed25519"
    material = hashlib.sha256(seed.encode()).digest()
    blob = len(kind).to_bytes(4, "big") + kind + len(material).to_bytes(4, "big") + material
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {seed}@host"


async def test_vm_round_trip(client: FastvmClient) -> None:
    assert await client.health() == "ok"
    firewall = Firewall(
        ingress=IngressPolicy(
            rules=(FirewallRule(action="allow", kind="cidr", value="10.0.0.0/8", ports="22"),)
        ),
        dns=DnsPolicy(mode="allow", domains=("pypi.org",)),
    )
    vm = await client.launch_vm(
        LaunchRequest(
            machine_type="c2m4",
            name="web",
            metadata={"arkerctl/stack": "s1", "arkerctl/address": "vm.web"},
            env_vars={"A": "1"},
            firewall=firewall,
            ttl=Ttl(action="pause", seconds=600),
        )
    )
    assert vm.status == "running" and vm.firewall == firewall and vm.ttl == Ttl(action="pause", seconds=600)
    found = await client.list_vms(metadata={"arkerctl/stack": "s1", "arkerctl/address": "vm.web"})
    assert [v.id for v in found] == [vm.id]
    assert await client.list_vms(metadata={"arkerctl/stack": "other"}) == ()
    updated = await client.update_vm(vm.id, VmUpdate(metadata={"k": "v"}, clear_ttl=True))
    assert updated.metadata == {"k": "v"} and updated.ttl is None
    with pytest.raises(InvalidState):
        await client.refresh_ttl(vm.id)
    egress = {"default": "deny", "rules": [{"action": "allow", "kind": "fqdn", "value": "*.github.com"}]}
    patched = await client.patch_firewall(vm.id, {"egress": egress})
    assert patched.firewall is not None and patched.firewall.egress.default == "deny"
    assert patched.firewall.ingress == firewall.ingress
    reset = await client.set_firewall(vm.id, Firewall())
    assert reset.firewall == Firewall()
    assert (await client.pause_vm(vm.id)).status == "paused"
    assert [v.id for v in await client.list_vms(status="paused")] == [vm.id]
    assert (await client.resume_vm(vm.id)).status == "running"
    await client.delete_vm(vm.id)
    with pytest.raises(NotFound) as missing:
        await client.get_vm(vm.id)
    assert missing.value.status == 404 and missing.value.request_id
    with pytest.raises(BadRequest) as bad:
        await client.launch_vm(LaunchRequest(machine_type="nope"))
    assert "machineType" in str(bad.value)


async def test_keys_services_files(client: FastvmClient) -> None:
    vm = await client.launch_vm(LaunchRequest(machine_type="c1m2"))
    key = await client.add_ssh_key(vm.id, _key("alice"))
    assert (await client.add_ssh_key(vm.id, _key("alice"))).fingerprint == key.fingerprint
    await client.add_ssh_key(vm.id, _key("bob"))
    assert len(await client.list_ssh_keys(vm.id)) == 2
    await client.delete_ssh_key(vm.id, key.fingerprint)
    assert [k.comment for k in await client.list_ssh_keys(vm.id)] == ["bob@host"]

    await client.register_service(vm.id, "api", 8080)
    with pytest.raises(Conflict):
        await client.register_service(vm.id, "api", 8081)
    assert (await client.put_service(vm.id, "api", 8081, h2c=True)).h2c is True
    assert [(s.name, s.port) for s in await client.list_services(vm.id)] == [("api", 8081)]
    await client.delete_service(vm.id, "api")
    assert await client.list_services(vm.id) == ()

    digest = await client.write_file(vm.id, "/home/user/.env", b"TOKEN=x\n")
    assert digest == hashlib.sha256(b"TOKEN=x\n").hexdigest()
    assert await client.file_sha256(vm.id, "/home/user/.env") == digest
    assert await client.file_sha256(vm.id, "/missing") is None
    assert (await client.exec(vm.id, ["echo", "hi"])).stdout == "hi\n"


async def test_volumes_and_mount_waits(client: FastvmClient) -> None:
    vm = await client.launch_vm(LaunchRequest(machine_type="c1m2"))
    volume = await client.create_volume("datasets", 10)
    assert (await client.update_volume(volume.id, size_gib=20)).size_gib == 20
    attached = await client.attach_volume(vm.id, volume.id, "/mnt/datasets")
    assert attached.mount_status == "pending"
    mounted = await client.wait_mounted(vm.id, volume.id, timeout=5, poll_interval=0.01)
    assert mounted.mount_status == "mounted"
    assert [v.name for v in await client.list_volumes()] == ["datasets"]
    assert (await client.get_volume(volume.id)).attachments == (mounted,)
    await client.detach_volume(vm.id, volume.id)
    bad = await client.create_volume("bad", 1)
    await client.attach_volume(vm.id, bad.id, "/proc/data")
    with pytest.raises(VolumeMountFailed, match="reserved"):
        await client.wait_mounted(vm.id, bad.id, timeout=5, poll_interval=0.01)
    with pytest.raises(FastvmWaitTimeout):
        await client.wait_mounted(
            vm.id, volume.id, timeout=0.02, poll_interval=0.01
        )  # detached: never mounts
    await client.delete_volume(volume.id)
    snapshot = await client.create_snapshot(vm.id, "snap")
    assert [s.id for s in await client.list_snapshots()] == [snapshot.id]
    quotas = await client.quotas()
    assert quotas.usage.vcpu == 1 and quotas.usage.snapshot_count == 1


@pytest.mark.parametrize("settings", [make_settings(launch_delay_seconds=0.05)])
async def test_wait_running(app: EmulatorApp, client: FastvmClient) -> None:
    vm = await client.launch_vm(LaunchRequest(machine_type="c1m2"))
    assert vm.status == "provisioning"
    with pytest.raises(FastvmWaitTimeout) as timed_out:
        await client.wait_running(vm.id, timeout=0.0)
    assert timed_out.value.last_status == "provisioning"
    assert (await client.wait_running(vm.id, timeout=5, poll_interval=0.01)).status == "running"
    app.state.fastvm.vms[vm.id].status = "error"
    with pytest.raises(VmLaunchFailed, match="error"):
        await client.wait_running(vm.id, timeout=5)


async def test_quota_is_permanent(client: FastvmClient) -> None:
    for _ in range(4):
        await client.launch_vm(LaunchRequest(machine_type="c16m32"))
    with pytest.raises(QuotaExceeded):
        await client.launch_vm(LaunchRequest(machine_type="c1m2"))
    assert client.stats.retries == {}
