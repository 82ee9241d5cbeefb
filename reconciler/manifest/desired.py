"""The resolved, immutable desired state the engine consumes: one value per real object, sorted by address."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from ..engine.dag import Graph
from .errors import Diagnostic, SourceLocation
from .model import DnsSpec, InboundPort, IngressSpec, Lifecycle, Resources, ServiceSpec, TtlSpec

__all__ = [
    "DesiredFile",
    "DesiredFilesystem",
    "DesiredResource",
    "DesiredState",
    "DesiredSync",
    "DesiredVM",
    "ResolvedEgress",
    "ResolvedSSHKey",
    "ResolvedSource",
    "SourceID",
    "SourceImage",
    "SourceName",
    "SourceVM",
    "StackSettings",
]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StackSettings(_Value):
    name: str
    state: str
    vars: tuple[tuple[str, str], ...] = Field(default=(), repr=False)  # sorted (name, value) pairs
    provider: Literal["arker", "fastvm"] = "arker"  # the platform of resources that name none
    root: Path  # the stack root folder: file sources and key files must stay inside it
    location: SourceLocation | None = None  # of the Stack document, when there is one

    def var(self, name: str) -> str | None:
        return dict(self.vars).get(name)


class SourceVM(_Value):
    """A VM managed by these manifests: the fork waits for it."""

    kind: Literal["vm"] = "vm"
    name: str
    address: str


class SourceName(_Value):
    """An existing (unmanaged) or golden VM, by name."""

    kind: Literal["name"] = "name"
    name: str


class SourceID(_Value):
    kind: Literal["id"] = "id"
    id: str


class SourceImage(_Value):
    kind: Literal["image"] = "image"
    image: str


ResolvedSource = Annotated[SourceVM | SourceName | SourceID | SourceImage, Field(discriminator="kind")]


class ResolvedSSHKey(_Value):
    id: str  # the SSHKey document's name: the key id on the VM
    public_key: str  # normalised '<type> <base64> [comment]'
    expires_at: str | None = None


class ResolvedEgress(_Value):
    name: str | None  # the EgressPolicy's name; None for an inline policy
    mode: Literal["open", "blocked", "allow", "block"]
    entries: tuple[str, ...] = ()  # hosts lower-case, IPs and CIDRs normalised; sorted, unique
    ports: tuple[int | tuple[int, int], ...] = ()  # sorted, unique


class DesiredFile(_Value):
    path: str  # absolute guest path
    # Never in repr/str: file content may be a secret, and is often large.
    content: bytes = Field(repr=False)
    sha256: str
    secret: bool = False
    source: str | None = None  # the manifest's `source` text, when the content came from a file


class _Resource(_Value):
    address: str
    name: str
    location: SourceLocation
    depends_on: tuple[str, ...] = ()  # every address this one depends on (references and depends_on), sorted


class DesiredVM(_Resource):
    kind: Literal["VM"] = "VM"
    provider: Literal["arker", "fastvm"] = "arker"
    group: str  # metadata.name in the manifest; replicas share it
    replica: int | None = None
    source: ResolvedSource | None = None  # always set on Arker; never on FastVM (launch or snapshot)
    description: str | None = None
    resources: Resources | None = None
    disk: bool | None = None
    durable: bool | None = None
    public: bool | None = None
    ssh_keys: tuple[ResolvedSSHKey, ...] | None = None  # None: keys not managed
    egress: ResolvedEgress | None = None  # None: egress not managed
    inbound: tuple[InboundPort, ...] | None = None  # None: inbound not managed
    files: tuple[DesiredFile, ...] = ()
    lifecycle: Lifecycle = Lifecycle()
    # FastVM only (None: not managed).
    machine_type: str | None = None
    snapshot: str | None = None  # a snapshot name or id
    disk_gib: int | None = None
    metadata: tuple[tuple[str, str], ...] | None = None  # sorted (key, value) pairs: the whole user map
    env: tuple[tuple[str, str], ...] | None = Field(default=None, repr=False)  # sorted; may hold secrets
    ttl: TtlSpec | None = None
    services: tuple[ServiceSpec, ...] | None = None  # sorted by name
    dns: DnsSpec | None = None
    ingress: IngressSpec | None = None


class DesiredFilesystem(_Resource):
    kind: Literal["Filesystem"] = "Filesystem"
    provider: Literal["arker", "fastvm"] = "arker"
    size_gib: int | None = None  # FastVM only
    access_mode: Literal["rw", "ro"] | None = None  # FastVM only


class DesiredSync(_Resource):
    kind: Literal["Sync"] = "Sync"
    provider: Literal["arker", "fastvm"] = "arker"  # its VM's (and its filesystem's)
    group: str  # metadata.name in the manifest
    replica: int | None = None
    vm_address: str
    vm_name: str
    filesystem_address: str
    filesystem_name: str
    path: str


DesiredResource = DesiredVM | DesiredFilesystem | DesiredSync


class DesiredState(_Value):
    stack: StackSettings
    vms: tuple[DesiredVM, ...] = ()
    filesystems: tuple[DesiredFilesystem, ...] = ()
    syncs: tuple[DesiredSync, ...] = ()
    # Only with load_stack(missing_env="warn"): unset ${env:...} variables, whose values are empty here.
    # Such a state is for checking and graphs only, never for planning.
    warnings: tuple[Diagnostic, ...] = ()

    _index: dict[str, DesiredResource] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: object, /) -> None:
        resources: list[DesiredResource] = [*self.vms, *self.filesystems, *self.syncs]
        self._index = {r.address: r for r in resources}

    def resources(self) -> tuple[DesiredResource, ...]:
        """Every resource, sorted by address."""
        return tuple(self._index[address] for address in sorted(self._index))

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(sorted(self._index))

    def by_address(self, address: str) -> DesiredResource:
        """The resource at ``address``; ``KeyError`` when there is none."""
        return self._index[address]

    def get(self, address: str) -> DesiredResource | None:
        return self._index.get(address)

    def graph(self) -> Graph[str]:
        """Addresses with "depends on" edges (VM: source VM, depends_on; Sync: VM, filesystem)."""
        graph: Graph[str] = Graph(self._index)
        for resource in self._index.values():
            for dependency in resource.depends_on:
                graph.add_edge(resource.address, dependency)
        return graph
