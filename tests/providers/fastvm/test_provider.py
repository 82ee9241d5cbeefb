"""FastvmProvider operations against the in-process emulator, with a minimal in-memory ApplyContext."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.emulator.arker import EmulatorApp
from reconciler.manifest import load_stack
from reconciler.providers.fastvm import FastvmClient, LaunchRequest
from reconciler.providers.fastvm import resources as rmap
from reconciler.providers.fastvm.provider import FastvmProvider
from reconciler.state.model import ResourceState

pytestmark = pytest.mark.anyio


class _Ctx:
    lineage = "lineage-1"

    def __init__(self) -> None:
        self.entries: dict[str, ResourceState] = {}

    def current(self, address: str) -> ResourceState | None:
        return self.entries.get(address)

    async def record(self, resource: ResourceState) -> None:
        self.entries[resource.address] = resource

    async def forget(self, address: str) -> None:
        self.entries.pop(address, None)


def _provider(tmp_path: Path, client: FastvmClient) -> FastvmProvider:
    (tmp_path / "stack.yaml").write_text(
        textwrap.dedent(
            """
            apiVersion: arkerctl/v1
            kind: VM
            metadata: {name: api}
            spec: {provider: fastvm, machine_type: c1m2, services: [{name: web, port: 8080}]}
            """
        )
    )
    return FastvmProvider(client, load_stack([tmp_path]), poll_interval=0.01)


async def test_a_rerun_create_adopts_the_vm_an_earlier_attempt_launched(
    tmp_path: Path, app: EmulatorApp, client: FastvmClient
) -> None:
    provider = _provider(tmp_path, client)
    [config] = provider.configs()
    ctx = _Ctx()
    tags = rmap.ownership_tags(ctx.lineage, config.address)
    # An earlier attempt recorded its intent and launched, then failed before recording the id.
    earlier = await client.launch_vm(LaunchRequest(machine_type="c1m2", name="api", metadata=tags))
    await ctx.record(provider._pending(config, {"metadata": tags, "name": "api"}))

    await provider.create(config, ctx, replacing=None)

    assert ctx.entries["vm.api"].id == earlier.id
    assert client.stats.calls["launchVm"] == 1  # ours above; the provider launched nothing
    assert [s.name for s in await client.list_services(earlier.id)] == ["web"]


async def test_a_first_create_launches_without_looking_up(tmp_path: Path, client: FastvmClient) -> None:
    provider = _provider(tmp_path, client)
    [config] = provider.configs()
    ctx = _Ctx()
    await provider.create(config, ctx, replacing=None)
    [vm] = await client.list_vms()
    assert ctx.entries["vm.api"].id == vm.id and vm.metadata[rmap.ADDRESS_TAG] == "vm.api"
    assert client.stats.calls["launchVm"] == 1 and client.stats.calls.get("listVms", 0) == 1  # ours
