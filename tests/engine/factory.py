"""Realistic VM / Filesystem / Sync shaped engine values, built without any provider import.

The shapes mimic what a provider's mapping produces: comparable values holding only the fields the
manifest manages, secrets as ``sha256:`` digests, keyed collections for keys/rules/files.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.engine import (
    Lifecycle,
    LiveResource,
    Plan,
    ResourceChange,
    ResourceConfig,
    state_values,
)
from reconciler.state import ResourceState, StateDocument, secret_digest

SECRET_TEXT = "TOKEN=hunter2-do-not-leak\n"
SECRET_PATH = "/home/user/.env"

VM_FORCE_NEW = frozenset({"source", "disk", "durable", "public"})


def vm(
    name: str,
    *,
    source: Mapping[str, str] | None = None,
    vcpu: int = 2,
    memory_mib: int = 4096,
    description: str = "CI sandbox",
    ssh_keys: Iterable[str] = ("alice",),
    secret: str | None = SECRET_TEXT,
    egress: str = "restricted",
    lifecycle: Lifecycle | None = None,
    depends_on: Iterable[str] = (),
) -> ResourceConfig:
    source = dict(source) if source is not None else {"name": "ubuntu"}
    values: dict[str, Any] = {
        "description": description,
        "resources": {"vcpu": vcpu, "memory_mib": memory_mib, "disk_mib": 20480},
        "source": source,
        "disk": True,
        "durable": False,
        "public": False,
        "ssh_keys": {key: f"ssh-ed25519 AAAA{key} {key}@host" for key in ssh_keys},
        "policy": {"rules": _egress_rules(egress)},
        "files": {"/home/user/app/config.toml": secret_digest("[app]\nport = 8080\n")},
    }
    sensitive = set()
    if secret is not None:
        values["files"][SECRET_PATH] = secret_digest(secret)
        sensitive.add(f'files["{SECRET_PATH}"]')
    deps = set(depends_on)
    if "vm" in source:
        deps.add(f"vm.{source['vm']}")
    return ResourceConfig(
        address=f"vm.{name}",
        kind="VM",
        name=name,
        values=values,
        force_new=VM_FORCE_NEW,
        sensitive=frozenset(sensitive),
        exact=frozenset({"source", "ssh_keys", "policy.rules"}),
        depends_on=tuple(sorted(deps)),
        lifecycle=lifecycle or Lifecycle(),
    )


def _egress_rules(mode: str) -> dict[str, Any]:
    if mode == "open":
        return {"egress-default": {"type": "outbound", "priority": 100, "action": "allow"}}
    return {
        "egress-allow-hosts": {
            "type": "outbound",
            "priority": 900,
            "action": "allow",
            "match": {"hosts": ["github.com", "pypi.org"]},
        },
        "egress-default": {"type": "outbound", "priority": 100, "action": "deny"},
    }


def filesystem(name: str, *, lifecycle: Lifecycle | None = None) -> ResourceConfig:
    return ResourceConfig(
        address=f"filesystem.{name}",
        kind="Filesystem",
        name=name,
        values={"name": name},
        force_new=frozenset({"name"}),
        lifecycle=lifecycle or Lifecycle(),
    )


def sync(
    name: str, *, vm_name: str, fs: str, path: str = "/mnt/data", lifecycle: Lifecycle | None = None
) -> ResourceConfig:
    return ResourceConfig(
        address=f"sync.{name}",
        kind="Sync",
        name=name,
        values={"vm": vm_name, "filesystem": fs, "path": path},
        force_new=frozenset({"vm", "filesystem", "path"}),
        depends_on=(f"vm.{vm_name}", f"filesystem.{fs}"),
        replace_with=(f"vm.{vm_name}",),
        lifecycle=lifecycle or Lifecycle(),
    )


def object_id(address: str) -> str:
    return "id-" + address.replace(".", "-")


def live_of(config: ResourceConfig, *, id: str | None = None, **changes: Any) -> LiveResource:
    """The live object as a provider would see it after applying ``config``, plus unmanaged fields.

    ``changes`` overwrite top-level values (``resources={...}``) to simulate out-of-band edits.
    """
    values = copy.deepcopy(config.values)
    values.update({"status": "running", "created_at": "2026-01-01T00:00:00Z", "org": "acme"})
    if config.kind == "VM":
        # Fields the platform adds that the manifest does not manage.
        values["resources"]["gpu"] = 0
        values["policy"]["inherited"] = True
    values.update(copy.deepcopy(changes))
    return LiveResource(
        address=config.address,
        kind=config.kind,
        name=config.name,
        id=id or object_id(config.address),
        values=values,
    )


def applied(configs: Iterable[ResourceConfig], *, serial: int = 3) -> StateDocument:
    """A state in which every config was applied as is."""
    doc = StateDocument(lineage="lineage-1", serial=serial, stack="fleet")
    for config in configs:
        doc = doc.with_resource(
            ResourceState(
                address=config.address,
                kind=config.kind,
                name=config.name,
                id=object_id(config.address),
                config_hash=config.config_hash,
                values=state_values(config),
                dependencies=config.dependencies,
            )
        )
    return doc


def world(*configs: ResourceConfig) -> tuple[list[ResourceConfig], dict[str, LiveResource], StateDocument]:
    """Desired, live and state for a fleet that is exactly as declared."""
    return list(configs), {c.address: live_of(c) for c in configs}, applied(configs)


def change(p: Plan, address: str) -> ResourceChange:
    """The plan's change for ``address``, which the test knows is planned."""
    rc = p.change_for(address)
    assert rc is not None, address
    return rc


def fleet() -> list[ResourceConfig]:
    """A small realistic stack: a base VM, a worker forked from it, a filesystem bound into the worker."""
    return [
        vm("base"),
        vm("worker", source={"vm": "base"}, vcpu=4),
        filesystem("datasets"),
        sync("worker-datasets", vm_name="worker", fs="datasets", path="/mnt/datasets"),
    ]
