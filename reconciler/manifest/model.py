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
    WithJsonSchema,
    model_validator,
)

from . import checks

__all__ = [
    "API_VERSION",
    "DEFAULT_STATE_URL",
    "DOCUMENT_MODELS",
    "IGNORABLE_PATHS",
    "KINDS",
    "MAX_REPLICAS",
    "EgressPolicyDocument",
    "EgressSpec",
    "FileSpec",
    "FilesystemDocument",
    "FilesystemSpec",
    "InboundPort",
    "Lifecycle",
    "ManifestDocument",
    "Metadata",
    "Resources",
    "SSHKeyDocument",
    "SSHKeySpec",
    "SourceRef",
    "StackDocument",
    "StackSpec",
    "SyncDocument",
    "SyncSpec",
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
    "durable",
    "egress",
    "files",
    "inbound",
    "public",
    "resources",
    "resources.disk_mib",
    "resources.memory_mib",
    "resources.vcpu",
    "source",
    "ssh_keys",
)


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


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _exactly_one(model: BaseModel, fields: tuple[str, ...]) -> None:
    given = [name for name in fields if getattr(model, name) is not None]
    if len(given) != 1:
        listed = ", ".join(fields[:-1]) + " or " + fields[-1]
        detail = f"got {', '.join(given)}" if given else "got none"
        raise checks.CheckError(f"give exactly one of {listed} ({detail})")


class Metadata(_Model):
    name: Name


class StackSpec(_Model):
    state: Annotated[str, _check(checks.check_state_url)] = Field(
        default=DEFAULT_STATE_URL,
        description="Where the stack's state lives: file://PATH or postgresql://...",
    )
    vars: dict[Annotated[str, _check(checks.check_var_name)], VarValue] = Field(
        default_factory=dict, description="Values for ${var:NAME} (overridden by --var NAME=VALUE)."
    )


class FilesystemSpec(_Model):
    depends_on: tuple[Address, ...] = ()


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


class VMSpec(_Model):
    source: Source = Field(
        description="Managed VM name (a dependency) or existing/golden VM name, or {vm|name|id|image: ...}."
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
    lifecycle: Lifecycle = Lifecycle()
    depends_on: tuple[Address, ...] = ()


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
