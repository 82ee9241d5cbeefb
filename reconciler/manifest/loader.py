"""``load_stack``: manifest files -> resolved ``DesiredState``, or one ``ManifestError`` with all problems.

Also ``discover_stacks``: how several stacks under one PATH are told apart (a folder holding a Stack document
is a stack root), for commands like ``validate`` that accept a tree of stacks.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from . import checks
from .desired import DesiredState, StackSettings
from .errors import Diagnostic, ManifestError
from .interpolate import Interpolator
from .model import DEFAULT_STATE_URL, StackDocument, StackVars
from .resolve import Parsed, resolve
from .validation import validate_document
from .yamlsource import MAX_MANIFEST_BYTES, YamlDocument, convert, read_documents

__all__ = ["MANIFEST_SUFFIXES", "StackSources", "discover_stacks", "load_stack", "manifest_files"]

MANIFEST_SUFFIXES = (".yaml", ".yml")
_STACK_LINE = re.compile(rb"""^kind:[ \t]*(["']?)Stack\1[ \t]*(?:#.*)?\r?$""", re.MULTILINE)


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Loading builds many small objects that all stay alive; generational GC passes over them cost more
    # than the parse itself on big stacks (4x measured on 10,000 documents) and can free nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # hidden folders (.git, .arkerctl) skipped
        found.extend(Path(current) / f for f in files if f.endswith(MANIFEST_SUFFIXES))
    return sorted(found, key=lambda p: p.parts)


def manifest_files(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Every manifest file under ``paths`` (files are taken as given), sorted per PATH, without repeats."""
    files: list[Path] = []
    diagnostics: list[Diagnostic] = []
    seen: set[str] = set()
    for path in paths:
        if path.is_dir():
            candidates = _walk(path)
        elif path.exists():
            candidates = [path]
        else:
            diagnostics.append(
                Diagnostic(file=str(path), line=0, column=0, message="no such file or directory")
            )
            continue
        for candidate in candidates:
            key = os.path.realpath(candidate)
            if key not in seen:
                seen.add(key)
                files.append(candidate)
    return files, diagnostics


def _root_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _raw_identity(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, dict):
        return None, None
    kind, metadata = value.get("kind"), value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return (kind if isinstance(kind, str) else None), (name if isinstance(name, str) else None)


def load_stack(
    paths: Sequence[Path | str],
    *,
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path | None = None,
    missing_env: Literal["error", "warn"] = "error",
) -> DesiredState:
    """Load, validate and resolve the manifests under ``paths`` as one stack.

    ``variables`` override the Stack's vars; ``environ`` (default ``os.environ``) feeds ``${env:NAME}``.
    ``root`` is the stack root (default: the first PATH's folder); file sources must stay inside it.
    ``missing_env="warn"`` turns unset ``${env:..}`` variables into ``DesiredState.warnings`` (empty values):
    for ``validate``/``graph`` without the secrets; never plan with such a state.
    Raises ``ManifestError`` with every problem found; never touches the network.
    """
    given = tuple(Path(p) for p in paths) or (Path("."),)
    stack_root = root if root is not None else _root_of(given[0])
    env = os.environ if environ is None else environ
    with _gc_paused():
        return _load(given, stack_root, dict(variables or {}), env, missing_env)


def _load(
    paths: tuple[Path, ...],
    root: Path,
    variables: dict[str, str],
    environ: Mapping[str, str],
    missing_env: Literal["error", "warn"],
) -> DesiredState:
    diagnostics: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    files, problems = manifest_files(paths)
    diagnostics += problems
    if not files and not problems:
        diagnostics.append(
            Diagnostic(
                file=str(paths[0]), line=0, column=0, message="no manifest files (*.yaml, *.yml) found"
            )
        )
    documents: list[YamlDocument] = []
    for path in files:
        found, problems = read_documents(path, str(path))
        documents += found
        diagnostics += problems
    file_errors = bool(diagnostics)

    stack_documents = [d for d in documents if d.top_level_scalar("kind") == "Stack"]
    stack, declared = _stack(
        stack_documents, root, variables, Interpolator(None, environ, missing_env), diagnostics, warnings
    )
    interpolate = Interpolator({**dict(stack.vars), **variables}, environ, missing_env)

    parsed: list[Parsed] = []
    broken: dict[str, set[str]] = {}
    for document in documents:
        if document.top_level_scalar("kind") == "Stack":
            continue
        converted = convert(document, interpolate)
        diagnostics += converted.diagnostics
        warnings += converted.warnings
        model: BaseModel | None = None
        if not converted.fatal:
            model, problems = validate_document(converted, provider=stack.provider)
            diagnostics += problems
        if model is None or converted.diagnostics:
            kind, name = _raw_identity(converted.value)
            if kind and name:
                broken.setdefault(kind, set()).add(name)
            continue
        parsed.append(Parsed(source=document, document=model))

    warnings += _unused_vars(variables, declared, stack, interpolate, paths[0])
    if file_errors:
        # A file that does not parse hides its documents: reference checks would only add false alarms.
        raise ManifestError(diagnostics, warnings)
    resolved, problems = resolve(parsed, root, broken, provider=stack.provider)
    diagnostics += problems
    if diagnostics:
        raise ManifestError(diagnostics, warnings)
    return DesiredState(
        stack=stack,
        vms=tuple(sorted(resolved.vms, key=lambda r: r.address)),
        filesystems=tuple(sorted(resolved.filesystems, key=lambda r: r.address)),
        syncs=tuple(sorted(resolved.syncs, key=lambda r: r.address)),
        warnings=tuple(sorted(warnings, key=Diagnostic.sort_key)),
    )


def _stack(
    documents: list[YamlDocument],
    root: Path,
    variables: dict[str, str],
    interpolate: Interpolator,
    diagnostics: list[Diagnostic],
    warnings: list[Diagnostic],
) -> tuple[StackSettings, frozenset[str]]:
    """The stack's settings, and the var names its Stack document declares."""
    default_name = checks.suggest_name(Path(os.path.abspath(root)).name) or "stack"
    settings = StackSettings(name=default_name, state=DEFAULT_STATE_URL, root=root)
    for extra in documents[1:]:
        diagnostics.append(
            Diagnostic.at(
                extra.location,
                "more than one Stack document in this stack",
                f"first at {documents[0].location}; a folder holding a Stack document is its own stack",
            )
        )
    if not documents:
        return settings, frozenset()
    converted = convert(documents[0], interpolate)
    diagnostics += converted.diagnostics
    warnings += converted.warnings
    if converted.fatal:
        return settings, frozenset()
    model, problems = validate_document(converted)
    diagnostics += problems
    if not isinstance(model, StackDocument):
        # The Stack is refused (its error is reported), but vars that are fine on their own still count:
        # without them every ${var:..} would add a false "not defined" error to the real one.
        salvaged = _salvaged_vars(converted.value)
        return settings.model_copy(update={"vars": salvaged}), frozenset(name for name, _ in salvaged)
    return StackSettings(
        name=model.metadata.name if model.metadata else default_name,
        state=model.spec.state,
        vars=tuple(sorted({**model.spec.vars, **variables}.items())),
        provider=model.spec.provider,
        root=root,
        location=documents[0].location,
    ), frozenset(model.spec.vars)


_VARS: TypeAdapter[dict[str, str]] = TypeAdapter(StackVars)


def _unused_vars(
    variables: Mapping[str, str],
    declared: frozenset[str],
    stack: StackSettings,
    interpolate: Interpolator,
    first_path: Path,
) -> list[Diagnostic]:
    """A --var the Stack does not declare and no manifest uses: most likely a typo (Terraform refuses
    undeclared variables; a --var may define a new one here, so this only warns)."""
    unused = sorted(set(variables) - declared - interpolate.used_vars)
    location = stack.location
    return [
        Diagnostic(
            file=location.file if location is not None else str(first_path),
            line=location.line if location is not None else 0,
            column=location.column if location is not None else 0,
            message=f"--var {name} is not declared in the Stack's vars and no manifest uses it",
            hint=checks.did_you_mean(name, sorted(declared | interpolate.used_vars)),
            severity="warning",
        )
        for name in unused
    ]


def _salvaged_vars(value: Any) -> tuple[tuple[str, str], ...]:
    spec = value.get("spec") if isinstance(value, Mapping) else None
    raw = spec.get("vars") if isinstance(spec, Mapping) else None
    if raw is None:
        return ()
    try:
        found = _VARS.validate_python(raw)
    except ValidationError:
        return ()
    return tuple(sorted(found.items()))


@dataclass(frozen=True)
class StackSources:
    """One stack found by ``discover_stacks``: pass both to ``load_stack(files, root=root)``."""

    root: Path
    files: tuple[Path, ...]


def _declares_stack(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return _STACK_LINE.search(handle.read(MAX_MANIFEST_BYTES)) is not None
    except OSError:
        return False


def discover_stacks(paths: Sequence[Path | str]) -> tuple[StackSources, ...]:
    """Split the manifests under ``paths`` into stacks.

    A folder that directly holds a file with a top-level ``kind: Stack`` line is a stack root; every manifest
    belongs to the deepest stack root above it, else to the first PATH's folder (the default root).
    Missing PATHs stay with the default root so that loading reports them.
    """
    given = tuple(Path(p) for p in paths) or (Path("."),)
    default_root = _root_of(given[0])
    files, _ = manifest_files(given)
    missing = tuple(p for p in given if not p.exists())
    roots: dict[str, Path] = {os.path.abspath(default_root): default_root}
    for path in files:
        if _declares_stack(path):
            roots.setdefault(os.path.abspath(path.parent), path.parent)
    groups: dict[str, list[Path]] = {key: [] for key in roots}
    default_key = os.path.abspath(default_root)
    for path in files:
        folder = Path(os.path.abspath(path.parent))
        key = next((str(p) for p in (folder, *folder.parents) if str(p) in roots), default_key)
        groups[key].append(path)
    groups[default_key] += missing
    stacks = [StackSources(root=roots[key], files=tuple(found)) for key, found in groups.items() if found]
    if not stacks:  # nothing at all: let loading say so for the first PATH
        stacks = [StackSources(root=default_root, files=given)]
    return tuple(sorted(stacks, key=lambda s: s.root.parts))
