"""FastVM stacks and mixed stacks (VMs on Arker and FastVM) through the workflow core, with both emulators
in process (one httpx ASGI transport per platform): converge, zero-write no-op, drift of FastVM fields,
replacement, a lost launch found again by its ownership tags, import, destroy, platform-scoped credentials."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings, create_app
from reconciler.emulator.fastvm.app import FastvmFaultTarget
from reconciler.emulator.faults import FaultInjector, FaultPlan, FaultTarget
from reconciler.emulator.stats import OperationStats
from reconciler.engine import Action, PlanOptions
from reconciler.providers.arker.errors import ArkerConfigurationError
from reconciler.providers.fastvm import FastvmClient, FastvmSettings
from reconciler.providers.fastvm.errors import FastvmConfigurationError
from reconciler.state import StateDocument, open_backend
from reconciler.workflow import (
    ApplyResult,
    Planned,
    RunSettings,
    apply_planned,
    connected,
    import_resource,
    make_plan,
    open_workspace,
)

from .harness import ED25519, REPO

KEY = "fastvm-workflow-key"
ARKER_BASE = "http://127.0.0.1:9/api"
FASTVM_BASE = "http://127.0.0.1:9"
ENVIRON = {
    "ARKER_API_KEY": KEY,
    "ARKER_BASE_URL": ARKER_BASE,
    "FASTVM_API_KEY": KEY,
    "FASTVM_BASE_URL": FASTVM_BASE,
}
# FastVM operations that change something (reads are everything else).
FASTVM_WRITES = frozenset(
    {
        "launchVm",
        "updateVm",
        "deleteVm",
        "setVmFirewall",
        "patchVmFirewall",
        "addSshKey",
        "deleteSshKey",
        "registerService",
        "updateService",
        "deleteService",
        "presignFile",
        "fetchFile",
        "attachVolume",
        "detachVolume",
        "createVolume",
        "updateVolume",
        "deleteVolume",
    }
)
ARKER_WRITES = frozenset(
    {"fork", "patchVm", "deleteVm", "putPolicies", "createMount", "deleteMount", "createFilesystem"}
)

MIXED = f"""
apiVersion: arkerctl/v1
kind: Stack
metadata: {{name: mixed}}
spec: {{provider: fastvm}}
---
apiVersion: arkerctl/v1
kind: SSHKey
metadata: {{name: alice}}
spec: {{public_key: "{ED25519["alice"]}"}}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {{name: web}}
spec:
  machine_type: c1m2
  disk_gib: 20
  metadata: {{team: infra}}
  env: {{MODE: prod, TOKEN: s3cr3t-env-value}}
  ttl: {{action: pause, seconds: 3600}}
  ssh_keys: [alice]
  services: [{{name: http, port: 8080}}]
  egress: {{allow: [github.com, 10.0.0.0/8], ports: [443]}}
  dns: {{mode: allow, domains: [github.com]}}
  ingress: {{rules: [{{cidr: 203.0.113.0/24, ports: [8000, 8100]}}]}}
  files:
    - {{path: /etc/app.conf, content: "mode = prod\\n"}}
---
apiVersion: arkerctl/v1
kind: Filesystem
metadata: {{name: data}}
spec: {{size_gib: 5}}
---
apiVersion: arkerctl/v1
kind: Sync
metadata: {{name: web-data}}
spec: {{vm: web, filesystem: data, path: /mnt/data}}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {{name: legacy}}
spec: {{provider: arker, source: ubuntu, description: on arker, ssh_keys: [alice]}}
"""


class _OnlyOperation:
    """A fault target that lets the emulator's fault layer touch one operation only."""

    def __init__(self, inner: FaultTarget, operation: str) -> None:
        self.inner = inner
        self.operation = operation
        self.armed = True

    def operation_for(self, method: str, path: str) -> str | None:
        found = self.inner.operation_for(method, path)
        if found == self.operation and self.armed:
            self.armed = False  # one drop, then serve normally
            return found
        return None

    def injected_failure(self, operation: str, kind: Any, retry_after_seconds: int) -> Any:
        return self.inner.injected_failure(operation, kind, retry_after_seconds)


@dataclass
class Clouds:
    root: Path
    arker: Any
    fastvm: Any
    fastvm_front: Any  # what the FastVM client talks to (the app, or a fault layer around it)

    def write(self, text: str, name: str = "stack.yaml") -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / name).write_text(textwrap.dedent(text))

    def settings(self, environ: dict[str, str] | None = None) -> RunSettings:
        return RunSettings(
            paths=(self.root,),
            environ=environ or ENVIRON,
            mount_timeout=10.0,
            transport_factory={
                "arker": lambda: httpx.ASGITransport(app=self.arker),
                "fastvm": lambda: httpx.ASGITransport(app=self.fastvm_front),
            },
        )

    def plan(self, options: PlanOptions | None = None, environ: dict[str, str] | None = None) -> Planned:
        async def go() -> Planned:
            ws = open_workspace(self.settings(environ))
            async with connected(ws, environ=environ or ENVIRON) as providers:
                return await make_plan(ws, providers, options or PlanOptions())

        return asyncio.run(go())

    def apply(self, options: PlanOptions | None = None, environ: dict[str, str] | None = None) -> ApplyResult:
        async def go() -> ApplyResult:
            ws = open_workspace(self.settings(environ))
            with ws.lock("apply"):
                async with connected(ws, environ=environ or ENVIRON) as providers:
                    planned = await make_plan(ws, providers, options or PlanOptions())
                    assert planned.plan.is_applyable, (planned.plan.conflicts, planned.plan.errors)
                    return await apply_planned(ws, providers, planned)

        return asyncio.run(go())

    def state(self) -> StateDocument:
        doc = open_backend("file://.arkerctl/state.json", root=self.root).read()
        assert doc is not None
        return doc

    def fastvm_api(self, method: str, path: str, json: Any = None) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.fastvm),
                base_url=FASTVM_BASE,
                headers={"X-API-Key": KEY},
            ) as client:
                return await client.request(method, path, json=json)

        return asyncio.run(go())

    def stats(self) -> dict[str, int]:
        """Requests per ``platform:operation``."""
        counts: dict[str, int] = {}
        for platform, app in (("arker", self.arker), ("fastvm", self.fastvm)):
            for op, entry in app.state.stats.snapshot()["operations"].items():
                counts[f"{platform}:{op}"] = int(entry["requests"])
        return counts

    def writes_since(self, before: dict[str, int]) -> dict[str, int]:
        after = self.stats()
        writes = {f"fastvm:{op}" for op in FASTVM_WRITES} | {f"arker:{op}" for op in ARKER_WRITES}
        return {
            op: n - before.get(op, 0) for op, n in after.items() if op in writes and n > before.get(op, 0)
        }

    def fastvm_vms(self) -> list[dict[str, Any]]:
        return list(self.fastvm_api("GET", "/v1/vms").json())


def _make(tmp_path: Path, front: Any = None) -> Iterator[Clouds]:
    grants = (ApiKeyGrant(key=SecretStr(KEY), org="acme"),)
    arker = create_app(EmulatorSettings(api_keys=grants, mount_delay_seconds=0.01, retry_after_seconds=0))
    fastvm = create_app(
        EmulatorSettings(platform="fastvm", api_keys=grants, mount_delay_seconds=0.01, retry_after_seconds=0)
    )
    try:
        yield Clouds(tmp_path / "stack", arker, fastvm, front(fastvm) if front else fastvm)
    finally:
        arker.state.close()
        fastvm.state.close()


@pytest.fixture
def clouds(tmp_path: Path) -> Iterator[Clouds]:
    yield from _make(tmp_path)


def test_mixed_stack_applies_in_one_run_then_no_op_with_zero_writes(clouds: Clouds) -> None:
    clouds.write(MIXED)
    result = clouds.apply()
    assert result.ok, result.report
    state = clouds.state()
    assert {a: r.provider for a, r in state.resources.items()} == {
        "filesystem.data": "fastvm",
        "sync.web-data": "fastvm",
        "vm.legacy": "arker",
        "vm.web": "fastvm",
    }
    [vm] = clouds.fastvm_vms()
    assert vm["name"] == "web" and vm["machineName"] == "c1m2" and vm["diskGiB"] == 20
    assert vm["metadata"] == {
        "arkerctl-address": "vm.web",
        "arkerctl-lineage": state.lineage,
        "team": "infra",
    }
    assert vm["ttl"] == {"action": "pause", "seconds": 3600}
    assert {r["value"] for r in vm["firewall"]["egress"]["rules"]} == {
        "10.0.0.0/8",
        "github.com",
        "*.github.com",
    }
    assert vm["firewall"]["egress"]["default"] == "deny"
    assert vm["firewall"]["dns"] == {"mode": "allow", "domains": ["github.com"], "blockBypass": False}
    # effectiveFirewall adds the service's auto rule; we compare (and wrote) only `firewall`.
    assert len(vm["effectiveFirewall"]["ingress"]["rules"]) == len(vm["firewall"]["ingress"]["rules"]) + 1
    keys = clouds.fastvm_api("GET", f"/v1/vms/{vm['id']}/ssh-keys").json()
    assert [k["publicKey"] for k in keys] == [" ".join(ED25519["alice"].split()[:2])]
    attachments = clouds.fastvm_api("GET", f"/v1/vms/{vm['id']}/volumes").json()
    assert [(a["mountPath"], a["mountStatus"]) for a in attachments] == [("/mnt/data", "mounted")]
    # Secrets never reach state in clear.
    assert "s3cr3t-env-value" not in (clouds.root / ".arkerctl" / "state.json").read_text()

    before = clouds.stats()
    again = clouds.plan()
    assert {rc.address: rc.action for rc in again.plan.resource_changes} == dict.fromkeys(
        ("filesystem.data", "sync.web-data", "vm.legacy", "vm.web"), Action.NOOP
    )
    assert not again.plan.drift
    second = clouds.apply()
    assert second.ok and clouds.writes_since(before) == {}
    # Refresh reads: one tagged VM list, one volume list, keys/services/one file digest for the VM.
    reads = {op: n - before.get(op, 0) for op, n in clouds.stats().items() if n - before.get(op, 0)}
    assert reads["fastvm:listVms"] == 2 and reads["fastvm:listVolumes"] == 2 and "fastvm:getVm" not in reads
    assert (
        reads["fastvm:listSshKeys"] == 2 and reads["fastvm:listServices"] == 2 and reads["fastvm:execVm"] == 2
    )


def test_fastvm_only_stack_needs_no_arker_key_and_the_other_way_round(clouds: Clouds) -> None:
    clouds.write(
        """
        apiVersion: arkerctl/v1
        kind: Stack
        metadata: {name: only-fastvm}
        spec: {provider: fastvm}
        ---
        apiVersion: arkerctl/v1
        kind: VM
        metadata: {name: solo}
        spec: {machine_type: c2m4}
        """
    )
    fastvm_only = {k: v for k, v in ENVIRON.items() if k.startswith("FASTVM_")}
    assert clouds.apply(environ=fastvm_only).ok
    assert [vm["name"] for vm in clouds.fastvm_vms()] == ["solo"]
    with pytest.raises(FastvmConfigurationError):
        clouds.plan(environ={k: v for k, v in ENVIRON.items() if k.startswith("ARKER_")})

    clouds.write(
        """
        apiVersion: arkerctl/v1
        kind: VM
        metadata: {name: solo}
        spec: {provider: arker, source: ubuntu}
        """
    )
    # The state still holds a FastVM VM: FastVM must be reachable to delete it, Arker to fork the new one.
    with pytest.raises(ArkerConfigurationError):
        clouds.plan(environ=fastvm_only)


def test_drift_of_fastvm_fields_is_seen_and_converged(clouds: Clouds) -> None:
    clouds.write(MIXED)
    assert clouds.apply().ok
    [vm] = clouds.fastvm_vms()
    vm_path = f"/v1/vms/{vm['id']}"
    metadata = {**vm["metadata"], "team": "intruders", "extra": "x"}
    assert clouds.fastvm_api("PATCH", vm_path, {"metadata": metadata, "ttl": None}).status_code == 200
    firewall = {"dns": {"mode": "deny", "domains": []}}
    assert clouds.fastvm_api("PATCH", f"{vm_path}/firewall", firewall).status_code == 200
    assert clouds.fastvm_api("DELETE", f"{vm_path}/services/http").status_code == 204

    planned = clouds.plan()
    [drift] = [d for d in planned.plan.drift if d.address == "vm.web"]
    assert sorted(c.path for c in drift.changes) == [
        "dns.domains",
        "dns.mode",
        "metadata.extra",
        "metadata.team",
        "services.http.h2c",
        "services.http.port",
        "ttl.action",
        "ttl.seconds",
    ]
    [change] = [rc for rc in planned.plan.resource_changes if rc.address == "vm.web"]
    assert change.action is Action.UPDATE

    assert clouds.apply().ok
    [vm] = clouds.fastvm_vms()
    assert vm["metadata"]["team"] == "infra" and "extra" not in vm["metadata"]
    assert vm["metadata"]["arkerctl-address"] == "vm.web"  # the whole-map PATCH kept our tags
    assert vm["ttl"] == {"action": "pause", "seconds": 3600}
    assert vm["firewall"]["dns"]["domains"] == ["github.com"]
    services = clouds.fastvm_api("GET", f"{vm_path}/services").json()
    assert [(s["name"], s["port"]) for s in services] == [("http", 8080)]
    assert not clouds.plan().plan.drift


def test_machine_type_change_replaces_the_vm_and_its_attachment(clouds: Clouds) -> None:
    clouds.write(MIXED)
    assert clouds.apply().ok
    [old] = clouds.fastvm_vms()
    clouds.write(MIXED.replace("machine_type: c1m2", "machine_type: c2m4"))
    planned = clouds.plan()
    changes = {rc.address: rc for rc in planned.plan.resource_changes}
    assert changes["vm.web"].action.is_replace
    assert [c.path for c in changes["vm.web"].changes if c.forces_replacement] == ["machine_type"]
    assert changes["sync.web-data"].action.is_replace  # the attachment goes with its VM
    assert changes["vm.legacy"].action is Action.NOOP
    assert clouds.apply().ok
    [new] = clouds.fastvm_vms()
    assert new["id"] != old["id"] and new["machineName"] == "c2m4"
    attachments = clouds.fastvm_api("GET", f"/v1/vms/{new['id']}/volumes").json()
    assert [a["mountStatus"] for a in attachments] == ["mounted"]
    assert clouds.state().resources["vm.web"].id == new["id"]


def test_a_lost_launch_is_found_again_by_its_tags_not_launched_twice(tmp_path: Path) -> None:
    targets: list[_OnlyOperation] = []

    def drop_first_launch(app: Any) -> Any:
        target = _OnlyOperation(FastvmFaultTarget(), "launchVm")
        targets.append(target)
        # The emulator's own ambiguous fault (work done, connection dropped), on launches only.
        return FaultInjector(app, target, FaultPlan(ambiguous_rate=1.0), OperationStats())

    for clouds in _make(tmp_path, front=drop_first_launch):
        clouds.write(
            """
            apiVersion: arkerctl/v1
            kind: Stack
            metadata: {name: lossy}
            spec: {provider: fastvm}
            ---
            apiVersion: arkerctl/v1
            kind: VM
            metadata: {name: api}
            spec: {machine_type: c1m2, metadata: {role: api}}
            """
        )
        result = clouds.apply()
        assert result.ok, result.report  # found again right away by list_vms(metadata=...)
        assert not targets[0].armed
        vms = clouds.fastvm_vms()
        assert len(vms) == 1 and clouds.state().resources["vm.api"].id == vms[0]["id"]
        assert clouds.stats()["fastvm:launchVm"] == 1
        assert all(op.action is Action.NOOP for op in clouds.plan().plan.resource_changes)


def test_a_pending_launch_left_by_a_crash_is_adopted_by_the_next_refresh(clouds: Clouds) -> None:
    clouds.write(MIXED)
    assert clouds.apply().ok
    state = clouds.state()
    entry = state.resources["vm.web"]
    # As if the run died between the launch and recording its id.
    pending_values = {**entry.values, "__pending__": {"metadata": {}, "name": "web"}}
    backend = open_backend("file://.arkerctl/state.json", root=clouds.root)
    backend.write(
        state.with_resource(entry.model_copy(update={"id": "", "values": pending_values})),
        expected_serial=state.serial,
    )
    planned = clouds.plan()
    assert planned.state is not None and planned.state.resources["vm.web"].id == entry.id
    assert {rc.address: rc.action for rc in planned.plan.resource_changes}["vm.web"] is Action.NOOP


def test_import_and_destroy(clouds: Clouds) -> None:
    clouds.write(
        """
        apiVersion: arkerctl/v1
        kind: Stack
        metadata: {name: adopt}
        spec: {provider: fastvm}
        ---
        apiVersion: arkerctl/v1
        kind: VM
        metadata: {name: found}
        spec: {machine_type: c1m2, metadata: {owner: ops}}
        """
    )
    launched = clouds.fastvm_api("POST", "/v1/vms", {"machineType": "c1m2", "name": "found"}).json()

    async def adopt() -> StateDocument:
        ws = open_workspace(clouds.settings())
        async with connected(ws, environ=ENVIRON) as providers:
            return await import_resource(ws, providers, "vm.found", launched["id"])

    assert asyncio.run(adopt()).resources["vm.found"].id == launched["id"]
    planned = clouds.plan()
    [change] = planned.plan.resource_changes
    assert change.action is Action.UPDATE and {c.path for c in change.changes} == {"metadata.owner"}
    assert clouds.apply().ok
    [vm] = clouds.fastvm_vms()
    assert vm["metadata"]["owner"] == "ops" and vm["metadata"]["arkerctl-address"] == "vm.found"

    assert clouds.apply(PlanOptions(destroy=True)).ok
    assert clouds.fastvm_vms() == [] and clouds.state().resources == {}


def test_the_fastvm_example_applies_across_both_platforms(tmp_path: Path) -> None:
    for clouds in _make(tmp_path):
        shutil.copytree(REPO / "examples" / "fastvm", clouds.root, ignore=shutil.ignore_patterns(".arkerctl"))
        result = clouds.apply()
        assert result.ok, result.report
        providers = {a: r.provider for a, r in clouds.state().resources.items()}
        assert providers == {
            "filesystem.cache": "fastvm",
            "sync.api-cache": "fastvm",
            "vm.api": "fastvm",
            "vm.builder": "arker",
        }
        before = clouds.stats()
        assert clouds.apply().ok and clouds.writes_since(before) == {}


def test_fingerprints_match_the_platform(clouds: Clouds) -> None:
    from reconciler.providers.fastvm.resources import fingerprint

    launched = clouds.fastvm_api("POST", "/v1/vms", {"machineType": "c1m2"}).json()

    async def go() -> str:
        async with FastvmClient(
            FastvmSettings.create(KEY, FASTVM_BASE), transport=httpx.ASGITransport(app=clouds.fastvm)
        ) as client:
            key = await client.add_ssh_key(launched["id"], ED25519["ci"])
            return key.fingerprint

    assert asyncio.run(go()) == fingerprint(ED25519["ci"])
