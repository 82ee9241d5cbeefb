"""Fast paths of the per-call code agree with the general code they stand in for."""

from __future__ import annotations

import json
import posixpath
import re
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from reconciler.providers.arker import resources
from reconciler.providers.arker.client import _joined, _json, _segment, _upload_id
from reconciler.providers.arker.idempotency import valid_idempotency_key

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


_JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.text()
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=6), _JSON, max_size=5))
def test_request_bodies_are_the_text_json_dumps_gives(body: dict[str, Any]) -> None:
    assert _json(body) == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@given(st.dictionaries(st.text(max_size=6), st.floats(allow_nan=False, allow_infinity=False), max_size=5))
def test_request_body_floats_are_the_same_numbers(body: dict[str, float]) -> None:
    # Only an exponent's padding may differ from json.dumps (1e-7 against 1e-07).
    assert json.loads(_json(body)) == body


@given(st.text(max_size=70))
def test_idempotency_key_check_is_printable_ascii_up_to_64(key: str) -> None:
    assert valid_idempotency_key(key) == (0 < len(key) <= 64 and all(" " <= ch <= "~" for ch in key))


def test_idempotency_key_check_refuses_a_trailing_newline() -> None:
    assert not valid_idempotency_key("key\n") and valid_idempotency_key("key ~")


def test_upload_ids_are_random_32_hex_digits() -> None:
    ids = {_upload_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"arkerctl-[0-9a-f]{32}", upload_id) for upload_id in ids)
