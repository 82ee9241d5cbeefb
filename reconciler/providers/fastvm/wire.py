"""FastVM wire models (camelCase JSON): responses are read strictly but tolerate fields a newer server
adds; requests refuse unknown fields. Firewalls are the reference model (three axes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "DeleteResult",
    "DnsPolicy",
    "ExecResult",
    "Firewall",
    "FirewallRule",
    "IngressPolicy",
    "LaunchRequest",
    "OrgQuotas",
    "PresignedUrls",
    "QuotaValues",
    "Service",
    "Snapshot",
    "SshKey",
    "TrafficPolicy",
    "Ttl",
    "Vm",
    "VmUpdate",
    "Volume",
    "VolumeAttachment",
]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        """JSON body: aliases, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class _Request(_Wire):
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Ttl(_Request):
    action: Literal["pause", "delete"]
    seconds: Annotated[int, Field(ge=1, le=31_536_000)]


class FirewallRule(_Request):
    action: Literal["allow", "deny"]
    kind: Literal["cidr", "fqdn"]
    value: str
    protocol: Literal["tcp", "udp", "any"] = "any"
    ports: str = "any"
    description: str | None = None


class TrafficPolicy(_Request):
    """One direction: a default action and ordered rules (ingress rules are ``kind: cidr`` only)."""

    default: Literal["allow", "deny"]
    rules: tuple[FirewallRule, ...] = ()


class IngressPolicy(TrafficPolicy):
    default: Literal["allow", "deny"] = "deny"


class _EgressPolicy(TrafficPolicy):
    default: Literal["allow", "deny"] = "allow"


class DnsPolicy(_Request):
    mode: Literal["allow", "deny"] = "deny"
    domains: tuple[str, ...] = ()
    block_bypass: bool = False


class Firewall(_Request):
    """The whole firewall; an omitted axis takes its default (ingress deny, egress allow, dns deny-none)."""

    ingress: IngressPolicy = IngressPolicy()
    egress: _EgressPolicy = _EgressPolicy()
    dns: DnsPolicy = DnsPolicy()


class Vm(_Wire):
    id: Annotated[str, Field(min_length=1)]  # never empty: state keys objects by it
    name: str
    org_id: str
    status: str  # provisioning | running | pausing | paused | resuming | stopped | deleting | error | ...
    cpu: int
    memory_mib: int = Field(alias="memoryMiB")
    disk_gib: int = Field(alias="diskGiB")
    created_at: datetime
    machine_name: str | None = None
    source_name: str | None = None
    metadata: dict[str, str] = {}
    env_vars: dict[str, str] = {}
    firewall: Firewall | None = None
    effective_firewall: Firewall | None = None
    ttl: Ttl | None = None
    expires_at_ms: int | None = None
    ttl_remaining_ms: int | None = None
    paused_at: datetime | None = None
    public_ipv6: str | None = None


class LaunchRequest(_Request):
    machine_type: str | None = None
    snapshot_id: str | None = None
    name: str | None = None
    disk_gib: Annotated[int | None, Field(alias="diskGiB")] = None
    metadata: dict[str, str] | None = None
    env_vars: dict[str, str] | None = None
    firewall: Firewall | None = None
    ttl: Ttl | None = None


class VmUpdate(_Request):
    """PATCH /v1/vms/{id}: name, metadata (the whole map), ttl. ``clear_ttl`` sends ``ttl: null``."""

    name: str | None = None
    metadata: dict[str, str] | None = None
    ttl: Ttl | None = None
    clear_ttl: bool = False

    def to_wire(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"clear_ttl"})
        if self.clear_ttl:
            body["ttl"] = None
        return body


class Service(_Wire):
    name: str
    port: int
    h2c: bool = Field(default=False, alias="h2c")


class SshKey(_Wire):
    fingerprint: str
    public_key: str
    comment: str | None = None
    added_at: datetime | None = None


class VolumeAttachment(_Wire):
    vm_id: str
    volume_id: str
    mount_path: str
    read_only: bool
    mount_status: str  # pending | mounted | failed
    mount_error: str | None = None
    attached_at: datetime | None = None


class Volume(_Wire):
    id: Annotated[str, Field(min_length=1)]  # never empty: state keys objects by it
    name: str
    org_id: str
    size_gib: int = Field(alias="sizeGiB")
    access_mode: str  # rw | ro
    created_at: datetime
    attachments: tuple[VolumeAttachment, ...] = ()


class Snapshot(_Wire):
    id: Annotated[str, Field(min_length=1)]  # never empty: state keys objects by it
    name: str
    org_id: str
    vm_id: str
    status: str
    created_at: datetime


class QuotaValues(_Wire):
    vcpu: int
    memory_mib: int = Field(alias="memoryMiB")
    disk_gib: int = Field(alias="diskGiB")
    snapshot_count: int


class OrgQuotas(_Wire):
    org_id: str
    limits: QuotaValues
    usage: QuotaValues


class PresignedUrls(_Wire):
    upload_url: str
    download_url: str
    expires_in_sec: int
    max_upload_bytes: int


class ExecResult(_Wire):
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False
    duration_ms: int = 0


class DeleteResult(_Wire):
    id: str
    deleted: bool
