"""Out-of-band changes of every field kind: seen as drift (live vs last applied) and as a pending change
(desired vs live), converged by the next apply; what arkerctl does not manage is never drift."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reconciler.engine import Action

from .harness import ED25519, Stack, change

MANIFEST = f"""
apiVersion: arkerctl/v1
kind: Stack
metadata: {{name: drifty}}
---
apiVersion: arkerctl/v1
kind: SSHKey
metadata: {{name: alice}}
spec: {{public_key: "{ED25519["alice"]}"}}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {{name: box}}
spec:
  source: ubuntu
  description: the box
  resources: {{vcpu: 2, memory_mib: 4096}}
  ssh_keys: [alice]
  egress: {{allow: [github.com, 10.0.0.0/8]}}
  inbound: [{{port: 8080}}]
  files:
    - {{path: /etc/app/config.toml, content: "mode = 'prod'\\n"}}
    - {{path: /etc/app/token, content: "s3cr3t-token-value\\n", secret: true}}
---
apiVersion: arkerctl/v1
kind: Filesystem
metadata: {{name: data}}
spec: {{}}
---
apiVersion: arkerctl/v1
kind: Sync
metadata: {{name: box-data}}
spec: {{vm: box, filesystem: data, path: /mnt/data}}
"""


def _patch(body: dict[str, Any]) -> Callable[[Stack], None]:
    def change(stack: Stack) -> None:
        answer = stack.api("PATCH", "/v1/vms/box", body)
        assert answer.status_code == 200, answer.text

    return change


def _write_file(path: str, content: bytes) -> Callable[[Stack], None]:
    def change(stack: Stack) -> None:
        vm_id = stack.live_vms()["box"]["vm_id"]
        stack.with_client(lambda client: client.sync_write(vm_id, {path: content}))

    return change


def _delete_mount(stack: Stack) -> None:
    vm_id = stack.live_vms()["box"]["vm_id"]
    mounts = stack.api("GET", f"/v1/vms/{vm_id}/mounts").json()["mounts"]
    assert stack.api("DELETE", f"/v1/vms/{vm_id}/mounts/{mounts[0]['mount_id']}").status_code == 200


# (id, change, drifted path (prefix) or None for a deleted object, expected action on box/sync)
CASES = [
    ("description", _patch({"description": "changed by hand"}), "description", "vm.box", Action.UPDATE),
    ("resources", _patch({"resources": {"vcpu": 4}}), "resources.vcpu", "vm.box", Action.UPDATE),
    (
        "ssh-key-added",
        _patch({"ssh_public_keys": {"intruder": {"public_key": ED25519["ci"]}}}),
        "ssh_keys.intruder",
        "vm.box",
        Action.UPDATE,
    ),
    (
        "ssh-key-removed",
        _patch({"ssh_public_keys": {"alice": None}}),
        "ssh_keys.alice",
        "vm.box",
        Action.UPDATE,
    ),
    (
        "egress-rule-changed",
        _patch(
            {
                "policies": {
                    "rules": {"egress-default": {"type": "outbound", "priority": 100, "action": "allow"}}
                }
            }
        ),
        'egress["egress-default"].action',
        "vm.box",
        Action.UPDATE,
    ),
    (
        "inbound-rule-removed",
        _patch({"policies": {"rules": {"inbound-8080": None}}}),
        'inbound["inbound-8080"]',
        "vm.box",
        Action.UPDATE,
    ),
    (
        "file-changed",
        _write_file("/etc/app/config.toml", b"mode = 'debug'\n"),
        'files["/etc/app/config.toml"]',
        "vm.box",
        Action.UPDATE,
    ),
    (
        "secret-file-changed",
        _write_file("/etc/app/token", b"stolen\n"),
        'files["/etc/app/token"]',
        "vm.box",
        Action.UPDATE,
    ),
    ("mount-deleted", _delete_mount, None, "sync.box-data", Action.CREATE),
]


@pytest.mark.parametrize(
    ("change", "path", "address", "action"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_out_of_band_change_is_drift_and_converges(
    blank: Stack, change: Callable[[Stack], None], path: str | None, address: str, action: Action
) -> None:
    blank.write("stack.yaml", MANIFEST)
    assert blank.apply().ok
    assert not blank.plan().plan.has_changes

    change(blank)
    planned = blank.plan()
    drift = {d.address: d for d in planned.plan.drift}
    assert set(drift) == {address}
    if path is None:
        assert drift[address].deleted
    else:
        assert [c.path for c in drift[address].changes if c.path.startswith(path)], drift[address].changes
    rc = planned.plan.change_for(address)
    assert rc is not None and rc.action is action
    assert planned.plan.summary.destroy == 0

    assert blank.apply().ok
    after = blank.plan()
    assert not after.plan.has_changes and not after.plan.drift


def test_secret_file_drift_never_shows_the_content(blank: Stack) -> None:
    blank.write("stack.yaml", MANIFEST)
    assert blank.apply().ok
    _write_file("/etc/app/token", b"stolen\n")(blank)
    planned = blank.plan()
    text = planned.plan.model_dump_json()
    assert "s3cr3t-token-value" not in text and "stolen" not in text
    (change,) = [c for c in planned.plan.drift[0].changes if "token" in c.path]
    assert change.sensitive and change.before == "(sensitive)" and change.after == "(sensitive)"


def test_vm_deleted_outside_is_recreated_with_its_binding(blank: Stack) -> None:
    blank.write("stack.yaml", MANIFEST)
    assert blank.apply().ok
    old = blank.applied_state().resources["vm.box"].id
    assert blank.api("DELETE", "/v1/vms/box").status_code == 200
    planned = blank.plan()
    assert {d.address for d in planned.plan.drift if d.deleted} >= {"vm.box"}
    assert change(planned.plan, "vm.box").action is Action.CREATE
    assert change(planned.plan, "sync.box-data").action.creates
    assert blank.apply().ok
    new = blank.applied_state().resources["vm.box"].id
    assert new != old and blank.live_vms()["box"]["vm_id"] == new
    assert not blank.plan().plan.has_changes


def test_filesystem_deleted_outside_is_recreated(blank: Stack) -> None:
    blank.write("stack.yaml", MANIFEST)
    assert blank.apply().ok
    fs_id = blank.applied_state().resources["filesystem.data"].id
    _delete_mount(blank)
    assert blank.api("DELETE", f"/v1/filesystems/{fs_id}").status_code == 200
    planned = blank.plan()
    assert change(planned.plan, "filesystem.data").action is Action.CREATE
    assert blank.apply().ok
    assert not blank.plan().plan.has_changes


def test_unmanaged_fields_and_rules_are_not_drift(blank: Stack) -> None:
    blank.write("stack.yaml", MANIFEST)
    assert blank.apply().ok
    # A rule under an id arkerctl does not own, a resource field the manifest leaves out, and the same
    # managed rules written back in another key order: none of it is drift.
    rules = blank.api("GET", "/v1/vms/box").json()["policies"]["rules"]
    reordered = {rid: dict(reversed(list(rule.items()))) for rid, rule in reversed(list(rules.items()))}
    body = {
        "resources": {"disk_mib": 20480},
        "policies": {
            "rules": {**reordered, "team-rule": {"type": "outbound", "priority": 5000, "action": "allow"}}
        },
    }
    assert blank.api("PATCH", "/v1/vms/box", body).status_code == 200
    planned = blank.plan()
    assert not planned.plan.drift and not planned.plan.has_changes
