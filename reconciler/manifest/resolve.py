"""Cross-document checks and resolution: names, replicas, references, file sources, cycles.

Input: every document that passed its kind's model. Output: the ``DesiredState`` resources, or diagnostics.
Work is linear in the number of documents and replicas (dictionaries, no pairwise scans), because stacks of
10,000 VMs must load in well under a second per thousand.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..engine.dag import Graph
from ..state.share import ValueSharer
from . import checks
from .desired import (
    DesiredFile,
    DesiredFilesystem,
    DesiredSync,
    DesiredVM,
    ResolvedEgress,
    ResolvedSource,
    ResolvedSSHKey,
    SourceID,
    SourceImage,
    SourceName,
    SourceVM,
)
from .errors import Diagnostic, SourceLocation
from .model import (
    PLATFORM_NAMES,
    EgressPolicyDocument,
    EgressSpec,
    FilesystemDocument,
    Lifecycle,
    SourceRef,
    SSHKeyDocument,
    SyncDocument,
    VMDocument,
)
from .yamlsource import YamlDocument, display_path, is_inside

__all__ = ["MAX_FILE_SOURCE_BYTES", "Parsed", "Resolved", "resolve"]

MAX_FILE_SOURCE_BYTES = 16 << 20
"""Largest local file a VM `files[].source` (or an SSH key file) may name."""

_RESERVED_EGRESS = ("blocked", "open")


@dataclass(frozen=True)
class Parsed:
    """A document that passed its kind's model."""

    source: YamlDocument
    document: BaseModel

    @property
    def kind(self) -> str:
        return str(getattr(self.document, "kind"))  # noqa: B009 - every document model has `kind`

    @property
    def name(self) -> str:
        return str(getattr(self.document, "metadata").name)  # noqa: B009


@dataclass
class Resolved:
    vms: list[DesiredVM] = field(default_factory=list)
    filesystems: list[DesiredFilesystem] = field(default_factory=list)
    syncs: list[DesiredSync] = field(default_factory=list)


@dataclass
class _Group:
    """One VM or Sync document and the object names it expands to."""

    parsed: Parsed
    names: list[str]
    replicated: bool


def _port_key(port: int | tuple[int, int]) -> tuple[int, int, int]:
    return (port, port, 0) if isinstance(port, int) else (port[0], port[1], 1)


class _Resolver:
    def __init__(self, root: Path, broken: dict[str, set[str]], provider: str = "arker") -> None:
        self.provider = provider  # the stack's platform: resources that name none live there
        self.root = root
        self.root_real = os.path.realpath(root)
        self.root_abs = os.path.abspath(root)
        self.broken = broken  # names of documents that failed their model: references to them stay quiet
        self.diagnostics: list[Diagnostic] = []
        self.by_kind: dict[str, dict[str, Parsed]] = {}
        self.vm_groups: dict[str, _Group] = {}
        self.vm_owner: dict[str, _Group] = {}  # real VM name -> its group
        self.sync_groups: dict[str, _Group] = {}
        self.sync_owner: dict[str, _Group] = {}
        self.ssh_keys: dict[str, ResolvedSSHKey | None] = {}
        self.egress: dict[str, ResolvedEgress] = {}
        self.edges: dict[tuple[str, str], SourceLocation] = {}
        self.file_cache: dict[str, bytes | None] = {}

    # --- helpers -------------------------------------------------------------------------------------

    def error(self, location: SourceLocation, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.at(location, message, hint))

    def is_broken(self, kind: str, name: str) -> bool:
        return name in self.broken.get(kind, ())

    def unknown(self, location: SourceLocation, kind: str, name: str, candidates: Iterable[str]) -> None:
        if not self.is_broken(kind, name):
            self.error(location, f"unknown {kind} '{name}'", checks.did_you_mean(name, candidates))

    # --- names -----------------------------------------------------------------------------------------

    def index(self, documents: list[Parsed]) -> None:
        for parsed in documents:
            names = self.by_kind.setdefault(parsed.kind, {})
            first = names.get(parsed.name)
            if first is not None:
                self.error(
                    parsed.source.locate(("metadata", "name")),
                    f"duplicate {parsed.kind} name '{parsed.name}'",
                    f"first defined at {first.source.locate(('metadata', 'name'))}",
                )
                continue
            names[parsed.name] = parsed
        for name, parsed in self.by_kind.get("EgressPolicy", {}).items():
            if name in _RESERVED_EGRESS:
                self.error(
                    parsed.source.locate(("metadata", "name")),
                    f"EgressPolicy name '{name}' is reserved: `egress: {name}` means the built-in mode",
                )

    def expand_vms(self) -> None:
        for name, parsed in self.by_kind.get("VM", {}).items():
            spec = _doc(parsed, VMDocument).spec
            replicas = spec.replicas
            if replicas is None:
                group = _Group(parsed, [name], replicated=False)
            else:
                longest = f"{name}-{replicas - 1}"
                if replicas and len(longest) > checks.MAX_NAME_LENGTH:
                    self.error(
                        parsed.source.locate(("spec", "replicas")),
                        f"replica name '{longest}' is longer than {checks.MAX_NAME_LENGTH} characters",
                    )
                    continue
                group = _Group(parsed, [f"{name}-{i}" for i in range(replicas)], replicated=True)
            self.vm_groups[name] = group
            self.claim("VM", group, self.vm_owner)

    def claim(self, kind: str, group: _Group, owners: dict[str, _Group]) -> None:
        for name in group.names:
            other = owners.get(name)
            if other is None:
                owners[name] = group
                continue
            # Report at the document that comes later in reading order, pointing at the earlier one.
            first, second = (other, group) if _order(other) <= _order(group) else (group, other)
            owners[name] = first
            self.error(
                second.parsed.source.locate(("metadata", "name")),
                f"{kind} name '{name}' clashes with {_describe_group(first, name)}",
                f"defined at {first.parsed.source.location}",
            )
            return

    def expand_syncs(self) -> None:
        for name, parsed in self.by_kind.get("Sync", {}).items():
            spec = _doc(parsed, SyncDocument).spec
            vm_group = self.vm_groups.get(spec.vm)
            if vm_group is not None and vm_group.replicated:
                count = len(vm_group.names)
                longest = f"{name}-{count - 1}"
                if count and len(longest) > checks.MAX_NAME_LENGTH:
                    self.error(
                        parsed.source.locate(("metadata", "name")),
                        f"Sync replica name '{longest}' is longer than {checks.MAX_NAME_LENGTH} characters",
                    )
                    continue
                group = _Group(parsed, [f"{name}-{i}" for i in range(count)], replicated=True)
            else:
                group = _Group(parsed, [name], replicated=False)
            self.sync_groups[name] = group
            self.claim("Sync", group, self.sync_owner)

    # --- configuration kinds -----------------------------------------------------------------------------

    def resolve_configuration(self) -> None:
        for name, parsed in self.by_kind.get("EgressPolicy", {}).items():
            self.egress[name] = _egress(_doc(parsed, EgressPolicyDocument).spec, name)
        for name, parsed in self.by_kind.get("SSHKey", {}).items():
            self.ssh_keys[name] = self.ssh_key(parsed)

    def ssh_key(self, parsed: Parsed) -> ResolvedSSHKey | None:
        spec = _doc(parsed, SSHKeyDocument).spec
        public_key = spec.public_key
        if spec.public_key_file is not None:
            location = parsed.source.locate(("spec", "public_key_file"))
            data = self.read_file(parsed.source, spec.public_key_file, location, "public_key_file")
            if data is None:
                return None
            try:
                lines = [
                    line.strip()
                    for line in data.decode("utf-8").splitlines()
                    if line.strip() and not line.lstrip().startswith("#")
                ]
                if len(lines) != 1:
                    raise checks.CheckError(f"a public key file holds one key; this one holds {len(lines)}")
                public_key = checks.check_public_key(lines[0])
            except UnicodeDecodeError:
                self.error(location, f"public_key_file '{spec.public_key_file}' is not UTF-8 text")
                return None
            except checks.CheckError as exc:
                self.error(location, f"public_key_file '{spec.public_key_file}': {exc.message}", exc.hint)
                return None
        assert public_key is not None  # the model requires exactly one of the two
        return ResolvedSSHKey(id=parsed.name, public_key=public_key, expires_at=spec.expires_at)

    # --- local files -------------------------------------------------------------------------------------

    def read_file(
        self, manifest: YamlDocument, relative: str, location: SourceLocation, what: str
    ) -> bytes | None:
        """A local file named relative to ``manifest``, confined to the stack root (symlinks included)."""
        if "\0" in relative:
            self.error(location, f"{what} contains a NUL character")
            return None
        if os.path.isabs(relative) or relative.startswith("~"):
            self.error(location, f"{what} '{relative}' must be relative to the manifest file, not absolute")
            return None
        candidate = os.path.join(os.path.dirname(os.path.abspath(manifest.path)), relative)
        real = os.path.realpath(candidate)
        if not is_inside(real, self.root_real):
            how = "through a symlink " if is_inside(os.path.normpath(candidate), self.root_abs) else ""
            self.error(
                location,
                f"{what} '{relative}' resolves {how}outside the stack root '{display_path(self.root)}'",
                "file sources must stay inside the stack folder",
            )
            return None
        if real in self.file_cache:
            return self.file_cache[real]
        data: bytes | None = None
        try:
            info = os.stat(real)
            if not os.path.isfile(real):
                self.error(location, f"{what} '{relative}' is not a regular file")
            elif info.st_size > MAX_FILE_SOURCE_BYTES:
                self.error(location, f"{what} '{relative}' is larger than {MAX_FILE_SOURCE_BYTES} bytes")
            else:
                with open(real, "rb") as handle:
                    data = handle.read()
        except FileNotFoundError:
            self.error(
                location, f"{what} '{relative}' not found", f"looked for {display_path(Path(candidate))}"
            )
        except OSError as exc:
            self.error(location, f"cannot read {what} '{relative}': {exc.strerror or exc}")
        self.file_cache[real] = data
        return data

    # --- VMs ---------------------------------------------------------------------------------------------

    def resolve_vms(self) -> list[DesiredVM]:
        result: list[DesiredVM] = []
        for group in self.vm_groups.values():
            result.extend(self.resolve_vm_group(group))
        return result

    def resolve_vm_group(self, group: _Group) -> list[DesiredVM]:
        parsed = group.parsed
        doc = parsed.source
        spec = _doc(parsed, VMDocument).spec
        errors_before = len(self.diagnostics)
        provider = spec.provider or self.provider
        source = self.vm_source(doc, spec.source, provider) if spec.source is not None else None
        ssh_keys = self.vm_ssh_keys(doc, spec.ssh_keys)
        if provider == "fastvm" and ssh_keys:
            for index, name in enumerate(spec.ssh_keys or ()):
                key = self.ssh_keys.get(name)
                if key is not None and key.expires_at is not None:
                    self.error(
                        doc.locate(("spec", "ssh_keys", index)),
                        f"SSH key '{name}' has expires_at, which is not supported on FastVM",
                        "FastVM keys do not expire: drop expires_at or use a key without it",
                    )
        services = None
        if spec.services is not None:
            self.unique(doc, ("spec", "services"), [s.name for s in spec.services], "name", "service name")
            self.unique(doc, ("spec", "services"), [s.port for s in spec.services], "port", "service port")
            services = tuple(sorted(spec.services, key=lambda s: s.name))
        egress = self.vm_egress(doc, spec.egress)
        inbound = None
        if spec.inbound is not None:
            self.unique(doc, ("spec", "inbound"), [p.port for p in spec.inbound], "port", "inbound port")
            inbound = tuple(sorted(spec.inbound, key=lambda p: p.port))
        files = self.vm_files(doc, spec.files)
        lifecycle = Lifecycle(
            prevent_destroy=spec.lifecycle.prevent_destroy,
            create_before_destroy=spec.lifecycle.create_before_destroy,
            ignore_changes=tuple(sorted(set(spec.lifecycle.ignore_changes))),
        )
        explicit = self.depends_on(doc, spec.depends_on)
        if len(self.diagnostics) > errors_before or (source is None and provider == "arker"):
            return []  # (a None source without a new error points at a broken document, reported already)
        base: dict[str, Any] = {
            "provider": provider,
            "machine_type": spec.machine_type,
            "snapshot": spec.snapshot,
            "disk_gib": spec.disk_gib,
            "metadata": tuple(sorted(spec.metadata.items())) if spec.metadata is not None else None,
            "env": tuple(sorted(spec.env.items())) if spec.env is not None else None,
            "ttl": spec.ttl,
            "services": services,
            "dns": spec.dns,
            "ingress": spec.ingress,
            "group": parsed.name,
            "location": doc.location,
            "source": source,
            "description": spec.description,
            "resources": spec.resources,
            "disk": spec.disk,
            "durable": spec.durable,
            "public": spec.public,
            "ssh_keys": ssh_keys,
            "egress": egress,
            "inbound": inbound,
            "files": files,
            "lifecycle": lifecycle,
        }
        dependencies = dict(explicit)
        if isinstance(source, SourceVM):
            dependencies[source.address] = doc.locate(("spec", "source"))
        template: DesiredVM | None = None
        vms = []
        for index, name in enumerate(group.names):
            address = f"vm.{name}"
            for dependency, location in dependencies.items():
                self.edges[(address, dependency)] = location
            depends_on = tuple(sorted(dependencies))
            replica = index if group.replicated else None
            if template is None:
                template = DesiredVM(
                    address=address, name=name, replica=replica, depends_on=depends_on, **base
                )
                vms.append(template)
            else:  # replicas share every value but their identity: copy instead of validating again
                vms.append(template.model_copy(update={"address": address, "name": name, "replica": replica}))
        return vms

    def vm_source(self, doc: YamlDocument, source: str | SourceRef, provider: str) -> ResolvedSource | None:
        location = doc.locate(("spec", "source"))
        if isinstance(source, str):
            if source in self.vm_groups or source in self.vm_owner or self.is_broken("VM", source):
                return self.managed_source(location, source, provider)
            return SourceName(name=source)
        if source.vm is not None:
            location = doc.locate(("spec", "source", "vm"))
            if source.vm not in self.vm_owner and source.vm not in self.vm_groups:
                self.unknown(location, "VM", source.vm, self.vm_owner)
                return None
            return self.managed_source(location, source.vm, provider)
        if source.name is not None:
            return SourceName(name=source.name)
        if source.id is not None:
            return SourceID(id=source.id)
        assert source.image is not None  # the model requires exactly one
        return SourceImage(image=source.image)

    def managed_source(self, location: SourceLocation, name: str, provider: str) -> SourceVM | None:
        group = self.vm_groups.get(name) or self.vm_owner.get(name)
        if group is None:
            return None  # a broken document: already reported
        source_provider = self.vm_provider(name)
        if source_provider != provider:
            self.error(
                location,
                f"VM '{name}' is on {_platform_name(source_provider)} and cannot be the source of a VM on "
                f"{_platform_name(provider)}",
                "a VM is forked from a VM of its own platform",
            )
            return None
        if group.replicated:
            self.error(
                location,
                f"VM '{group.parsed.name}' has replicas and cannot be a source",
                "fork from a VM without replicas",
            )
            return None
        return SourceVM(name=name, address=f"vm.{name}")

    def vm_provider(self, name: str) -> str:
        """The platform of the VM (or replica) ``name`` of these manifests."""
        group = self.vm_groups.get(name) or self.vm_owner.get(name)
        if group is None:
            return self.provider
        return _doc(group.parsed, VMDocument).spec.provider or self.provider

    def vm_ssh_keys(
        self, doc: YamlDocument, names: tuple[str, ...] | None
    ) -> tuple[ResolvedSSHKey, ...] | None:
        if names is None:
            return None
        self.unique(doc, ("spec", "ssh_keys"), list(names), None, "SSH key")
        keys: dict[str, ResolvedSSHKey] = {}
        material: dict[str, str] = {}
        known = self.by_kind.get("SSHKey", {})
        for index, name in enumerate(names):
            location = doc.locate(("spec", "ssh_keys", index))
            if name not in known:
                self.unknown(location, "SSHKey", name, known)
                continue
            key = self.ssh_keys.get(name)
            if key is None or name in keys:
                continue  # the key's own document was reported, or a duplicate was
            blob = key.public_key.split()[1]
            if blob in material:
                self.error(location, f"SSH keys '{material[blob]}' and '{name}' hold the same public key")
                continue
            material[blob] = name
            keys[name] = key
        return tuple(keys[name] for name in sorted(keys))

    def vm_egress(self, doc: YamlDocument, egress: str | EgressSpec | None) -> ResolvedEgress | None:
        if egress is None:
            return None
        if isinstance(egress, EgressSpec):
            return _egress(egress, None)
        if egress in _RESERVED_EGRESS:
            return ResolvedEgress(name=None, mode="open" if egress == "open" else "blocked")
        policy = self.egress.get(egress)
        if policy is None:
            candidates = [*self.by_kind.get("EgressPolicy", {}), *_RESERVED_EGRESS]
            self.unknown(doc.locate(("spec", "egress")), "EgressPolicy", egress, candidates)
        return policy

    def vm_files(self, doc: YamlDocument, files: tuple[Any, ...]) -> tuple[DesiredFile, ...]:
        self.unique(doc, ("spec", "files"), [f.path for f in files], "path", "file path")
        result: dict[str, DesiredFile] = {}
        for index, spec in enumerate(files):
            if spec.content is not None:
                content = spec.content.encode("utf-8")
            else:
                location = doc.locate(("spec", "files", index, "source"))
                data = self.read_file(doc, spec.source, location, "file source")
                if data is None:
                    continue
                content = data
            result.setdefault(
                spec.path,
                DesiredFile(
                    path=spec.path,
                    content=content,
                    sha256=hashlib.sha256(content).hexdigest(),
                    secret=spec.secret,
                    source=spec.source,
                ),
            )
        return tuple(result[path] for path in sorted(result))

    def unique(
        self, doc: YamlDocument, at: tuple[str, ...], values: list[Any], field_name: str | None, what: str
    ) -> None:
        seen: dict[Any, int] = {}
        for index, value in enumerate(values):
            if value in seen:
                path: tuple[str | int, ...] = (*at, index) if field_name is None else (*at, index, field_name)
                first = doc.locate((*at, seen[value]))
                self.error(doc.locate(path), f"duplicate {what} '{value}'", f"first given at {first}")
            else:
                seen[value] = index

    # --- references between resources ---------------------------------------------------------------------

    def depends_on(self, doc: YamlDocument, addresses: tuple[str, ...]) -> dict[str, SourceLocation]:
        result: dict[str, SourceLocation] = {}
        for index, address in enumerate(addresses):
            location = doc.locate(("spec", "depends_on", index))
            targets = self.targets(address)
            if targets is None:
                kind, _, name = address.partition(".")
                doc_kind = {"vm": "VM", "filesystem": "Filesystem", "sync": "Sync"}[kind]
                if not self.is_broken(doc_kind, name):
                    self.error(
                        location, f"depends_on names unknown resource '{address}'", self.address_hint(address)
                    )
                continue
            for target in targets:
                result.setdefault(target, location)
        return result

    def targets(self, address: str) -> list[str] | None:
        """The addresses a depends_on entry stands for: a replicated group stands for all its replicas."""
        kind, _, name = address.partition(".")
        if kind == "filesystem":
            return [address] if name in self.by_kind.get("Filesystem", {}) else None
        groups, owners = (
            (self.vm_groups, self.vm_owner) if kind == "vm" else (self.sync_groups, self.sync_owner)
        )
        group = groups.get(name)
        if group is not None:
            return [f"{kind}.{n}" for n in group.names]
        return [address] if name in owners else None

    def address_hint(self, address: str) -> str | None:
        candidates = [f"vm.{n}" for n in (*self.vm_groups, *self.vm_owner)]
        candidates += [f"filesystem.{n}" for n in self.by_kind.get("Filesystem", {})]
        candidates += [f"sync.{n}" for n in (*self.sync_groups, *self.sync_owner)]
        return checks.did_you_mean(address, candidates)

    def resolve_filesystems(self) -> list[DesiredFilesystem]:
        result = []
        for name, parsed in self.by_kind.get("Filesystem", {}).items():
            spec = _doc(parsed, FilesystemDocument).spec
            explicit = self.depends_on(parsed.source, spec.depends_on)
            address = f"filesystem.{name}"
            provider = spec.provider or self.provider
            if provider == "fastvm" and spec.size_gib is None:  # (a spec without it failed its model)
                self.error(
                    parsed.source.location, "a FastVM Filesystem needs spec.size_gib (the volume size)"
                )
                continue
            for dependency, location in explicit.items():
                self.edges[(address, dependency)] = location
            result.append(
                DesiredFilesystem(
                    address=address,
                    name=name,
                    location=parsed.source.location,
                    depends_on=tuple(sorted(explicit)),
                    provider=provider,
                    size_gib=spec.size_gib,
                    access_mode=spec.access_mode,
                )
            )
        return result

    def resolve_syncs(self) -> list[DesiredSync]:
        result: list[DesiredSync] = []
        mounts: dict[tuple[str, str], _Group] = {}
        for name, group in self.sync_groups.items():
            doc = group.parsed.source
            spec = _doc(group.parsed, SyncDocument).spec
            errors_before = len(self.diagnostics)
            vm_location = doc.locate(("spec", "vm"))
            vm_group = self.vm_groups.get(spec.vm)
            if vm_group is not None:
                vm_names = vm_group.names
            elif spec.vm in self.vm_owner:
                vm_names = [spec.vm]  # one replica of a replicated VM, by its own name
            else:
                self.unknown(vm_location, "VM", spec.vm, self.vm_groups)
                vm_names = []
            fs_location = doc.locate(("spec", "filesystem"))
            fs_parsed = self.by_kind.get("Filesystem", {}).get(spec.filesystem)
            if fs_parsed is None:
                self.unknown(fs_location, "Filesystem", spec.filesystem, self.by_kind.get("Filesystem", {}))
            provider = self.vm_provider(vm_names[0]) if vm_names else self.provider
            if fs_parsed is not None and vm_names:
                fs_provider = _doc(fs_parsed, FilesystemDocument).spec.provider or self.provider
                if fs_provider != provider:
                    self.error(
                        fs_location,
                        f"Filesystem '{spec.filesystem}' is on {_platform_name(fs_provider)} but VM "
                        f"'{spec.vm}' is on {_platform_name(provider)}",
                        "a Sync binds a filesystem of its VM's platform",
                    )
            key = (spec.vm, spec.path)
            if key in mounts and vm_names:
                self.error(
                    doc.locate(("spec", "path")),
                    f"VM '{spec.vm}' already has a Sync at '{spec.path}'",
                    f"Sync '{mounts[key].parsed.name}' at {mounts[key].parsed.source.location}",
                )
            mounts.setdefault(key, group)
            explicit = self.depends_on(doc, spec.depends_on)
            if len(self.diagnostics) > errors_before or len(vm_names) != len(group.names):
                continue  # (a length mismatch means the VM's document is broken: reported already)
            fs_address = f"filesystem.{spec.filesystem}"
            for index, (sync_name, vm_name) in enumerate(zip(group.names, vm_names, strict=True)):
                address = f"sync.{sync_name}"
                vm_address = f"vm.{vm_name}"
                dependencies = {**explicit, vm_address: vm_location, fs_address: fs_location}
                for dependency, location in dependencies.items():
                    self.edges.setdefault((address, dependency), location)
                result.append(
                    DesiredSync(
                        address=address,
                        name=sync_name,
                        location=doc.location,
                        depends_on=tuple(sorted(dependencies)),
                        group=name,
                        replica=index if group.replicated else None,
                        vm_address=vm_address,
                        vm_name=vm_name,
                        filesystem_address=fs_address,
                        filesystem_name=spec.filesystem,
                        path=spec.path,
                        provider=provider,
                    )
                )
        return result

    def check_cycles(self, resources: Iterable[DesiredVM | DesiredFilesystem | DesiredSync]) -> None:
        graph: Graph[str] = Graph()
        for resource in resources:
            graph.add_node(resource.address)
            for dependency in resource.depends_on:
                graph.add_edge(resource.address, dependency)
        for cycle in graph.cycles():
            location = self.edges.get((cycle[0], cycle[1]))
            if location is not None:
                self.error(location, f"dependency cycle: {' -> '.join(cycle)}")


def _doc(parsed: Parsed, model: type[Any]) -> Any:
    document = parsed.document
    assert isinstance(document, model)
    return document


def _order(group: _Group) -> tuple[str, int, int]:
    location = group.parsed.source.location
    return (location.file, location.line, location.column)


def _platform_name(provider: str) -> str:
    return PLATFORM_NAMES.get(provider, provider)


def _describe_group(group: _Group, name: str) -> str:
    if group.replicated:
        return f"replica {name.rsplit('-', 1)[1]} of '{group.parsed.name}'"
    return f"{group.parsed.kind} '{group.parsed.name}'"


def _egress(spec: EgressSpec, name: str | None) -> ResolvedEgress:
    if spec.mode is not None:
        return ResolvedEgress(name=name, mode=spec.mode)
    mode, entries = ("allow", spec.allow) if spec.allow is not None else ("block", spec.block or ())
    ports = sorted(set(spec.ports or ()), key=_port_key)
    return ResolvedEgress(name=name, mode=mode, entries=tuple(sorted(set(entries))), ports=tuple(ports))


def resolve(
    documents: list[Parsed], root: Path, broken: dict[str, set[str]], *, provider: str = "arker"
) -> tuple[Resolved, list[Diagnostic]]:
    """Resolve every resource; ``broken`` names documents that failed validation (kind -> names);
    ``provider`` is the stack's platform (of resources that name none)."""
    resolver = _Resolver(root, broken, provider)
    resolver.index(documents)
    resolver.expand_vms()
    resolver.expand_syncs()
    resolver.resolve_configuration()
    resolved = Resolved(
        vms=resolver.resolve_vms(),
        filesystems=resolver.resolve_filesystems(),
        syncs=resolver.resolve_syncs(),
    )
    # Replicas by the thousand: one set of set-field names per shape instead of one per replica.
    ValueSharer().share_models([*resolved.vms, *resolved.syncs])
    resolver.check_cycles([*resolved.vms, *resolved.filesystems, *resolved.syncs])
    return resolved, resolver.diagnostics
