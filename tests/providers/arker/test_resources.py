"""The pure Arker mapping: desired -> values, request bodies (fork, keyed PATCH), live -> values."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.engine import Lifecycle, ResourceConfig
from reconciler.manifest import load_stack
from reconciler.providers.arker import resources as rmap
from reconciler.providers.arker.wire import Vm

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q alice@laptop"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsViDn4qjOeibtQsWA+kOxo4P1VZf4Qp8sycp/d9wcK ci@runner"


def _desired(tmp_path: Path, vm_spec: str) -> ResourceConfig:
    (tmp_path / "stack.yaml").write_text(
        "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: t}\n---\n"
        f"apiVersion: arkerctl/v1\nkind: SSHKey\nmetadata: {{name: alice}}\nspec: {{public_key: '{KEY_A}', "
        "expires_at: '2031-01-01T00:00:00+00:00'}\n---\n"
        f"apiVersion: arkerctl/v1\nkind: VM\nmetadata: {{name: box}}\nspec:\n{vm_spec}"
    )
    desired = load_stack([tmp_path / "stack.yaml"], root=tmp_path)
    (config,) = rmap.vm_configs(desired)
    return config


def test_vm_values_hold_only_what_the_manifest_sets(tmp_path: Path) -> None:
    config = _desired(tmp_path, "  source: ubuntu\n")
    assert config.values == {"source": {"name": "ubuntu"}}
    assert config.force_new == {"source", "disk", "durable", "public"}
    assert config.exact == frozenset()


def test_full_vm_values_and_secret_files(tmp_path: Path) -> None:
    config = _desired(
        tmp_path,
        "  source: {image: 'ubuntu:24.04'}\n  description: d\n  resources: {vcpu: 2}\n  disk: true\n"
        "  ssh_keys: [alice]\n  egress: blocked\n  inbound: [{port: 8080, auth: open}]\n"
        "  files: [{path: /etc/x, content: 'top secret', secret: true}]\n",
    )
    values = config.values
    assert values["source"] == {"image": "ubuntu:24.04"}
    assert values["ssh_keys"] == {
        "alice": {"public_key": " ".join(KEY_A.split()[:2]), "expires_at": "2031-01-01T00:00:00Z"}
    }
    assert values["egress"] == {"egress-default": {"type": "outbound", "priority": 100, "action": "deny"}}
    assert set(values["inbound"]) == {"inbound-8080", "inbound-default"}
    assert values["files"]["/etc/x"].startswith("sha256:") and "top secret" not in str(values)
    assert config.sensitive == {'files["/etc/x"]'}
    assert config.exact == {"ssh_keys", "egress", "inbound"}


def test_fork_request_carries_the_whole_config(tmp_path: Path) -> None:
    config = _desired(tmp_path, "  source: ubuntu\n  description: d\n  ssh_keys: [alice]\n  egress: open\n")
    config = config.model_copy(update={"values": {**config.values, "source": {"vm": "base"}}})
    with pytest.raises(ValueError, match="has no id yet"):
        rmap.fork_request(config, source_id=None, keys={}, name="box")
    body = rmap.fork_request(config, source_id="vm-1", keys={"alice": KEY_A}, name="box").to_wire()
    assert body["source_vm_id"] == "vm-1" and body["name"] == "box" and body["description"] == "d"
    assert body["ssh_public_keys"]["alice"]["public_key"] == KEY_A  # the comment is kept on the wire
    assert body["ssh_public_keys"]["alice"]["expires_at"] == "2031-01-01T00:00:00Z"
    assert body["policies"]["rules"]["egress-default"]["action"] == "allow"


def test_patch_adds_changes_and_removes_by_id(tmp_path: Path) -> None:
    config = _desired(
        tmp_path, "  source: ubuntu\n  description: new\n  ssh_keys: [alice]\n  egress: blocked\n"
    )
    live = {
        "description": "old",
        "ssh_keys": {"intruder": {"public_key": " ".join(KEY_B.split()[:2])}},
        "egress": {
            "egress-default": {"type": "outbound", "priority": 100, "action": "allow"},
            "egress-allow-hosts": {"type": "outbound", "priority": 900, "action": "allow"},
        },
    }
    body = rmap.patch_request(config, live, keys={"alice": KEY_A})
    assert body is not None
    wire = body.to_wire()
    assert wire["description"] == "new"
    assert wire["ssh_public_keys"] == {
        "alice": {"public_key": KEY_A, "expires_at": "2031-01-01T00:00:00Z"},
        "intruder": None,
    }
    assert wire["policies"]["rules"] == {
        "egress-allow-hosts": None,
        "egress-default": {"type": "outbound", "priority": 100, "action": "deny"},
    }
    assert rmap.patch_request(config, {**config.values}, keys={}) is None


def test_patch_leaves_ignored_paths_alone(tmp_path: Path) -> None:
    config = _desired(
        tmp_path, "  source: ubuntu\n  description: new\n  resources: {vcpu: 4, memory_mib: 4096}\n"
    )
    ignoring = config.model_copy(
        update={"lifecycle": Lifecycle(ignore_changes=("description", "resources.memory_mib"))}
    )
    body = rmap.patch_request(
        ignoring, {"description": "old", "resources": {"vcpu": 2, "memory_mib": 1}}, keys={}
    )
    assert body is not None and body.to_wire() == {"resources": {"vcpu": 4}}


def test_stale_inherited_rules_are_dropped_after_a_fork() -> None:
    wanted: dict[str, dict[str, object]] = {"egress": {"egress-default": {}}}
    rules: dict[str, object] = {
        "egress-default": {},
        "egress-allow-ips": {},
        "inbound-8080": {},
        "team-rule": {},
    }
    assert rmap.stale_rules(wanted, rules) == {"egress-allow-ips": None}


def test_live_values_take_fork_time_facts_from_state() -> None:
    vm = Vm.model_validate(
        {
            "vm_id": "v1",
            "owner_org_id": "o",
            "created_at": "2026-01-01T00:00:00Z",
            "description": "d",
            "public": False,
            "state": "idle",
            "sessions": [],
            "resources": {"vcpu": 2, "memory_mib": 1024, "disk_mib": 2048},
            "network": {"ssh_public_keys": [{"id": "k", "public_key": KEY_B, "fingerprint": "f"}]},
            "name": "box",
        }
    )
    values = rmap.live_vm_values(
        vm,
        wanted={"source", "disk", "resources", "ssh_keys", "files", "egress"},
        rules={"egress-default": {"action": "deny", "type": "outbound", "match": None}, "other": {}},
        files={"/a": "00", "/b": None},
        recorded={"source": {"name": "ubuntu"}, "disk": True},
    )
    assert values == {
        "disk": True,
        "egress": {"egress-default": {"action": "deny", "type": "outbound"}},
        "files": {"/a": "sha256:00"},
        "resources": {"disk_mib": 2048, "memory_mib": 1024, "vcpu": 2},
        "source": {"name": "ubuntu"},
        "ssh_keys": {"k": {"public_key": " ".join(KEY_B.split()[:2])}},
    }


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2030-12-31T23:59:59Z", "2030-12-31T23:59:59Z"),
        ("2030-12-31T23:59:59.000Z", "2030-12-31T23:59:59Z"),
        ("2031-01-01T01:59:59+02:00", "2030-12-31T23:59:59Z"),
        ("not a time", "not a time"),
    ],
)
def test_timestamps_compare_by_instant(text: str, canonical: str) -> None:
    assert rmap.timestamp(text) == canonical


def test_mount_ids_round_trip() -> None:
    assert rmap.split_mount_id("vm-1/mnt-2") == ("vm-1", "mnt-2")
    with pytest.raises(ValueError):
        rmap.split_mount_id("mnt-2")


def _keys_sorted(value: object) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(_keys_sorted(v) for v in value.values())
    return True


def test_replicas_share_one_instance_of_their_canonical_values(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: t}\n---\n"
        f"apiVersion: arkerctl/v1\nkind: SSHKey\nmetadata: {{name: alice}}\nspec: {{public_key: '{KEY_A}', "
        "expires_at: '2031-01-01T00:00:00+00:00'}\n---\n"
        "apiVersion: arkerctl/v1\nkind: EgressPolicy\nmetadata: {name: r}\n"
        "spec: {allow: [pypi.org, 10.0.0.0/8], ports: [443]}\n---\n"
        "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: web}\n"
        "spec: {source: ubuntu, replicas: 3, ssh_keys: [alice], egress: r}\n"
    )
    configs = rmap.vm_configs(load_stack([tmp_path / "stack.yaml"], root=tmp_path))
    assert len(configs) == 3
    # Sorted at every level, so a plan's display copies can share them instead of copying.
    assert all(_keys_sorted(c.values) for c in configs)
    assert len({id(c.values["egress"]) for c in configs}) == 1
    assert len({id(c.values["ssh_keys"]) for c in configs}) == 1
    assert configs[0].values["ssh_keys"]["alice"]["expires_at"] == "2031-01-01T00:00:00Z"
