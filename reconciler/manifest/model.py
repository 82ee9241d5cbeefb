"""The manifest language as pydantic models: one model per document kind (SPEC §1).

These models check each document alone (types, ranges, formats, unknown keys). Checks that need other
documents (names, references, cycles, file sources) live in ``resolve``. The JSON Schema in ``schemas/`` is
generated from ``ManifestDocument``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from . import checks

__all__ = [
    "API_VERSION",
    "ARKER_ONLY_VM_FIELDS",
    "DEFAULT_PROVIDER",
    "DEFAULT_STATE_URL",
    "DOCUMENT_MODELS",
    "FASTVM_ONLY_VM_FIELDS",
    "IGNORABLE_PATHS",
    "KINDS",
    "MAX_REPLICAS",
    "PLATFORM_NAMES",
    "PROVIDERS",
    "DnsSpec",
    "EgressPolicyDocument",
    "EgressSpec",
    "FileSpec",
    "FilesystemDocument",
    "FilesystemSpec",
    "InboundPort",
    "IngressRuleSpec",
    "IngressSpec",
    "Lifecycle",
    "ManifestDocument",
    "Metadata",
    "ProviderName",
    "Resources",
    "SSHKeyDocument",
    "SSHKeySpec",
    "ServiceSpec",
    "SourceRef",
    "StackDocument",
    "StackSpec",
    "StackVars",
    "SyncDocument",
    "SyncSpec",
    "TtlSpec",
    "VMDocument",
    "VMSpec",
]

API_VERSION = "arkerctl/v1"
DEFAULT_STATE_URL = "file://.arkerctl/state.json"
MAX_REPLICAS = 100_000
KINDS = ("EgressPolicy", "Filesystem", "SSHKey", "Stack", "Sync", "VM")
# Field paths of a VM spec that lifecycle.ignore_changes may name.
IGNORABLE_PATHS = (
    "description",
    "disk",
    "disk_gib",
    "dns",
    "durable",
    "egress",
    "env",
    "files",
    "inbound",
    "ingress",
    "machine_type",
    "metadata",
    "public",
    "resources",
    "resources.disk_mib",
    "resources.memory_mib",
    "resources.vcpu",
    "services",
    "snapshot",
    "source",
    "ssh_keys",
    "ttl",
)

# Platforms a resource can live on (``Stack.spec.provider`` is the default, ``spec.provider`` per resource).
PROVIDERS = ("arker", "fastvm")
DEFAULT_PROVIDER = "arker"
PLATFORM_NAMES = {"arker": "Arker", "fastvm": "FastVM"}
ProviderName = Literal["arker", "fastvm"]
# VM fields only one platform can honour (anything else is common to both).
ARKER_ONLY_VM_FIELDS = ("description", "disk", "durable", "inbound", "public", "resources", "source")
FASTVM_ONLY_VM_FIELDS = (
    "disk_gib",
    "dns",
    "env",
    "ingress",
    "machine_type",
    "metadata",
    "services",
    "snapshot",
    "ttl",
)
# Metadata keys arkerctl writes on every FastVM VM it manages (ownership tags): not for users.
RESERVED_METADATA_PREFIX = "arkerctl-"


_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*\Z")


def _int_from_text(value: Any) -> Any:
    # Interpolation yields text: `replicas: ${var:n}` must still be a number. Booleans stay rejected.
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return value


def _bool_from_text(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _check(function: Any) -> Any:
    return AfterValidator(function)


# Interpolation yields text, so editors must accept `replicas: ${var:n}` where a number goes.
_INTERPOLATED = {"type": "string", "pattern": r"^\$\{(var|env):[A-Za-z_][A-Za-z0-9_]*\}$"}


def _number_schema(**constraints: int) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [{"type": "integer", **constraints}, _INTERPOLATED]})


Port = Annotated[
    StrictInt,
    Field(ge=1, le=65535),
    BeforeValidator(_int_from_text),
    _number_schema(minimum=1, maximum=65535),
]
Vcpu = Annotated[
    StrictInt, Field(ge=1, le=255), BeforeValidator(_int_from_text), _number_schema(minimum=1, maximum=255)
]
Mebibytes = Annotated[StrictInt, Field(ge=1), BeforeValidator(_int_from_text), _number_schema(minimum=1)]
Replicas = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_REPLICAS),
    BeforeValidator(_int_from_text),
    _number_schema(minimum=0, maximum=MAX_REPLICAS),
]
Bool = Annotated[
    StrictBool,
    BeforeValidator(_bool_from_text),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, _INTERPOLATED]}),
]
Name = Annotated[
    str,
    _check(checks.check_name),
    Field(
        description="Lowercase letters, digits and '-', 1-63 characters, starting and ending alphanumeric."
    ),
]
Address = Annotated[
    str, _check(checks.check_address), Field(description="vm.<name>, filesystem.<name> or sync.<name>")
]
GuestPath = Annotated[str, _check(checks.check_guest_path), Field(description="Absolute path inside the VM.")]


def _port_range(value: Any) -> Any:
    if isinstance(value, list) and len(value) != 2:
        raise checks.CheckError("a port range is [start, end]")
    return value


def _ordered_range(value: tuple[int, int]) -> tuple[int, int]:
    if value[0] > value[1]:
        raise checks.CheckError(f"port range [{value[0]}, {value[1]}] is empty: start must be <= end")
    return value


PortRange = Annotated[tuple[Port, Port], BeforeValidator(_port_range), AfterValidator(_ordered_range)]


def _port_tag(value: Any) -> str:
    return "range" if isinstance(value, (list, tuple)) else "port"


PortOrRange = Annotated[
    Annotated[Port, Tag("port")] | Annotated[PortRange, Tag("range")],
    Discriminator(_port_tag),
]


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


VarValue = Annotated[
    str,
    BeforeValidator(_scalar_text),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]


# A Stack's ``vars``: names checked, scalar values as text.
StackVars = dict[Annotated[str, _check(checks.check_var_name)], VarValue]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _exactly_one(model: BaseModel, fields: tuple[str, ...]) -> None:
    given = [name for name in fields if getattr(model, name) is not None]
    if len(given) != 1:
        listed = ", ".join(fields[:-1]) + " or " + fields[-1]
        detail = f"got {', '.join(given)}" if given else "got none"
        raise checks.CheckError(f"give exactly one of {listed} ({detail})")


def _platform(info: ValidationInfo) -> str:
    """The platform a spec is validated for: its own ``provider`` (validated before the other fields),
    else the stack's (``validate_document(..., provider=...)`` passes it as validation context)."""
    own = info.data.get("provider")
    if isinstance(own, str):
        return own
    context = info.context if isinstance(info.context, dict) else {}
    return str(context.get("provider") or DEFAULT_PROVIDER)


_UNSUPPORTED_HINTS = {
    ("fastvm", "source"): "FastVM cannot fork or copy a VM: give snapshot (a name or id) or machine_type",
    ("fastvm", "resources"): "FastVM sizes a VM by machine_type (c1m2, c2m4, ...) and disk_gib",
    ("fastvm", "inbound"): "use ingress rules or services on FastVM",
    ("fastvm", "disk"): "use disk_gib on FastVM",
    ("fastvm", "durable"): None,
    ("fastvm", "public"): "use ingress rules or services on FastVM",
    ("fastvm", "description"): "use metadata on FastVM",
    ("arker", "ttl"): "Arker VMs have no TTL",
    ("arker", "machine_type"): "use resources: {vcpu, memory_mib} on Arker",
    ("arker", "disk_gib"): "use resources.disk_mib on Arker",
    ("arker", "snapshot"): "use source on Arker",
    ("arker", "dns"): "use egress on Arker",
    ("arker", "ingress"): "use inbound on Arker",
    ("arker", "services"): "use inbound on Arker",
    ("arker", "size_gib"): "Arker filesystems have no fixed size",
    ("arker", "access_mode"): None,
}


def _unsupported(platform: str, field: str) -> checks.CheckError:
    return checks.CheckError(
        f"'{field}' is not supported on {PLATFORM_NAMES.get(platform, platform)}",
        _UNSUPPORTED_HINTS.get((platform, field)),
    )


class Metadata(_Model):
    name: Name


class StackSpec(_Model):
    provider: ProviderName = Field(
        default="arker", description="The platform of every resource that does not name its own provider."
    )
    state: Annotated[str, _check(checks.check_state_url)] = Field(
        default=DEFAULT_STATE_URL,
        description="Where the stack's state lives: file://PATH or postgresql://...",
    )
    vars: StackVars = Field(
        default_factory=dict, description="Values for ${var:NAME} (overridden by --var NAME=VALUE)."
    )


class FilesystemSpec(_Model):
    provider: ProviderName | None = Field(
        default=None, description="arker or fastvm; default: the Stack's provider."
    )
    size_gib: Gibibytes | None = Field(
        default=None, validate_default=True, description="FastVM volume size in GiB (required on FastVM)."
    )
    access_mode: Literal["rw", "ro"] | None = Field(
        default=None, description="FastVM volume access: rw (default) or ro (attached read-only)."
    )
    depends_on: tuple[Address, ...] = ()

    @field_validator("size_gib", "access_mode", mode="before")
    @classmethod
    def _field_for_platform(cls, value: Any, info: ValidationInfo) -> Any:
        platform = _platform(info)
        if value is None and platform == "fastvm" and info.field_name == "size_gib":
            raise PydanticCustomError("missing", "Field required")
        if value is not None and platform != "fastvm":
            raise _unsupported(platform, str(info.field_name))
        return value


class SSHKeySpec(_Model):
    public_key: Annotated[str, _check(checks.check_public_key)] | None = Field(
        default=None, description="OpenSSH public key: '<type> <base64> [comment]'."
    )
    public_key_file: str | None = Field(
        default=None, description="File holding the public key, relative to this manifest file."
    )
    expires_at: Annotated[str, _check(checks.check_rfc3339)] | None = Field(
        default=None, description="RFC 3339 time from which the key no longer authorizes logins."
    )

    @model_validator(mode="after")
    def _one_key(self) -> SSHKeySpec:
        _exactly_one(self, ("public_key", "public_key_file"))
        return self


class EgressSpec(_Model):
    mode: Literal["open", "blocked"] | None = Field(
        default=None, description="open: no outbound restriction; blocked: deny all outbound."
    )
    allow: (
        Annotated[tuple[Annotated[str, _check(checks.check_egress_entry)], ...], Field(min_length=1)] | None
    ) = Field(default=None, description="Only these hosts (label-boundary suffix match) or CIDRs.")
    block: (
        Annotated[tuple[Annotated[str, _check(checks.check_egress_entry)], ...], Field(min_length=1)] | None
    ) = Field(default=None, description="Everything but these hosts or CIDRs.")
    ports: Annotated[tuple[PortOrRange, ...], Field(min_length=1)] | None = Field(
        default=None, description="Narrows allow/block entries to these ports and [start, end] ranges."
    )

    @model_validator(mode="after")
    def _one_mode(self) -> EgressSpec:
        _exactly_one(self, ("mode", "allow", "block"))
        if self.ports is not None and self.mode is not None:
            raise checks.CheckError("ports narrow allow or block entries: they cannot be used with mode")
        return self


class SourceRef(_Model):
    vm: Name | None = Field(default=None, description="A VM managed by these manifests (a dependency).")
    name: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="An existing or golden VM, by name."
    )
    id: Annotated[str, Field(min_length=1)] | None = Field(default=None, description="An existing VM, by id.")
    image: Annotated[str, Field(min_length=1)] | None = Field(default=None, description="A container image.")

    @model_validator(mode="after")
    def _one_source(self) -> SourceRef:
        _exactly_one(self, ("vm", "name", "id", "image"))
        return self


def _mapping_tag(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "string"


Source = Annotated[
    Annotated[Annotated[str, Field(min_length=1)], Tag("string")] | Annotated[SourceRef, Tag("mapping")],
    Discriminator(_mapping_tag),
]
Egress = Annotated[
    Annotated[Annotated[str, Field(min_length=1)], Tag("string")] | Annotated[EgressSpec, Tag("mapping")],
    Discriminator(_mapping_tag),
]


class Resources(_Model):
    vcpu: Vcpu | None = None
    memory_mib: Mebibytes | None = None
    disk_mib: Mebibytes | None = None


class InboundPort(_Model):
    port: Port
    auth: Literal["arker", "open"] = Field(
        default="arker", description="arker: org API key required; open: public."
    )


class FileSpec(_Model):
    path: GuestPath
    source: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="Local file, relative to this manifest file, inside the stack root."
    )
    content: str | None = Field(default=None, description="Inline content (UTF-8).")
    secret: Bool = Field(default=False, description="Never show the content in plans or logs.")

    @model_validator(mode="after")
    def _one_content(self) -> FileSpec:
        _exactly_one(self, ("source", "content"))
        return self


def _ignorable(value: str) -> str:
    if value not in IGNORABLE_PATHS:
        raise checks.CheckError(
            f"'{value}' is not a VM spec field that ignore_changes can name",
            checks.did_you_mean(value, IGNORABLE_PATHS),
        )
    return value


class Lifecycle(_Model):
    prevent_destroy: Bool = False
    create_before_destroy: Bool = False
    ignore_changes: tuple[Annotated[str, _check(_ignorable)], ...] = ()


Gibibytes = Annotated[
    StrictInt,
    Field(ge=1, le=65536),
    BeforeValidator(_int_from_text),
    _number_schema(minimum=1, maximum=65536),
]
TtlSeconds = Annotated[
    StrictInt,
    Field(ge=1, le=31_536_000),
    BeforeValidator(_int_from_text),
    _number_schema(minimum=1, maximum=31_536_000),
]
ServicePort = Annotated[
    StrictInt,
    Field(ge=1024, le=65535),
    BeforeValidator(_int_from_text),
    _number_schema(minimum=1024, maximum=65535),
]


class TtlSpec(_Model):
    action: Literal["pause", "delete"] = Field(description="What FastVM does when the TTL runs out.")
    seconds: TtlSeconds


class ServiceSpec(_Model):
    name: Name
    port: ServicePort = Field(description="Guest port (>= 1024) FastVM proxies.")
    h2c: Bool = Field(default=False, description="Speak HTTP/2 cleartext to the guest.")


class IngressRuleSpec(_Model):
    action: Literal["allow", "deny"] = "allow"
    cidr: Annotated[str, _check(checks.check_cidr)] = Field(description="Source IP or CIDR.")
    protocol: Literal["tcp", "udp", "any"] = "tcp"
    ports: PortOrRange | None = Field(default=None, description="A port or [start, end]; omitted = any.")
    description: Annotated[str, Field(max_length=256)] | None = None


class IngressSpec(_Model):
    default: Literal["allow", "deny"] = Field(default="deny", description="For traffic no rule matches.")
    rules: tuple[IngressRuleSpec, ...] = ()


class DnsSpec(_Model):
    mode: Literal["allow", "deny"] = "deny"
    domains: tuple[Annotated[str, Field(min_length=1, max_length=253)], ...] = ()
    block_bypass: Bool = Field(default=False, description="Block DNS that bypasses FastVM's resolver.")


class VMSpec(_Model):
    provider: ProviderName | None = Field(
        default=None, description="arker or fastvm; default: the Stack's provider."
    )
    source: Source | None = Field(
        default=None,
        validate_default=True,
        description="Arker: managed VM name (a dependency) or existing/golden VM name, or "
        "{vm|name|id|image: ...}. Not on FastVM.",
    )
    replicas: Replicas | None = Field(default=None, description="Make N VMs named <name>-0 .. <name>-(N-1).")
    description: Annotated[str, Field(max_length=1024)] | None = None
    resources: Resources | None = None
    disk: Bool | None = Field(default=None, description="Fork-time only.")
    durable: Bool | None = Field(default=None, description="Fork-time only.")
    public: Bool | None = Field(default=None, description="Fork-time only.")
    ssh_keys: tuple[Name, ...] | None = Field(
        default=None, description="SSHKey names: the VM's whole key set."
    )
    egress: Egress | None = Field(
        default=None, description="EgressPolicy name, 'open', 'blocked', or an inline policy."
    )
    inbound: tuple[InboundPort, ...] | None = Field(
        default=None, description="Guest ports reachable through Arker; omitted = Arker default."
    )
    files: tuple[FileSpec, ...] = ()
    # FastVM only.
    machine_type: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="FastVM machine type (c1m2, c2m4, ...); needed unless snapshot is given."
    )
    snapshot: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="FastVM snapshot (name or id) to restore; omitted = a fresh launch."
    )
    disk_gib: Gibibytes | None = Field(default=None, description="FastVM disk size in GiB.")
    metadata: dict[Annotated[str, Field(min_length=1, max_length=256)], str] | None = Field(
        default=None, description="FastVM metadata: the whole map (arkerctl adds its arkerctl-* tags)."
    )
    env: dict[Annotated[str, _check(checks.check_var_name)], str] | None = Field(
        default=None, description="FastVM environment variables (compared by digest, never shown)."
    )
    ttl: TtlSpec | None = None
    services: tuple[ServiceSpec, ...] | None = Field(
        default=None, description="FastVM services: the VM's whole set (guest ports FastVM proxies)."
    )
    dns: DnsSpec | None = None
    ingress: IngressSpec | None = None
    lifecycle: Lifecycle = Lifecycle()
    depends_on: tuple[Address, ...] = ()

    @field_validator("source", mode="before")
    @classmethod
    def _source_for_platform(cls, value: Any, info: ValidationInfo) -> Any:
        platform = _platform(info)
        if value is None and platform == "arker":
            raise PydanticCustomError("missing", "Field required")
        if value is not None and platform != "arker":
            raise _unsupported(platform, "source")
        return value

    @field_validator(
        *(f for f in ARKER_ONLY_VM_FIELDS if f != "source"), *FASTVM_ONLY_VM_FIELDS, mode="before"
    )
    @classmethod
    def _field_for_platform(cls, value: Any, info: ValidationInfo) -> Any:
        platform = _platform(info)
        field = str(info.field_name)
        only = "fastvm" if field in FASTVM_ONLY_VM_FIELDS else "arker"
        if value is not None and platform != only:
            raise _unsupported(platform, field)
        return value

    @field_validator("lifecycle")
    @classmethod
    def _lifecycle_for_platform(cls, value: Lifecycle, info: ValidationInfo) -> Lifecycle:
        if value.create_before_destroy and _platform(info) == "arker":
            raise checks.CheckError(
                "create_before_destroy is not possible for an Arker VM",
                "VM names are unique and cannot be changed, so a replacement cannot exist beside the old VM",
            )
        return value

    @field_validator("metadata")
    @classmethod
    def _user_metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in sorted(value or {}):
            if key.startswith(RESERVED_METADATA_PREFIX):
                raise checks.CheckError(
                    f"metadata key '{key}' is reserved: arkerctl tags its VMs with "
                    f"{RESERVED_METADATA_PREFIX}* keys"
                )
        return value

    @model_validator(mode="after")
    def _launch_source(self) -> VMSpec:
        if self.source is None and self.machine_type is None and self.snapshot is None:
            raise checks.CheckError(
                "a FastVM VM needs machine_type (a fresh launch) or snapshot (a name or id)"
            )
        return self


class SyncSpec(_Model):
    vm: Name = Field(description="A managed VM; a replicated VM gets one binding per replica.")
    filesystem: Name = Field(description="A managed Filesystem.")
    path: GuestPath
    depends_on: tuple[Address, ...] = ()


class _Document(_Model):
    api_version: Literal["arkerctl/v1"] = Field(alias="apiVersion")


class StackDocument(_Document):
    kind: Literal["Stack"]
    metadata: Metadata | None = None
    spec: StackSpec = StackSpec()


class VMDocument(_Document):
    kind: Literal["VM"]
    metadata: Metadata
    spec: VMSpec


class FilesystemDocument(_Document):
    kind: Literal["Filesystem"]
    metadata: Metadata
    spec: FilesystemSpec = FilesystemSpec()


class SyncDocument(_Document):
    kind: Literal["Sync"]
    metadata: Metadata
    spec: SyncSpec


class SSHKeyDocument(_Document):
    kind: Literal["SSHKey"]
    metadata: Metadata
    spec: SSHKeySpec


class EgressPolicyDocument(_Document):
    kind: Literal["EgressPolicy"]
    metadata: Metadata
    spec: EgressSpec


AnyDocument = (
    StackDocument | VMDocument | FilesystemDocument | SyncDocument | SSHKeyDocument | EgressPolicyDocument
)
ManifestDocument = Annotated[AnyDocument, Field(discriminator="kind")]

DOCUMENT_MODELS: dict[str, type[_Document]] = {
    "EgressPolicy": EgressPolicyDocument,
    "Filesystem": FilesystemDocument,
    "SSHKey": SSHKeyDocument,
    "Stack": StackDocument,
    "Sync": SyncDocument,
    "VM": VMDocument,
}
