"""The FastVM resource mapping (pure): desired -> comparable values, live -> the same shape, launch bodies."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

from reconciler.engine.paths import format_path
from reconciler.manifest import DesiredState, DesiredVM, ResolvedEgress, load_stack
from reconciler.providers.fastvm import Firewall, Vm
from reconciler.providers.fastvm import resources as rmap

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q alice@laptop"
MANIFEST = f"""
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
  disk_gib: 20
  metadata: {{team: infra}}
  env: {{TOKEN: hunter2}}
  ttl: {{action: pause, seconds: 60}}
  ssh_keys: [alice]
  services: [{{name: http, port: 8080}}]
  egress: {{allow: [github.com, 192.0.2.7], ports: [443, [8000, 8100]]}}
  dns: {{mode: allow, domains: [GitHub.com., a.example]}}
  ingress:
    rules:
      - {{cidr: 203.0.113.9, description: office}}
      - {{action: deny, cidr: 0.0.0.0/0, protocol: any}}
  files: [{{path: /etc/token, content: "x", secret: true}}]
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
spec: {{provider: arker, source: ubuntu}}
"""


def _desired(tmp_path: Path) -> DesiredState:
    (tmp_path / "stack.yaml").write_text(textwrap.dedent(MANIFEST))
    return load_stack([tmp_path])


def _web(desired: DesiredState) -> DesiredVM:
    vm = desired.by_address("vm.web")
    assert isinstance(vm, DesiredVM)
    return vm


def test_configs_hold_only_fastvm_resources(tmp_path: Path) -> None:
    configs = rmap.configs(_desired(tmp_path))
    assert [(c.address, c.provider) for c in configs] == [
        ("filesystem.data", "fastvm"),
        ("sync.web-data", "fastvm"),
        ("vm.web", "fastvm"),
    ]
    sync = configs[1]
    assert sync.force_new == {"vm", "filesystem", "path"} and sync.replace_with == (
        "filesystem.data",
        "vm.web",
    )
    assert configs[0].values == {"size_gib": 5} and configs[0].force_new == {"access_mode"}


def test_vm_values_force_new_sensitive_and_exact(tmp_path: Path) -> None:
    config = rmap.vm_config(_web(_desired(tmp_path)))
    values = config.values
    assert config.force_new == {"machine_type", "snapshot", "disk_gib", "env"}
    assert config.sensitive == {"env", format_path(("files", "/etc/token"))}
    assert config.exact == {"env", "metadata", "services"}
    assert values["env"] == {"TOKEN": rmap.env_digest("hunter2")} and "hunter2" not in str(values)
    assert values["ssh_keys"] == [rmap.fingerprint(KEY)] and values["ssh_keys"][0].startswith("SHA256:")
    assert values["dns"] == {"block_bypass": False, "domains": ["a.example", "github.com"], "mode": "allow"}
    assert values["ingress"] == {
        "default": "deny",
        "rules": [
            {
                "action": "allow",
                "description": "office",
                "kind": "cidr",
                "ports": "any",
                "protocol": "tcp",
                "value": "203.0.113.9/32",
            },
            {"action": "deny", "kind": "cidr", "ports": "any", "protocol": "any", "value": "0.0.0.0/0"},
        ],
    }
    assert values["services"] == {"http": {"h2c": False, "port": 8080}}
    assert values["ttl"] == {"action": "pause", "seconds": 60}


def test_egress_policies_compile_to_fastvm_rules() -> None:
    allow = ResolvedEgress(
        name=None, mode="allow", entries=("192.0.2.7", "github.com"), ports=(443, (8000, 8100))
    )
    compiled = rmap.compile_egress(allow)
    assert compiled["default"] == "deny"
    assert [(r["kind"], r["value"], r["ports"], r["action"]) for r in compiled["rules"]] == [
        ("cidr", "192.0.2.7/32", "443", "allow"),
        ("cidr", "192.0.2.7/32", "8000-8100", "allow"),
        ("fqdn", "github.com", "443", "allow"),
        ("fqdn", "github.com", "8000-8100", "allow"),
        ("fqdn", "*.github.com", "443", "allow"),  # our hosts match their subdomains
        ("fqdn", "*.github.com", "8000-8100", "allow"),
    ]
    block = rmap.compile_egress(ResolvedEgress(name="b", mode="block", entries=("10.0.0.0/8",)))
    assert block == {
        "default": "allow",
        "rules": [
            {"action": "deny", "kind": "cidr", "ports": "any", "protocol": "any", "value": "10.0.0.0/8"}
        ],
    }
    assert rmap.compile_egress(ResolvedEgress(name=None, mode="open")) == {"default": "allow", "rules": []}
    assert rmap.compile_egress(ResolvedEgress(name=None, mode="blocked")) == {"default": "deny", "rules": []}


def _live_vm(config_values: dict[str, object], **overrides: object) -> Vm:
    axes = rmap.firewall_axes(config_values)
    payload: dict[str, object] = {
        "id": "vm-1",
        "name": "web",
        "orgId": "acme",
        "status": "running",
        "cpu": 1,
        "memoryMiB": 2048,
        "diskGiB": 20,
        "createdAt": datetime(2030, 1, 1, tzinfo=timezone.utc).isoformat(),
        "machineName": "c1m2",
        "metadata": {"team": "infra", rmap.LINEAGE_TAG: "L", rmap.ADDRESS_TAG: "vm.web"},
        "envVars": {"TOKEN": "hunter2"},
        "ttl": {"action": "pause", "seconds": 60},
        "firewall": axes,
        # The effective firewall carries the services' auto rules: never compared.
        "effectiveFirewall": {"ingress": {"default": "allow", "rules": []}},
    }
    payload.update(overrides)
    return Vm.model_validate(payload)


def test_live_values_match_desired_and_ignore_the_effective_firewall(tmp_path: Path) -> None:
    config = rmap.vm_config(_web(_desired(tmp_path)))
    vm = _live_vm(config.values)
    live = rmap.live_vm_values(
        vm,
        wanted=config.values,
        ssh_keys=[rmap.fingerprint(KEY)],
        services={"http": (8080, False)},
        files={"/etc/token": config.values["files"]["/etc/token"].removeprefix("sha256:")},
        recorded={},
    )
    assert live == config.values
    # Only what is wanted is read: an unmanaged field never shows up.
    assert rmap.live_vm_values(
        vm, wanted=["disk_gib"], ssh_keys=None, services=None, files=None, recorded={}
    ) == {"disk_gib": 20}


def test_launch_request_carries_the_ownership_tags_and_the_firewall(tmp_path: Path) -> None:
    desired = _desired(tmp_path)
    web = _web(desired)
    config = rmap.vm_config(web)
    body = rmap.launch_request(config, web, lineage="L-1", snapshot_id=None).to_wire()
    assert body["metadata"] == {"arkerctl-address": "vm.web", "arkerctl-lineage": "L-1", "team": "infra"}
    assert body["envVars"] == {"TOKEN": "hunter2"} and body["machineType"] == "c1m2" and body["diskGiB"] == 20
    assert body["ttl"] == {"action": "pause", "seconds": 60}
    firewall = Firewall.model_validate(body["firewall"])
    assert firewall.dns.block_bypass is False and firewall.egress.default == "deny"
    assert body["firewall"]["dns"]["blockBypass"] is False  # reference JSON spelling on the wire


def test_attachment_ids_round_trip() -> None:
    assert rmap.split_attachment_id("vm-1/vol-2") == ("vm-1", "vol-2")
    for bad in ("vm-1", "/vol", "vm/"):
        try:
            rmap.split_attachment_id(bad)
        except ValueError as err:
            assert "VM_ID/VOLUME_ID" in str(err)
        else:  # pragma: no cover - the assertion documents the failure
            raise AssertionError(bad)
