"""The on-disk text of a state document, and reading it back with errors that name the file.

Format: UTF-8 JSON, 2-space indent, the document's scalar fields first (model order), then ``resources``
sorted by address; inside each resource, model field order with every mapping of ``values`` sorted by key.
It is the same JSON value as ``StateDocument.to_json()`` (only the key order of fixed model fields and the
ASCII escaping differ) and equal documents always give identical bytes.

Speed: the engine stores the whole document after every completed operation, so encoding must not be
proportional to the document for each write. ``StateEncoder`` renders each ``ResourceState`` once and reuses
that text while the same (immutable) object stays in the document; only the resources an operation replaced
are rendered again. This relies on the model contract that a ``ResourceState`` is never mutated in place
(its ``values`` dict included): change a resource by building a new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from .errors import StateCorruptError
from .model import STATE_FORMAT_VERSION, ResourceState, StateDocument, json_string
from .share import ValueSharer

__all__ = ["StateEncoder", "decode_state", "encode_state"]

_NESTED_INDENT = "\n    "  # a resource's text sits two levels deep: document -> resources -> address


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _sorted_json(value: Any) -> Any:
    """``value`` with every mapping's keys sorted (as JSON object keys, i.e. as strings)."""
    kind = type(value)
    if kind in _SCALARS:  # the common leaves first: the ABC check below is slow for them
        return value
    if kind is dict or isinstance(value, Mapping):
        return {key: _sorted_json(value[key]) for key in sorted(value, key=str)}
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [_sorted_json(item) for item in value]
    return value


# Set on a resource decoded from our own layout, naming its ``values`` object: that dict came from sorted
# text, so encoding it again needs no key sorting. The flag names the very dict, so a copy of the resource
# with other values (``model_copy(update=...)``) is not taken for canonical. Kept in ``__dict__`` beside the
# fields (pydantic's equality and dumps look at fields only; field names cannot start with "_").
_CANONICAL = "_state_canonical_values"


def _is_canonical(resource: ResourceState) -> bool:
    return resource.__dict__.get(_CANONICAL) is resource.values


def _render_entry(address: str, resource: ResourceState) -> bytes:
    """``resource`` as a member of the ``resources`` object: comma, newline, indent, key, value.

    The leading comma is sliced off (without copying) for the first member.
    """
    if not _is_canonical(resource):
        resource = resource.model_copy(update={"values": _sorted_json(resource.values)})
    text = resource.model_dump_json(indent=2).replace("\n", _NESTED_INDENT)
    return f",{_NESTED_INDENT}{json_string(address)}: {text}".encode()


class StateEncoder:
    """Encodes documents, reusing the text of resources it has already seen (see module doc)."""

    def __init__(self) -> None:
        # The last encoding, member by member, in address order: a member is reused while its resource is
        # the very same (immutable) object. Holding the resources keeps their ids from being reused.
        self._addresses: list[str] = []
        self._resources: list[ResourceState] = []
        self._members: list[bytes] = []

    def encode(self, doc: StateDocument) -> bytes:
        return b"".join(self.encode_chunks(doc))

    def encode_chunks(self, doc: StateDocument) -> list[bytes | memoryview]:
        """The encoding as pieces to write in order (``os.writev``), sparing a copy of the whole text."""
        resources = doc.resources
        addresses = list(resources)
        current = list(resources.values())
        if addresses == self._addresses:
            # The same addresses in the same (sorted) order as last time: the common case while an apply
            # records its operations. Only the members whose resource was replaced are rendered; the
            # comparison runs in C, which kept a 2,000-resource write from holding the GIL for a millisecond.
            members = self._members.copy()
            previous = self._resources
            pairs = enumerate(zip(current, previous, strict=True))
            for i in [i for i, (now, before) in pairs if now is not before]:
                members[i] = _render_entry(addresses[i], current[i])
        else:
            last = zip(self._addresses, self._resources, self._members, strict=True)
            known = {id(r): (r, a, m) for a, r, m in last}
            addresses = sorted(resources)
            current = [resources[address] for address in addresses]
            members = []
            for address, resource in zip(addresses, current, strict=True):
                hit = known.get(id(resource))
                if hit is not None and hit[0] is resource and hit[1] == address:
                    members.append(hit[2])
                else:
                    members.append(_render_entry(address, resource))
        # Only the current document's resources are remembered: memory follows the state's size.
        self._addresses, self._resources, self._members = addresses, current, members
        head = doc.model_dump_json(indent=2, exclude={"resources"})
        head = head[: head.rindex("}")].rstrip()
        separator = "," if head != "{" else ""
        if not members:
            return [f'{head}{separator}\n  "resources": {{}}\n}}\n'.encode()]
        opening = f'{head}{separator}\n  "resources": {{'.encode()
        # No comma before the first member.
        return [opening, memoryview(members[0])[1:], *members[1:], b"\n  }\n}\n"]


def encode_state(doc: StateDocument) -> bytes:
    """One-off encoding (no reuse across calls)."""
    return StateEncoder().encode(doc)


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "(document)"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _diagnose(data: bytes, path: Path | str, exc: ValidationError, hint: str) -> StateCorruptError:
    """Explain why a file failed validation, from the most to the least fundamental problem."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return StateCorruptError(path, "it is not UTF-8 text", hint=hint)
    except json.JSONDecodeError as err:
        return StateCorruptError(
            path, f"it is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})", hint=hint
        )
    if not isinstance(raw, dict):
        return StateCorruptError(path, "it is not a JSON object", hint=hint)
    version = raw.get("version")
    if version != STATE_FORMAT_VERSION and version is not None:
        return _version_error(path, version, hint)
    return StateCorruptError(path, f"it does not match the state format: {_first_errors(exc)}", hint=hint)


def _version_error(path: Path | str, version: object, hint: str) -> StateCorruptError:
    if isinstance(version, int) and not isinstance(version, bool) and version > STATE_FORMAT_VERSION:
        reason = (
            f"it was written by a newer arkerctl (state format version {version}; this arkerctl reads "
            f"version {STATE_FORMAT_VERSION}). Upgrade arkerctl"
        )
    else:
        reason = (
            f"unknown state format version {version!r} (this arkerctl reads version {STATE_FORMAT_VERSION})"
        )
    return StateCorruptError(path, reason, hint=hint)


# The layout ``StateEncoder`` writes: the document's scalar fields, then ``resources`` last, one member per
# line at a 4-space indent (JSON strings cannot hold a raw newline, so these bytes are always structure).
_RESOURCES_OPEN = b'\n  "resources": {'
_MEMBER = b',\n    "'
_RESOURCES_CLOSE = b"\n  }\n}\n"
# A member's ``values`` and the field after it, at a member's field indent (6 spaces): nested text is
# indented deeper and JSON strings hold no raw newline, so these bytes are always that structure.
_VALUES_OPEN = b'\n      "values": '
_VALUES_END = b',\n      "dependencies": '

_members = TypeAdapter(dict[str, ResourceState])


def _decode_members(data: bytes) -> StateDocument | None:
    """``data`` in our own layout, decoded one resource at a time (None when it is not in that layout).

    Decoding the whole document at once built every resource's values unshared before they could be
    shared: at 10,000 VMs a transient of several times the shared document. One member at a time, only
    one resource is ever unshared. A hand-edited layout that splits wrongly never parses (a cut inside
    a member leaves its braces open): the caller then decodes the whole text.
    """
    opening = data.rfind(_RESOURCES_OPEN)
    if opening < 0 or not data.endswith(_RESOURCES_CLOSE):
        return None
    head = StateDocument.model_validate_json(data[:opening] + b'\n  "resources": {}\n}')
    sharer = ValueSharer()
    resources: dict[str, ResourceState] = {}
    start = opening + len(_RESOURCES_OPEN) + len(_MEMBER) - 1  # just past the first member's quote
    end = len(data) - len(_RESOURCES_CLOSE)
    if data[start - len(_MEMBER) + 1 : start] != _MEMBER[1:]:
        return None
    parsed: dict[bytes, dict[str, Any]] = {}  # values text -> its one decoded (shared) dict
    while start < end:
        found = data.find(_MEMBER, start, end)
        stop = end if found < 0 else found
        text = data[start:stop]
        # Replicas record the same values, in the same text: each distinct text is decoded once.
        opening = text.find(_VALUES_OPEN)
        closing = text.find(_VALUES_END, opening) if opening >= 0 else -1
        known = None
        if closing >= 0:
            values_text = text[opening + len(_VALUES_OPEN) : closing]
            known = parsed.get(values_text)
            if known is not None:
                text = text[: opening + len(_VALUES_OPEN)] + b"{}" + text[closing:]
        member = _members.validate_json(b'{"' + text + b"}")
        if known is None:
            # Just decoded: nobody else holds these resources yet.
            sharer.share_models(member.values(), "values", "dependencies")
            if closing >= 0 and len(member) == 1:
                parsed[values_text] = next(iter(member.values())).values
        else:
            sharer.share_models(member.values(), "dependencies")
            for resource in member.values():
                resource.__dict__["values"] = known  # a frozen model: its field set in place, once
        for resource in member.values():
            resource.__dict__[_CANONICAL] = resource.values
        resources.update(member)
        start = stop + len(_MEMBER)
    return head.model_copy(update={"resources": resources})


def decode_state(data: bytes, path: Path | str, *, hint: str = "") -> StateDocument:
    """Parse stored bytes; any problem is a ``StateCorruptError`` naming ``path`` (never an empty state)."""
    if not data.strip():
        raise StateCorruptError(path, "the file is empty", hint=hint)
    try:
        doc = _decode_members(data)
    except ValueError:  # ValidationError included: the whole-text decode below explains the problem
        doc = None
    if doc is None:
        try:
            doc = StateDocument.model_validate_json(data)
        except ValidationError as exc:
            raise _diagnose(data, path, exc, hint) from None
        ValueSharer().share_models(doc.resources.values(), "values", "dependencies")
    if doc.version != STATE_FORMAT_VERSION:
        raise _version_error(path, doc.version, hint)
    for address, resource in doc.resources.items():
        if resource.address != address:
            raise StateCorruptError(
                path, f"resources[{address!r}] holds the resource of address {resource.address!r}", hint=hint
            )
    return doc
