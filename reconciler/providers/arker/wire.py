"""Wire models of the Arker public API (contract: the ``arker`` package's ``_openapi.json``, v0.3.0).

Only the operations arkerctl uses are modelled. Two rules:

* **Responses** ignore unknown fields (``extra="ignore"``) so a newer server that adds fields does not break
  us, and they default the fields the contract says clients must tolerate being absent (``hostname``,
  ``immutable``, ``policies`` and ``network.ssh_public_keys`` on list rows, ...). Everything else is
  validated *strictly* (no ``"2"`` for ``2``): a missing required field or a wrong type is a contract
  breach, which the client reports as ``ArkerProtocolError``. Enumerations (VM state, mount state, run
  state) are kept as plain strings so a new value is not a parse failure of a 10,000-VM listing.
* **Requests** forbid unknown fields and are serialized with ``exclude_unset``: a field you did not set is
  not sent, a field you set to ``None`` is sent as ``null`` (which, in PATCH maps, removes the entry).

Network-policy rules are kept as plain JSON objects keyed by rule id: their schema is a wide union (port,
schedule and lifecycle rules) that arkerctl compares and writes whole, never interprets field by field.
Policy secrets in requests are ``SecretStr`` so a logged or printed request shows ``**********``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)

__all__ = [
    "BackgroundRunResponse",
    "CompletedRunResponse",
    "DeleteResult",
    "Filesystem",
    "FilesystemCreateRequest",
    "ForkRequest",
    "HealthResponse",
    "ListFilesystemsResponse",
    "ListMountsResponse",
    "ListRegionsResponse",
    "ListVmsResponse",
    "ManifestEntry",
    "Mount",
    "MountCreateRequest",
    "PatchVmRequest",
    "PolicyDoc",
    "PolicyRules",
    "PolicyUpdate",
    "PolicyWriteRequest",
    "RegionPlacement",
    "ResourcesInput",
    "Run",
    "RunRequest",
    "Session",
    "SshKeyInput",
    "SshPublicKeyInfo",
    "SyncChunkWriteResult",
    "SyncCommitWriteResult",
    "SyncFileError",
    "SyncManifestResponse",
    "SyncPresignedWriteRequestResult",
    "SyncReadInlineResponse",
    "SyncReadPresignedResponse",
    "SyncWriteResponse",
    "Vm",
    "VmNetwork",
    "VmPolicies",
    "VmResources",
    "VmRules",
    "WhoamiResponse",
]

# Keys of ``rules``, ``ssh_public_keys`` and friends (contract ``propertyNames``).
_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

JsonObject = dict[str, Any]


# An object id the API hands back: never empty (an empty id in state would make the object unmanageable).
ObjectId = Annotated[str, Field(min_length=1)]


class _Response(BaseModel):
    # Strictness is applied per call (`model_validate_json(raw, strict=True)` in the client), so code that
    # builds these models from Python values (tests, fixtures) keeps the usual coercions.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_wire(self) -> JsonObject:
        """The JSON body: set fields only, explicit ``None`` kept as ``null``."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


def _check_keys(keys: Mapping[str, Any] | None, what: str) -> None:
    for key in keys or {}:
        if not _KEY_ID.match(key):
            raise ValueError(
                f"{what} id {key!r} must be 1-64 chars: lowercase letters, digits, '.', '_', '-'"
                " (starting with a letter or digit)"
            )


# ── Service ─────────────────────────────────────────────────────────────────────────────────────────────


class HealthResponse(_Response):
    status: str
    timestamp: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class RegionPlacement(_Response):
    provider: str
    region: str
    endpoint: str
    platforms: tuple[str, ...]


class ListRegionsResponse(_Response):
    regions: tuple[RegionPlacement, ...]


class WhoamiResponse(_Response):
    org_id: str
    org_name: str


# ── VMs ─────────────────────────────────────────────────────────────────────────────────────────────────


class SshPublicKeyInfo(_Response):
    id: str
    public_key: str
    fingerprint: str
    name: str | None = None
    expires_at: str | None = None


class VmNetwork(_Response):
    # Omitted from list responses when empty.
    ssh_public_keys: tuple[SshPublicKeyInfo, ...] = ()


class VmResources(_Response):
    vcpu: int | None = None
    memory_mib: int | None = None
    disk_mib: int | None = None
    gpu_sms: int | None = None
    gpu_vram_mib: int | None = None
    gpu_count: int | None = None


class VmPolicies(_Response):
    rules: dict[str, JsonObject] = Field(default_factory=dict)
    # Values come back masked (``***``): only the names are meaningful.
    secrets: dict[str, str] = Field(default_factory=dict)
    mitm_domains: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


class Session(_Response):
    session_id: str
    state: str
    cwd: str


class Vm(_Response):
    vm_id: ObjectId
    owner_org_id: str
    created_at: str
    description: str | None
    public: bool
    state: str  # VmState: idle | running
    sessions: tuple[Session, ...]
    resources: VmResources
    network: VmNetwork
    name: str | None = None
    hostname: str | None = None
    immutable: bool | None = None  # "not every listing reports it"
    root_source_vm_id: str | None = None
    root_source_vm_name: str | None = None
    region: str | None = None
    provider: str | None = None
    last_active_at: str | None = None
    policies: VmPolicies | None = None  # omitted from list responses
    platform: str | None = None
    pool_id: str | None = None

    @property
    def ssh_key_ids(self) -> tuple[str, ...]:
        return tuple(sorted(key.id for key in self.network.ssh_public_keys))


class PolicyRules(_Response):
    rules: dict[str, JsonObject] = Field(default_factory=dict)


class VmRules(_Response):
    """The part of a ``getVm`` answer a refresh reads (the list has everything else): the id and the
    policy rules, validated as strictly as in :class:`Vm`; the rest of the document is not looked at."""

    vm_id: ObjectId
    policies: PolicyRules | None = None

    @property
    def rules(self) -> dict[str, JsonObject]:
        return self.policies.rules if self.policies is not None else {}


class ListVmsResponse(_Response):
    vms: tuple[Vm, ...]
    next_cursor: str | None = None


class DeleteResult(_Response):
    deleted: bool


class ResourcesInput(_Request):
    vcpu: int | None = Field(default=None, ge=1, le=255)
    memory_mib: int | None = Field(default=None, ge=0)
    disk_mib: int | None = Field(default=None, ge=0)
    vgpu: float | None = None


class SshKeyInput(_Request):
    public_key: str = Field(min_length=1)
    name: str | None = Field(default=None, max_length=255)
    expires_at: str | None = None

    def to_wire(self) -> JsonObject:
        # The contract types name/expires_at as strings: absent, never null.
        return self.model_dump(mode="json", exclude_none=True)


class PolicyUpdate(_Request):
    """A keyed change: rules/secrets named are written (a value) or removed (``None``); others are kept."""

    rules: dict[str, JsonObject | None] | None = None
    secrets: dict[str, SecretStr | None] | None = None

    @field_validator("rules")
    @classmethod
    def _rule_ids(cls, value: dict[str, JsonObject | None] | None) -> dict[str, JsonObject | None] | None:
        _check_keys(value, "rule")
        return value

    @field_validator("secrets")
    @classmethod
    def _secret_values(cls, value: dict[str, SecretStr | None] | None) -> dict[str, SecretStr | None] | None:
        for name, secret in (value or {}).items():
            if secret is not None and secret.get_secret_value() == "***":
                raise ValueError(f"secret {name!r}: '***' is the API's mask, not a value it accepts")
        return value

    @field_serializer("secrets", when_used="json")
    def _reveal(self, value: dict[str, SecretStr | None] | None) -> dict[str, str | None] | None:
        # Only the JSON body sent to the API carries the values; repr() and python dumps stay masked.
        if value is None:
            return None
        return {name: None if s is None else s.get_secret_value() for name, s in sorted(value.items())}


def _ssh_keys_wire(keys: Mapping[str, SshKeyInput | None]) -> JsonObject:
    return {key_id: None if key is None else key.to_wire() for key_id, key in sorted(keys.items())}


class PatchVmRequest(_Request):
    description: str | None = Field(default=None, max_length=1024)
    resources: ResourcesInput | None = None
    ssh_public_keys: dict[str, SshKeyInput | None] | None = None
    policies: PolicyUpdate | None = None
    immutable: Literal[True] | None = None

    @field_validator("ssh_public_keys")
    @classmethod
    def _key_ids(cls, value: dict[str, SshKeyInput | None] | None) -> dict[str, SshKeyInput | None] | None:
        _check_keys(value, "SSH key")
        return value

    def to_wire(self) -> JsonObject:
        body = super().to_wire()
        if self.ssh_public_keys is not None:
            body["ssh_public_keys"] = _ssh_keys_wire(self.ssh_public_keys)
        return body


class ForkRequest(_Request):
    """Exactly one source: ``source_vm_id``, ``source_vm_name`` (optionally with ``source_org_name``) or
    ``image``. The ``dockerfile`` source is not offered: the API always refuses it."""

    source_vm_id: str | None = None
    source_vm_name: str | None = None
    source_org_name: str | None = None
    image: str | None = None
    name: str | None = None
    description: str | None = Field(default=None, max_length=1024)
    public: bool | None = None
    ssh_public_keys: dict[str, SshKeyInput | None] | None = None
    disk: bool | None = None
    durable: bool | None = None
    platforms: tuple[str, ...] | None = None
    layers: tuple[Literal["disk", "memory"], ...] | None = None
    queueing_timeout: int | None = Field(default=None, ge=0)
    nestedvirt: bool | None = None
    policies: PolicyUpdate | None = None
    resources: ResourcesInput | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ForkRequest:
        sources = [s for s in (self.source_vm_id, self.source_vm_name, self.image) if s is not None]
        if len(sources) != 1:
            raise ValueError("a fork needs exactly one of source_vm_id, source_vm_name, image")
        if self.source_org_name is not None and self.source_vm_name is None:
            raise ValueError("source_org_name only qualifies source_vm_name")
        _check_keys(self.ssh_public_keys, "SSH key")
        return self

    def to_wire(self) -> JsonObject:
        # Omitted, not null: the contract's source variants type the unused sources as null-or-absent,
        # and leaving unset options out lets the server apply its defaults. Field by field in declaration
        # order, as ``model_dump(mode="json", exclude_none=True)`` gives them, without dumping the keys and
        # rules once more only to replace them (every create sends one).
        body: JsonObject = {}
        for field in _FORK_FIELDS:
            value = getattr(self, field)
            if value is None:
                continue
            if field == "ssh_public_keys":
                body[field] = _ssh_keys_wire(value)
            elif field == "policies":
                body[field] = value.to_wire()
            elif field == "resources":
                body[field] = value.model_dump(mode="json", exclude_none=True)
            elif isinstance(value, tuple):
                body[field] = list(value)
            else:
                body[field] = value  # str, bool or int: the same in JSON mode
        return body


_FORK_FIELDS = tuple(ForkRequest.model_fields)


# ── Policies (deprecated whole-document endpoints) ─────────────────────────────────────────────────────


class PolicyDoc(_Response):
    policies: tuple[JsonObject, ...] = ()
    secrets: dict[str, str] = Field(default_factory=dict)
    hostname: str | None = None
    mitm_domains: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


class PolicyWriteRequest(_Request):
    policies: tuple[JsonObject, ...] = ()
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

    @field_serializer("secrets", when_used="json")
    def _reveal(self, value: dict[str, SecretStr]) -> dict[str, str]:
        return {name: secret.get_secret_value() for name, secret in sorted(value.items())}

    def to_wire(self) -> JsonObject:
        return self.model_dump(mode="json")


# ── Filesystems and mounts ──────────────────────────────────────────────────────────────────────────────


class Filesystem(_Response):
    filesystem_id: ObjectId
    name: str
    owner_org_id: str
    created_at: str
    size_bytes: int | None = None
    region: str | None = None
    provider: str | None = None


class ListFilesystemsResponse(_Response):
    filesystems: tuple[Filesystem, ...]
    next_cursor: str | None = None


class FilesystemCreateRequest(_Request):
    name: str = Field(min_length=1)


class Mount(_Response):
    mount_id: ObjectId
    vm_id: ObjectId
    filesystem_id: ObjectId
    path: str
    region: str | None = None
    state: str | None = None  # attaching | mounted | failed
    state_detail: str | None = None


class ListMountsResponse(_Response):
    mounts: tuple[Mount, ...]
    next_cursor: str | None = None


class MountCreateRequest(_Request):
    filesystem_id: str = Field(min_length=1)
    path: str | None = None


# ── Sync ────────────────────────────────────────────────────────────────────────────────────────────────


class SyncReadInlineResponse(_Response):
    ok: bool
    op: Literal["read"]
    path: str
    size: int = Field(ge=0)
    content: str
    encoding: Literal["utf8", "base64"]


class SyncReadPresignedResponse(_Response):
    ok: bool
    op: Literal["read"]
    path: str
    size: int = Field(ge=0)
    presigned_url: str
    expires_in: int
    method: str


class SyncFileError(_Response):
    """A per-file error inside a successful (HTTP 200) sync write result."""

    code: str
    message: str
    details: JsonObject = Field(default_factory=dict)
    recovery: JsonObject | None = None


class SyncChunkWriteResult(_Response):
    path: str
    size: int
    received_bytes: int
    complete: bool
    written: bool
    error: SyncFileError | None = None


class SyncPresignedWriteRequestResult(_Response):
    path: str
    size: int
    presigned_url: str
    upload_id: str
    expires_in: int
    method: str
    complete: bool
    written: bool
    error: SyncFileError | None = None


class SyncCommitWriteResult(_Response):
    path: str
    size: int
    complete: bool
    written: bool
    error: SyncFileError | None = None


class SyncWriteResponse(_Response):
    """The envelope of a write answer. Each result is read separately (as the entry sent demands): a
    result carrying an ``error`` may lack the fields of its success shape."""

    ok: bool
    op: Literal["write"]
    results: tuple[JsonObject, ...]


class ManifestEntry(_Response):
    path: str
    size: int
    mode: int
    hash: str


class SyncManifestResponse(_Response):
    root: str
    hash_algo: str
    entries: tuple[ManifestEntry, ...]
    truncated: bool


# ── Runs ────────────────────────────────────────────────────────────────────────────────────────────────


class RunRequest(_Request):
    command: str = Field(min_length=1)
    session_id: str | None = None
    timeout: int | None = Field(default=None, ge=0)
    time_to_background: int | None = Field(default=None, ge=0, le=300)
    queueing_timeout: int | None = Field(default=None, ge=0)


class CompletedRunResponse(_Response):
    stdout: str
    stdout_encoding: str
    stderr: str
    stderr_encoding: str
    exit_code: int | None
    run_id: str | None = None
    session_id: str | None = None
    state: str | None = None


class BackgroundRunResponse(_Response):
    run_id: str
    session_id: str | None = None
    state: str | None = None


class Run(_Response):
    run_id: str
    state: str  # pending | running | completed | failed | cancelled
    started_at: str
    exit_code: int | None
    stdout: str
    stdout_encoding: str
    stderr: str
    stderr_encoding: str
    session_id: str | None = None
    command: str | None = None
    completed_at: str | None = None
    fail_reason: str | None = None
    vm_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "failed", "cancelled")
