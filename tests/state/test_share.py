"""Sharing equal sub-values (``ValueSharer``) and its use when a state document is decoded."""

from __future__ import annotations

import copy
import gc
import json
import weakref
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.state import LocalStateBackend, ValueSharer, decode_state, encode_state

from .helpers import document

_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=3)
_trees = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=10,
)


def _same_types(a: Any, b: Any) -> bool:
    """Equal and of the same JSON types at every level (``==`` alone confuses True, 1 and 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@settings(max_examples=60, deadline=None)
@given(st.lists(_trees, min_size=1, max_size=6))
def test_sharing_never_changes_a_value(trees: list[Any]) -> None:
    expected = copy.deepcopy(trees)
    sharer = ValueSharer()
    shared = [sharer.share(tree) for tree in trees]
    assert all(_same_types(a, b) for a, b in zip(shared, expected, strict=True))


def test_equal_values_become_one_object_and_others_stay_apart() -> None:
    sharer = ValueSharer()
    rules = {"a": {"ports": [443], "on": True}}
    assert sharer.share({"a": {"ports": [443], "on": True}}) is sharer.share(rules) is not rules
    # True == 1 == 1.0 in Python, not in JSON; key order is content too (trusted state text keeps it).
    others: tuple[dict[str, object], ...] = (
        {"a": {"ports": [443], "on": 1}},
        {"a": {"on": True, "ports": [443]}},
        {"a": {}},
    )
    for other in others:
        assert sharer.share(other) is other
    assert sharer.share([1.0]) is not sharer.share([1]) and sharer.share((1.0,)).__class__ is tuple
    assert sharer.share("text") == "text" and sharer.share({"t": object}).__class__ is dict  # not JSON


def test_share_items_keeps_the_top_level_dict() -> None:
    sharer = ValueSharer()
    one = sharer.share_items({"egress": {"x": [1]}})
    values = {"egress": {"x": [1]}, "name": "b"}
    assert sharer.share_items(values) is values
    assert values["egress"] is one["egress"]


def test_decoded_state_shares_equal_values_across_resources_and_encodes_the_same() -> None:
    data = encode_state(document(20))
    doc = decode_state(data, "state.json")
    resources = list(doc.resources.values())
    # Each resource's file digest differs, so their values differ as a whole: the parts are shared.
    assert len({id(r.values) for r in resources}) == 20
    assert len({id(r.values["resources"]) for r in resources}) == 1
    assert len({id(r.values["files"]) for r in resources}) == 20
    assert encode_state(doc) == data


def test_reading_other_bytes_does_not_keep_the_previous_document_alive(tmp_path: Path) -> None:
    backend = LocalStateBackend(tmp_path / "state.json")
    written = backend.write(document(3), expected_serial=None)
    first = backend.read()
    assert first is not None
    gone = weakref.ref(next(iter(first.resources.values())))
    del first
    other = LocalStateBackend(tmp_path / "state.json")  # another process, as far as files go
    more = document(4).model_copy(update={"lineage": written.lineage})
    other.write(more, expected_serial=1)
    second = backend.read()
    gc.collect()
    assert gone() is None
    # A read-back document is still written without re-sorting, and to the same text.
    assert second is not None and len(second.resources) == 4
    backend.write(second, expected_serial=second.serial)
    again = backend.read()
    assert again is not None and again.resources == second.resources and again.serial == 3


def test_the_same_bytes_read_twice_give_the_same_document(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    backend = LocalStateBackend(path)
    backend.write(document(2), expected_serial=None)
    first = backend.read()
    assert first is not None and backend.read() is first
    # An edit of the same size is still seen: the bytes are compared, not the file's size or times.
    text = path.read_text()
    edited = text.replace('"CI sandbox"', '"CI sandbax"', 1)
    assert len(edited) == len(text) and edited != text
    path.write_text(edited)
    changed = backend.read()
    assert changed is not None and changed is not first
    assert changed.resources["vm.worker-0"].values["description"] == "CI sandbax"


def test_every_layout_of_the_same_json_decodes_to_the_same_document() -> None:
    data = encode_state(document(5))
    doc = decode_state(data, "state.json")
    raw = json.loads(data)
    # Our own layout is decoded a member at a time; any other falls back to decoding the whole text.
    flat_members = data.replace(b"\n      ", b"\n    ").replace(b"\n        ", b"\n    ")
    layouts = [
        json.dumps(raw).encode(),
        json.dumps(raw, indent=4).encode(),
        json.dumps(raw, indent=2).encode() + b"\n",
        flat_members,
        data.replace(b"\n", b"\r\n"),
    ]
    for text in layouts:
        assert decode_state(text, "state.json") == doc
