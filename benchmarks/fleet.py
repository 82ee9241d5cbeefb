"""The benchmark fleet, written as manifests: one base VM forked from a golden, two replicated groups
forked from it, shared filesystems bound into every replica, SSH keys, an egress policy and a few files.

The same shape serves every benchmark; only the VM count changes (1 base + two groups of the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["FleetShape", "write_fleet"]

_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICvYBsl/DgCvGh/DMo+nY6kmlyPI24+sT5OvcdsYbW6Q bench@host"

_TEMPLATE = """\
apiVersion: arkerctl/v1
kind: Stack
metadata: {{name: {name}}}
spec:
  state: file://.arkerctl/state.json
---
apiVersion: arkerctl/v1
kind: SSHKey
metadata: {{name: ops}}
spec: {{public_key: "{key}"}}
---
apiVersion: arkerctl/v1
kind: EgressPolicy
metadata: {{name: restricted}}
spec:
  allow: [github.com, pypi.org, 10.20.0.0/16]
  ports: [443]
---
apiVersion: arkerctl/v1
kind: VM
metadata: {{name: base}}
spec:
  source: {{name: ubuntu}}
  description: benchmark base
  resources: {{vcpu: 2, memory_mib: 4096, disk_mib: 20480}}
  ssh_keys: [ops]
  egress: restricted
  files:
    - {{path: /home/user/app/config.toml, content: "[app]\\nmode = 'bench'\\n"}}
    - {{path: /home/user/app/.env, content: "TOKEN=bench\\n", secret: true}}
    - {{path: /etc/motd, content: "benchmark fleet\\n"}}
---
apiVersion: arkerctl/v1
kind: Filesystem
metadata: {{name: datasets}}
spec: {{}}
---
apiVersion: arkerctl/v1
kind: Filesystem
metadata: {{name: cache}}
spec: {{}}
"""

_GROUP = """\
---
apiVersion: arkerctl/v1
kind: VM
metadata: {{name: {group}}}
spec:
  source: base
  replicas: {replicas}
  description: benchmark {group}
  resources: {{vcpu: 2, memory_mib: 4096}}
  ssh_keys: [ops]
  egress: restricted
  files:
    - {{path: /home/user/app/role.txt, content: "{group}\\n"}}
    - {{path: /home/user/app/settings.toml, content: "[{group}]\\nthreads = 4\\n"}}
---
apiVersion: arkerctl/v1
kind: Sync
metadata: {{name: {group}-{filesystem}}}
spec: {{vm: {group}, filesystem: {filesystem}, path: /mnt/{filesystem}}}
"""


@dataclass(frozen=True)
class FleetShape:
    """``vms`` VMs in all: ``base`` plus the groups ``web`` and ``worker`` sharing the rest."""

    vms: int

    def __post_init__(self) -> None:
        if self.vms < 3:
            raise ValueError("a fleet needs at least 3 VMs (a base and one replica per group)")

    @property
    def groups(self) -> tuple[tuple[str, str, int], ...]:
        """(group, filesystem, replicas) of each replicated group."""
        web = (self.vms - 1) // 2
        return (("web", "cache", web), ("worker", "datasets", self.vms - 1 - web))

    @property
    def filesystems(self) -> int:
        return 2

    @property
    def syncs(self) -> int:
        return self.vms - 1

    @property
    def resources(self) -> int:
        return self.vms + self.filesystems + self.syncs

    @property
    def files_per_vm(self) -> dict[str, int]:
        return {"base": 3, "replica": 2}


def write_fleet(root: Path, shape: FleetShape, *, name: str = "bench-fleet") -> Path:
    """Write the fleet's manifests into ``root`` (created) and return it."""
    root.mkdir(parents=True, exist_ok=True)
    text = _TEMPLATE.format(name=name, key=_KEY)
    for group, filesystem, replicas in shape.groups:
        text += _GROUP.format(group=group, filesystem=filesystem, replicas=replicas)
    (root / "fleet.yaml").write_text(text, encoding="utf-8")
    return root
