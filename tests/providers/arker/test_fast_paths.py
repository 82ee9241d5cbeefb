"""Fast paths of the per-call code agree with the general code they stand in for."""

from __future__ import annotations

import posixpath
from types import MappingProxyType
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from reconciler.providers.arker import resources
from reconciler.providers.arker.client import _joined, _segment

_PARTS = st.text(alphabet="ab/.", max_size=6)


@given(_PARTS, _PARTS)
def test_manifest_paths_join_as_posixpath(root: str, path: str) -> None:
    assert _joined(root, path) == posixpath.join(root, path)


@given(st.text(min_size=1, max_size=12))
def test_segments_quote_as_quote(value: str) -> None:
    assert _segment(value, "id") == quote(value, safe="")


def test_rule_views_sort_every_mapping_and_drop_absent_optionals() -> None:
    rule = {
        "type": "outbound",
        "match": MappingProxyType({"ports": [443], "hosts": ["b", "a"], "ips": None}),
        "priority": 900,
        "note": None,
    }
    view = resources._rule_view(rule)
    assert view == {
        "match": {"hosts": ["b", "a"], "ips": None, "ports": [443]},
        "priority": 900,
        "type": "outbound",
    }
    assert list(view) == ["match", "priority", "type"] and list(view["match"]) == ["hosts", "ips", "ports"]
    assert type(view["match"]) is dict
    assert resources._rule_view("not a rule") == "not a rule"
