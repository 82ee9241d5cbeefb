"""The manifest language: YAML files -> validated, resolved, immutable ``DesiredState``.

``load_stack(paths)`` is the entry point; every problem of a run comes back together in one
``ManifestError`` whose ``diagnostics`` name ``file:line:column``. See ``docs/manifest.md``.
"""

from __future__ import annotations

from .desired import (
    DesiredFile,
    DesiredFilesystem,
    DesiredResource,
    DesiredState,
    DesiredSync,
    DesiredVM,
    ResolvedEgress,
    ResolvedSource,
    ResolvedSSHKey,
    SourceID,
    SourceImage,
    SourceName,
    SourceVM,
    StackSettings,
)
from .errors import Diagnostic, ManifestError, SourceLocation
from .loader import MANIFEST_SUFFIXES, StackSources, discover_stacks, load_stack, manifest_files
from .model import (
    API_VERSION,
    DEFAULT_STATE_URL,
    IGNORABLE_PATHS,
    KINDS,
    MAX_REPLICAS,
    InboundPort,
    Lifecycle,
    ManifestDocument,
    Resources,
)
from .resolve import MAX_FILE_SOURCE_BYTES
from .yamlsource import MAX_ALIAS_NODES, MAX_DEPTH, MAX_MANIFEST_BYTES

__all__ = [
    "API_VERSION",
    "DEFAULT_STATE_URL",
    "IGNORABLE_PATHS",
    "KINDS",
    "MANIFEST_SUFFIXES",
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_FILE_SOURCE_BYTES",
    "MAX_MANIFEST_BYTES",
    "MAX_REPLICAS",
    "DesiredFile",
    "DesiredFilesystem",
    "DesiredResource",
    "DesiredState",
    "DesiredSync",
    "DesiredVM",
    "Diagnostic",
    "InboundPort",
    "Lifecycle",
    "ManifestDocument",
    "ManifestError",
    "ResolvedEgress",
    "ResolvedSSHKey",
    "ResolvedSource",
    "Resources",
    "SourceID",
    "SourceImage",
    "SourceLocation",
    "SourceName",
    "SourceVM",
    "StackSettings",
    "StackSources",
    "discover_stacks",
    "load_stack",
    "manifest_files",
]
