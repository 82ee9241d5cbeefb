"""Value formatting: JSON-compatible text, compact when short, unfolded when long, masks shown bare."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.render.values import COMPACT_WIDTH, format_value

_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


@given(_values)
def test_output_is_json_for_the_same_value(value: Any) -> None:
    text = format_value(value, "    ")
    assert json.loads(text) == _normal(value)


@given(_values)
def test_a_container_unfolds_exactly_when_its_one_line_form_is_too_long(value: Any) -> None:
    one_line = json.dumps(_normal(value), ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    unfolds = isinstance(value, dict | list) and bool(value) and len(one_line) > COMPACT_WIDTH
    assert ("\n" in format_value(value)) == unfolds


def test_examples() -> None:
    assert format_value("(sensitive)") == "(sensitive)"
    assert format_value({"b": 1, "a": [True, None]}) == '{"a": [true, null], "b": 1}'
    assert format_value({"k": "(sensitive)"}) == '{"k": (sensitive)}'
    assert format_value(["x" * 40, "y" * 40], "  ") == f'[\n    "{"x" * 40}",\n    "{"y" * 40}"\n  ]'
    assert format_value([]) == "[]" and format_value({}) == "{}"
    assert format_value("line\nbreak") == '"line\\nbreak"'
