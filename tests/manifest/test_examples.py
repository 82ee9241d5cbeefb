"""The shipped examples load and mean what their comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine.mermaid import to_mermaid
from reconciler.manifest import DesiredVM, ManifestError, SourceName, SourceVM, load_stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CI_ENV = {"CI_DEPLOY_TOKEN": "tok-123", "CI_REGISTRY_PASSWORD": "pw-456"}


def test_minimal() -> None:
    state = load_stack([EXAMPLES / "minimal"], environ={})
    assert state.stack.name == "minimal" and state.stack.state == "file://.arkerctl/state.json"
    assert state.addresses == ("vm.hello",)
    assert state.vms[0].source == SourceName(name="ubuntu-small")


def test_fleet() -> None:
    state = load_stack([EXAMPLES / "fleet"], environ={})
    assert state.addresses == (
        "filesystem.datasets",
        "sync.worker-datasets-0",
        "sync.worker-datasets-1",
        "vm.base",
        "vm.worker-0",
        "vm.worker-1",
    )
    base = state.by_address("vm.base")
    worker = state.by_address("vm.worker-1")
    assert isinstance(base, DesiredVM) and isinstance(worker, DesiredVM)
    assert base.source == SourceName(name="ubuntu")
    assert worker.source == SourceVM(name="base", address="vm.base")
    assert base.ssh_keys is not None and [k.id for k in base.ssh_keys] == ["alice", "bob"]
    assert base.egress is not None and base.egress.name == "restricted" and base.egress.mode == "allow"
    assert [f.path for f in base.files] == ["/etc/motd", "/home/user/.config/sandbox/config.toml"]
    assert worker.description == "research worker"
    graph = state.graph()
    assert graph.dependencies("vm.worker-0") == ("vm.base",)
    assert graph.dependencies("sync.worker-datasets-0") == ("filesystem.datasets", "vm.worker-0")
    mermaid = to_mermaid(graph)
    assert "vm_base --> vm_worker_0" in mermaid and "vm_worker_0 --> sync_worker_datasets_0" in mermaid


def test_ci_sandbox_takes_secrets_from_the_environment() -> None:
    state = load_stack([EXAMPLES / "ci-sandbox"], environ=CI_ENV)
    (runner,) = state.vms
    assert runner.inbound is not None and [(p.port, p.auth) for p in runner.inbound] == [
        (8080, "open"),
        (9090, "arker"),
    ]
    env_file = next(f for f in runner.files if f.path == "/home/user/.env")
    assert env_file.secret and b"DEPLOY_TOKEN=tok-123" in env_file.content
    assert "tok-123" not in repr(state) and "pw-456" not in str(state)


def test_ci_sandbox_needs_its_environment() -> None:
    with pytest.raises(ManifestError) as caught:
        load_stack([EXAMPLES / "ci-sandbox"], environ={})
    assert [d.message for d in caught.value.diagnostics] == [
        "environment variable 'CI_DEPLOY_TOKEN' is not set (used as ${env:CI_DEPLOY_TOKEN})",
        "environment variable 'CI_REGISTRY_PASSWORD' is not set (used as ${env:CI_REGISTRY_PASSWORD})",
    ]
