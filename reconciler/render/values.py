"""Display form of comparable values: JSON-like text, compact when short, one item per line when long.

Values reaching the renderers are already masked by the engine (sensitive leaves are ``"(sensitive)"``);
the mask is shown bare, as a marker rather than as a string the user wrote.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.engine import MASK

__all__ = ["COMPACT_WIDTH", "format_value"]

# Containers whose one-line form is at most this wide stay on one line; longer ones are unfolded.
COMPACT_WIDTH = 60


def _compact(value: Any) -> str:
    if isinstance(value, str) and value == MASK:
        return MASK
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}: {_compact(value[k])}" for k in sorted(value))
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_compact(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def format_value(value: Any, indent: str = "") -> str:
    """``value`` as text; continuation lines of an unfolded container start with ``indent``."""
    text = _compact(value)
    if not isinstance(value, dict | list | tuple) or len(text) <= COMPACT_WIDTH or not value:
        return text
    inner = indent + "  "
    if isinstance(value, dict):
        lines = [
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {format_value(value[k], inner)}"
            for k in sorted(value)
        ]
        open_, close = "{", "}"
    else:
        lines = [f"{inner}{format_value(item, inner)}" for item in value]
        open_, close = "[", "]"
    return open_ + "\n" + ",\n".join(lines) + "\n" + indent + close
