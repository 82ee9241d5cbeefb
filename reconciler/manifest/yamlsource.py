"""Read manifest files into YAML node trees that remember ``file:line:column``; turn them into plain values.

Only plain YAML is accepted: mappings with string keys, lists, strings, numbers, booleans and null (plus
anchors, aliases and ``<<`` merge keys). Any other tag (``!!python/...``, ``!!binary``, ``!custom``) is an
error. Files above ``MAX_MANIFEST_BYTES`` and alias expansion above ``MAX_ALIAS_NODES`` (a "YAML bomb")
are refused before they can cost memory or time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from .errors import Diagnostic, SourceLocation
from .interpolate import Interpolated

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_MANIFEST_BYTES",
    "ConvertedDocument",
    "YamlDocument",
    "convert",
    "display_path",
    "is_inside",
    "read_documents",
]

MAX_MANIFEST_BYTES = 1 << 20
"""Largest manifest file accepted, in bytes."""
MAX_ALIAS_NODES = 10_000
"""Most nodes one file may produce through aliases beyond its own nodes (guards against YAML bombs)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted; real manifests use fewer than ten levels."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_T = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
_TIMESTAMP, _MAP, _SEQ, _MERGE = _T + "timestamp", _T + "map", _T + "seq", _T + "merge"
_PLAIN_KEY_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP})
# The constructor only parses scalars' text (YAML 1.1 ints like 0x1f, floats like .inf); it builds no objects.
_SCALARS = SafeConstructor()

Interpolate = Callable[[str], Interpolated]


def _location(file: str, mark: Any) -> SourceLocation:
    return SourceLocation(file=file, line=mark.line + 1, column=mark.column + 1)


@dataclass(frozen=True, eq=False)
class YamlDocument:
    """One composed document: its node tree keeps the marks every diagnostic needs."""

    file: str  # as shown to the user
    path: Path  # the file on disk
    node: yaml.Node

    @property
    def location(self) -> SourceLocation:
        return _location(self.file, self.node.start_mark)

    def top_level_scalar(self, key: str) -> str | None:
        """The text of a top-level scalar (e.g. ``kind``) without converting the whole document."""
        if isinstance(self.node, yaml.MappingNode):
            for key_node, value_node in self.node.value:
                if key_node.value == key and isinstance(value_node, yaml.ScalarNode):
                    return str(value_node.value)
        return None

    def find(self, path: tuple[str | int, ...]) -> tuple[yaml.Node, yaml.Node | None]:
        """The node at ``path`` (and its key node), or the deepest node on the way.

        Path parts that are not keys or indexes of the current node (union branch tags in pydantic's error
        locations, or a key that is missing) are skipped: a missing key is reported at its parent mapping.
        """
        node, key_node = self.node, None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                pair = _find_key(node, part, set())
                if pair is not None:
                    key_node, node = pair
            elif (
                isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value)
            ):
                key_node, node = None, node.value[part]
        return node, key_node

    def locate(self, path: tuple[str | int, ...], *, key: bool = False) -> SourceLocation:
        node, key_node = self.find(path)
        target = key_node if key and key_node is not None else node
        return _location(self.file, target.start_mark)


def _find_key(node: yaml.MappingNode, key: object, seen: set[int]) -> tuple[yaml.Node, yaml.Node] | None:
    # Explicit keys win over merged ones, as in the conversion below.
    merges: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            merges.append(value_node)
        elif isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    for merge in merges:
        sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
        for source in sources:
            if isinstance(source, yaml.MappingNode) and id(source) not in seen:
                seen.add(id(source))
                found = _find_key(source, key, seen)
                if found is not None:
                    return found
    return None


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def read_documents(path: Path, file: str) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """Compose every non-empty document of one file. A file that cannot be parsed yields no documents."""
    at_start = SourceLocation(file=file, line=1, column=1)
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            return [], [
                Diagnostic.at(
                    at_start, f"manifest file is too large ({size} bytes; the limit is {MAX_MANIFEST_BYTES})"
                )
            ]
        data = path.read_bytes()
    except OSError as exc:
        return [], [Diagnostic.at(at_start, f"cannot read manifest file: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _line_col(data, exc.start)
        return [], [
            Diagnostic(file=file, line=line, column=column, message="manifest file is not valid UTF-8")
        ]
    documents: list[YamlDocument] = []
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None or (
                isinstance(node, yaml.ScalarNode) and node.tag == _NULL and node.value in ("", "~")
            ):
                continue  # an empty document (e.g. a trailing '---')
            documents.append(YamlDocument(file=file, path=path, node=node))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _location(file, mark) if mark is not None else at_start
        problem = exc.problem or "syntax error"
        context = f" {exc.context}" if exc.context and exc.context_mark is not None else ""
        return [], [Diagnostic.at(where, f"invalid YAML: {problem}{context}")]
    except yaml.reader.ReaderError as exc:
        line, column = _line_col(text.encode(), len(text[: exc.position].encode()))
        return [], [
            Diagnostic(file=file, line=line, column=column, message="invalid YAML: unacceptable character")
        ]
    except (yaml.YAMLError, RecursionError) as exc:  # e.g. nesting too deep for the parser
        message = "document nests too deeply" if isinstance(exc, RecursionError) else f"invalid YAML: {exc}"
        return [], [Diagnostic.at(at_start, message)]
    finally:
        loader.dispose()
    return documents, []


@dataclass
class ConvertedDocument:
    """A document as plain Python values, plus what the validation step needs to know about its nodes."""

    source: YamlDocument
    value: Any
    diagnostics: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    # Nodes whose value came from ${env:...}: never echo them in messages.
    sensitive: set[int] = field(default_factory=set)
    # Nodes that already carry a diagnostic: later errors on them would only repeat it.
    poisoned: set[int] = field(default_factory=set)
    fatal: bool = False


class _Fatal(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class _Converter:
    def __init__(self, document: ConvertedDocument, interpolate: Interpolate) -> None:
        self.doc = document
        self.interpolate = interpolate
        self.visits = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def error(self, node: yaml.Node, message: str, hint: str | None = None) -> None:
        self.doc.poisoned.add(id(node))
        self.doc.diagnostics.append(
            Diagnostic.at(_location(self.doc.source.file, node.start_mark), message, hint)
        )

    def convert(self, node: yaml.Node, depth: int) -> Any:
        node_id = id(node)
        self.visits += 1
        if node_id in self.seen:
            # Reached again through an alias: count the expansion so a billion laughs stops early.
            if self.visits - len(self.seen) > MAX_ALIAS_NODES:
                raise _Fatal(
                    node, f"YAML aliases expand to more than {MAX_ALIAS_NODES} extra nodes (refused)"
                )
        else:
            self.seen.add(node_id)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if depth >= MAX_DEPTH:
            raise _Fatal(node, f"document nests deeper than {MAX_DEPTH} levels")
        if node_id in self.active:
            raise _Fatal(node, "recursive YAML alias (a node contains itself)")
        self.active.add(node_id)
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ:
                    self.unsupported_tag(node)
                return [self.convert(item, depth + 1) for item in node.value]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _MAP:
                    self.unsupported_tag(node)
                return self.mapping(node, depth)
        finally:
            self.active.discard(node_id)
        raise _Fatal(node, "unsupported YAML node")  # pragma: no cover - the composer makes only these

    def unsupported_tag(self, node: yaml.Node) -> None:
        self.error(
            node,
            f"unsupported YAML tag '{node.tag}'",
            "only plain YAML: mappings, lists, strings, numbers, booleans and null",
        )

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _STR:
            try:
                text, used_env, missing = self.interpolate(node.value)
            except ValueError as exc:
                self.error(node, getattr(exc, "message", str(exc)), getattr(exc, "hint", None))
                return node.value
            if used_env:
                self.doc.sensitive.add(id(node))
            if missing:
                self.doc.poisoned.add(id(node))  # its value is a stand-in: do not judge it
                names = ", ".join(f"'{name}'" for name in dict.fromkeys(missing))
                verb = "variable {} is" if len(set(missing)) == 1 else "variables {} are"
                self.doc.warnings.append(
                    Diagnostic.at(
                        _location(self.doc.source.file, node.start_mark),
                        f"environment {verb.format(names)} not set",
                        "plan and apply will need it",
                        severity="warning",
                    )
                )
            return text
        if tag == _TIMESTAMP:
            return node.value  # kept as text: fields that take times validate RFC 3339 themselves
        if tag == _NULL:
            return None
        try:
            if tag == _INT:
                return _SCALARS.construct_yaml_int(node)
            if tag == _FLOAT:
                return _SCALARS.construct_yaml_float(node)
            if tag == _BOOL:
                return _SCALARS.construct_yaml_bool(node)
        except (ValueError, yaml.YAMLError):
            self.error(node, f"invalid {tag[len(_T) :]} value")
            return None
        self.unsupported_tag(node)
        return None

    def mapping(self, node: yaml.MappingNode, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        key_nodes: dict[str, yaml.Node] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.merge(value_node, merged, depth)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _PLAIN_KEY_TAGS:
                self.error(key_node, "mapping keys must be plain strings")
                continue
            # A key is its text: `on:` or `1:` are names here, not YAML 1.1 booleans or numbers.
            key = str(key_node.value)
            if key in key_nodes:
                first = _location(self.doc.source.file, key_nodes[key].start_mark)
                self.error(key_node, f"duplicate key '{key}'", f"first given at {first}")
                continue
            key_nodes[key] = key_node
            result[key] = self.convert(value_node, depth + 1)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def merge(self, value_node: yaml.Node, merged: dict[str, Any], depth: int) -> None:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.error(source, "a '<<' merge key takes a mapping or a list of mappings")
                continue
            for key, value in self.convert(source, depth + 1).items():
                merged.setdefault(key, value)  # the first mapping listed wins, as YAML specifies


def convert(document: YamlDocument, interpolate: Interpolate) -> ConvertedDocument:
    """Plain values of one document, interpolating string scalars; problems land in ``diagnostics``."""
    converted = ConvertedDocument(source=document, value=None)
    converter = _Converter(converted, interpolate)
    try:
        converted.value = converter.convert(document.node, 0)
    except _Fatal as exc:
        converter.error(exc.node, exc.message)
        converted.fatal = True
    except RecursionError:
        converter.error(document.node, "document nests too deeply")
        converted.fatal = True
    return converted


def display_path(path: Path) -> str:
    """A path as users see it: relative to the working directory when it is under it."""
    try:
        return str(path.relative_to(Path.cwd())) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)


def is_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (already resolved) is ``root`` or below it."""
    path_s, root_s = os.fspath(path), os.fspath(root)
    return path_s == root_s or path_s.startswith(root_s.rstrip(os.sep) + os.sep)
