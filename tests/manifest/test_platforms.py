"""Platforms in the manifest: Stack.spec.provider as the default, per-resource spec.provider, FastVM
fields resolved into DesiredVM/DesiredFilesystem, Syncs on their VM's platform.
Error texts are golden cases (cases/platform_*)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.manifest import DesiredFilesystem, DesiredState, DesiredVM, ManifestError, load_stack

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q alice@laptop"


def _vm(desired: DesiredState, address: str) -> DesiredVM:
    found = desired.by_address(address)
    assert isinstance(found, DesiredVM)
    return found


def _fs(desired: DesiredState, address: str) -> DesiredFilesystem:
    found = desired.by_address(address)
    assert isinstance(found, DesiredFilesystem)
    return found


def _load(tmp_path: Path, text: str) -> DesiredState:
    (tmp_path / "stack.yaml").write_text(textwrap.dedent(text))
    return load_stack([tmp_path])


def test_stack_provider_is_the_default_and_resources_may_override_it(tmp_path: Path) -> None:
    desired = _load(
        tmp_path,
        f"""
        apiVersion: arkerctl/v1
        kind: Stack
        spec: {{provider: fastvm}}
        ---
        apiVersion: arkerctl/v1
        kind: SSHKey
        metadata: {{name: alice}}
        spec: {{public_key: "{KEY}"}}
        ---
        apiVersion: arkerctl/v1
        kind: VM
        metadata: {{name: web}}
        spec:
          machine_type: c1m2
          disk_gib: ${{var:disk}}
          metadata: {{team: infra, a: b}}
          env: {{Z: "1", A: "2"}}
          ttl: {{action: delete, seconds: "600"}}
          ssh_keys: [alice]
          services: [{{name: web, port: 8080}}, {{name: api, port: 9000, h2c: true}}]
          dns: {{mode: allow, domains: [github.com]}}
          ingress: {{rules: [{{cidr: 10.0.0.0/8, ports: [8000, 8100]}}]}}
          lifecycle: {{ignore_changes: [metadata, ttl, machine_type]}}
        ---
        apiVersion: arkerctl/v1
        kind: VM
        metadata: {{name: legacy}}
        spec: {{provider: arker, source: ubuntu}}
        ---
        apiVersion: arkerctl/v1
        kind: Filesystem
        metadata: {{name: data}}
        spec: {{size_gib: 5, access_mode: ro}}
        ---
        apiVersion: arkerctl/v1
        kind: Filesystem
        metadata: {{name: shared}}
        spec: {{provider: arker}}
        ---
        apiVersion: arkerctl/v1
        kind: Sync
        metadata: {{name: web-data}}
        spec: {{vm: web, filesystem: data, path: /mnt/data}}
        ---
        apiVersion: arkerctl/v1
        kind: Sync
        metadata: {{name: legacy-shared}}
        spec: {{vm: legacy, filesystem: shared, path: /mnt/shared}}
        """.replace("${var:disk}", "20"),
    )
    assert desired.stack.provider == "fastvm"
    web = _vm(desired, "vm.web")
    assert (web.provider, web.source, web.machine_type, web.disk_gib) == ("fastvm", None, "c1m2", 20)
    assert web.metadata == (("a", "b"), ("team", "infra")) and web.env == (("A", "2"), ("Z", "1"))
    assert web.ttl is not None and (web.ttl.action, web.ttl.seconds) == ("delete", 600)
    assert [s.name for s in web.services or ()] == ["api", "web"]
    assert web.lifecycle.ignore_changes == ("machine_type", "metadata", "ttl")
    assert "env=" not in repr(web)  # env values may be secrets
    legacy = _vm(desired, "vm.legacy")
    assert legacy.provider == "arker" and legacy.source is not None
    data = _fs(desired, "filesystem.data")
    assert (data.provider, data.size_gib, data.access_mode) == ("fastvm", 5, "ro")
    assert _fs(desired, "filesystem.shared").provider == "arker"
    assert desired.by_address("sync.web-data").provider == "fastvm"
    assert desired.by_address("sync.legacy-shared").provider == "arker"


def test_without_a_stack_document_everything_is_arker(tmp_path: Path) -> None:
    desired = _load(
        tmp_path,
        """
        apiVersion: arkerctl/v1
        kind: VM
        metadata: {name: box}
        spec: {source: ubuntu}
        """,
    )
    assert desired.stack.provider == "arker"
    assert _vm(desired, "vm.box").provider == "arker"


def test_a_fastvm_field_on_an_arker_vm_names_the_platform_and_the_node(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        _load(
            tmp_path,
            """
            apiVersion: arkerctl/v1
            kind: VM
            metadata: {name: box}
            spec:
              source: ubuntu
              ttl: {action: pause, seconds: 60}
            """,
        )
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.column) == (7, 8)
    assert "'ttl' is not supported on Arker" in diagnostic.message


def test_replicated_fastvm_vms_share_their_values(tmp_path: Path) -> None:
    desired = _load(
        tmp_path,
        """
        apiVersion: arkerctl/v1
        kind: VM
        metadata: {name: worker}
        spec: {provider: fastvm, replicas: 2, snapshot: golden, metadata: {pool: ci}}
        """,
    )
    workers = [_vm(desired, f"vm.worker-{i}") for i in range(2)]
    assert [(w.provider, w.snapshot, w.metadata) for w in workers] == [
        ("fastvm", "golden", (("pool", "ci"),))
    ] * 2
