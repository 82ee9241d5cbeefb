"""Sharing equal sub-values (``ValueSharer``) and its use when a state document is decoded."""

from __future__ import annotations

import copy
import gc
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


def test_equal_containers_become_one_object_and_others_stay_apart() -> None:
    sharer = ValueSharer()
    first = sharer.share({"rules": {"a": {"ports": [443], "on": True}}, "n": 1})
    second = sharer.share({"rules": {"a": {"ports": [443], "on": True}}, "n": 2})
    assert second["rules"] is first["rules"]
    assert second is not first
    # True == 1 == 1.0 in Python, not in JSON; key order is content too (trusted state text keeps it).
    as_int = sharer.share({"a": {"ports": [443], "on": 1}})
    reordered = sharer.share({"on": True, "ports": [443]})
    assert as_int["a"] is not first["rules"]["a"] and as_int["a"]["on"] is not True
    assert reordered is not first["rules"]["a"] and list(reordered) == ["on", "ports"]
    assert sharer.share([1.0])[0].__class__ is float


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
    assert len({id(r.values["resources"]) for r in resources}) == 1
    assert len({id(r.values["files"]) for r in resources}) == 20  # each digest differs
    assert encode_state(doc) == data


def test_reading_again_does_not_keep_the_previous_document_alive(tmp_path: Path) -> None:
    backend = LocalStateBackend(tmp_path / "state.json")
    backend.write(document(3), expected_serial=None)
    first = backend.read()
    assert first is not None
    gone = weakref.ref(next(iter(first.resources.values())))
    del first
    second = backend.read()
    gc.collect()
    assert gone() is None
    # A read-back document is still written without re-sorting, and to the same text.
    assert second is not None
    backend.write(second, expected_serial=second.serial)
    again = backend.read()
    assert again is not None and again.resources == second.resources
