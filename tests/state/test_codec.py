from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.state import (
    ResourceState,
    StateCorruptError,
    StateDocument,
    StateEncoder,
    decode_state,
    encode_state,
)

from .helpers import document, vm

_keys = st.text(min_size=1, max_size=8)
_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=8,
)
_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@st.composite
def resources(draw: st.DrawFn) -> ResourceState:
    name = draw(_names)
    return ResourceState(
        address=f"vm.{name}",
        kind="VM",
        name=name,
        id=draw(st.text(min_size=1, max_size=10)),
        values=draw(st.dictionaries(_keys, _json_values, max_size=5)),
        dependencies=tuple(draw(st.lists(_names.map(lambda n: f"vm.{n}"), max_size=3))),
    )


@st.composite
def documents(draw: st.DrawFn) -> StateDocument:
    items = draw(st.lists(resources(), max_size=6, unique_by=lambda r: r.address))
    return StateDocument(
        serial=draw(st.integers(0, 10**6)),
        stack=draw(st.text(max_size=10)),
        resources={r.address: r for r in items},
    )


def _reordered(value: Any) -> Any:
    """The same JSON value with every mapping's insertion order reversed."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


@settings(max_examples=30, deadline=None)
@given(documents())
def test_encoding_round_trips_and_is_the_same_json_as_to_json(doc: StateDocument) -> None:
    data = encode_state(doc)
    assert decode_state(data, "state.json") == doc
    assert json.loads(data) == json.loads(doc.to_json())


@settings(max_examples=30, deadline=None)
@given(documents())
def test_equal_documents_give_identical_bytes_whatever_the_insertion_order(doc: StateDocument) -> None:
    shuffled = StateDocument.model_validate(
        {
            **doc.model_dump(exclude={"resources"}),
            "resources": {
                address: {**r.model_dump(), "values": _reordered(r.values)}
                for address, r in reversed(list(doc.resources.items()))
            },
        }
    )
    assert encode_state(shuffled) == encode_state(doc)


@settings(max_examples=20, deadline=None)
@given(documents(), st.lists(st.tuples(st.booleans(), resources()), max_size=8))
def test_a_reused_encoder_writes_exactly_what_a_fresh_one_would(
    doc: StateDocument, steps: list[tuple[bool, ResourceState]]
) -> None:
    # As the backend does: resources read back from our own file are known to be in canonical order.
    doc = decode_state(encode_state(doc), "state.json")
    encoder = StateEncoder()
    assert encoder.encode(doc) == encode_state(doc)
    for remove, resource in steps:
        if not remove and resource.address in doc.resources:
            # A copy of a decoded resource with other values (key order reversed) is not canonical.
            decoded = doc.resources[resource.address]
            resource = decoded.model_copy(update={"values": _reordered(resource.values)})
        doc = doc.without(resource.address) if remove else doc.with_resource(resource)
        assert encoder.encode(doc) == encode_state(doc)
        # chunks and bytes are the same text
        assert b"".join(encoder.encode_chunks(doc)) == encode_state(doc)


def test_format_is_readable_and_sorted() -> None:
    doc = StateDocument(lineage="L", serial=3, stack="fleet").with_resource(vm(2)).with_resource(vm(1))
    text = encode_state(doc).decode()
    assert text.startswith('{\n  "version": 1,\n  "lineage": "L",\n  "serial": 3,\n  "stack": "fleet",\n')
    assert text.endswith("\n  }\n}\n")
    assert text.index('"vm.worker-1"') < text.index('"vm.worker-2"')
    # values are sorted by key even though the provider built them in another order
    values = text[text.index('"values"') :]
    assert (
        values.index('"description"')
        < values.index('"files"')
        < values.index('"resources"')
        < values.index('"ssh')
    )
    assert '    "vm.worker-1": {\n      "address": "vm.worker-1",' in text


def test_empty_document() -> None:
    doc = StateDocument(lineage="L")
    assert json.loads(encode_state(doc)) == {
        "version": 1,
        "lineage": "L",
        "serial": 0,
        "stack": "",
        "resources": {},
    }


def test_non_ascii_text_is_kept_as_utf8() -> None:
    doc = StateDocument().with_resource(vm(1, description="café ✓", **{"ключ": "значение"}))
    data = encode_state(doc)
    assert "café ✓".encode() in data
    assert decode_state(data, "s.json") == doc


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b'{"version": 1, "lineage": ', "not valid JSON (Expecting value at line 1 column"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"[1, 2]", "not a JSON object"),
        (
            b'{"version": 2, "lineage": "x", "serial": 1}',
            "written by a newer arkerctl (state format version 2",
        ),
        (b'{"version": 0, "lineage": "x", "serial": 1}', "unknown state format version 0"),
        (b'{"version": "one", "lineage": "x"}', "unknown state format version 'one'"),
        (b'{"version": 1, "lineage": "x", "serial": "many"}', "serial: Input should be a valid integer"),
        (
            b'{"version": 1, "resources": {"vm.a": {"address": "vm.a", "kind": "VM", "name": "a"}}}',
            "resources.vm.a.id: Field required",
        ),
        (b'{"version": 1, "surprise": true}', "surprise: Extra inputs are not permitted"),
        (
            b'{"version": 1, "resources": '
            b'{"vm.a": {"address": "vm.b", "kind": "VM", "name": "b", "id": "1"}}}',
            "resources['vm.a'] holds the resource of address 'vm.b'",
        ),
    ],
)
def test_corrupt_documents_are_errors_naming_the_file(data: bytes, expected: str) -> None:
    with pytest.raises(StateCorruptError) as info:
        decode_state(data, "/srv/stack/.arkerctl/state.json", hint="The previous state is kept in X.")
    message = str(info.value)
    assert message.startswith("state file /srv/stack/.arkerctl/state.json cannot be used: ")
    assert expected in message
    assert message.endswith("\nThe previous state is kept in X.")
    assert info.value.path == "/srv/stack/.arkerctl/state.json"


def test_a_document_written_by_to_json_is_readable() -> None:
    doc = document(3)
    assert decode_state(doc.to_json().encode(), "s.json") == doc


def test_a_decoded_resource_copied_with_other_values_is_sorted_again() -> None:
    doc = decode_state(encode_state(StateDocument(lineage="L").with_resource(vm(1))), "state.json")
    decoded = doc.resources["vm.worker-1"]
    unsorted = {"ssh_keys": ["k"], "description": "d", "resources": {"vcpu": 2, "memory_mib": 1}}
    assert list(unsorted) != sorted(unsorted)
    copied = decoded.model_copy(update={"values": unsorted})
    renamed = decoded.model_copy(update={"id": "other-id"})  # same values: still canonical
    encoder = StateEncoder()
    for changed in (copied, renamed):
        after = doc.with_resource(changed)
        assert encoder.encode(after) == encode_state(after)
        assert json.loads(encoder.encode(after))["resources"]["vm.worker-1"]["values"] == changed.values
    text = encoder.encode(doc.with_resource(copied)).decode()
    values = text[text.index('"values"') :]
    assert values.index('"description"') < values.index('"resources"') < values.index('"ssh_keys"')


_tricky_values = st.sampled_from(
    [
        {},
        {"dependencies": ["vm.a"], "values": {"x": 1}},  # the field names, one level deeper
        {"s": '\n      "dependencies": [', "t": "}"},  # the separators, inside strings
        {"n": 1},
        {"n": 1.0},  # equal to the one above in Python, not in JSON text
        {"nested": {"deep": [{"values": {}}]}},
    ]
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(_names, _tricky_values, st.booleans()), max_size=8, unique_by=lambda t: t[0]))
def test_members_with_the_same_values_text_decode_to_one_shared_dict(
    items: list[tuple[str, dict[str, Any], bool]],
) -> None:
    doc = StateDocument(
        lineage="L",
        resources={
            f"vm.{name}": ResourceState(
                address=f"vm.{name}",
                kind="VM",
                name=name,
                id=f"id-{name}",
                values=values,
                dependencies=("vm.base",) if with_dependency else (),
            )
            for name, values, with_dependency in items
        },
    )
    data = encode_state(doc)
    decoded = decode_state(data, "state.json")
    assert decoded == doc
    assert encode_state(decoded) == data  # still canonical: re-encoded to the very bytes
    by_text: dict[str, dict[str, Any]] = {}
    for resource in decoded.resources.values():
        text = json.dumps(resource.values, sort_keys=True)
        assert type(resource.values.get("n", 0)) is type(doc.resources[resource.address].values.get("n", 0))
        first = by_text.setdefault(text, resource.values)
        assert first is resource.values  # decoded once per distinct text, shared by the others
