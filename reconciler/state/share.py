"""Sharing identical sub-values of JSON-like trees, so that N resources of the same shape hold one copy.

A fleet's state repeats itself: every replica of a group records the same policy rules, keys, file
digests and lifecycle, each decoded into its own dicts and lists (at 10,000 VMs that is most of the
document's memory). ``ValueSharer`` maps each container to one canonical instance per distinct content,
bottom-up, so equal subtrees become the same object.

Safe only because values are never mutated in place (the ``ResourceState`` contract): a shared dict
mutated through one resource would change them all.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

__all__ = ["ValueSharer"]


class ValueSharer:
    """Canonical instances of the containers seen so far (kept alive, so their ids stay unique)."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[Hashable, Any] = {}

    def share_items(self, values: dict[str, Any]) -> dict[str, Any]:
        """Replace, in place, every value of the fresh dict ``values`` (built by the caller, not yet seen
        by anyone else) with its canonical instance; returns ``values``. The dict itself stays: it is one
        resource's own top level."""
        for key, value in values.items():
            shared = self._share(value)[0]
            if shared is not value:
                values[key] = shared
        return values

    def share(self, value: Any) -> Any:
        """The canonical instance of the fresh JSON-like ``value`` (which may be modified in place)."""
        return self._share(value)[0]

    def _share(self, value: Any) -> tuple[Any, Hashable]:
        """``value``'s canonical instance and a token equal for equal content (id for containers)."""
        cls = value.__class__
        if cls is dict:
            parts = []
            for key, item in value.items():
                shared, token = self._share(item)
                if shared is not item:
                    value[key] = shared  # same key: no resize while iterating
                parts.append((key, token))
            # Key order is part of the content: the encoder relies on a trusted value's order.
            memo_key: Hashable = (dict, tuple(parts))
        elif cls is list:
            tokens = []
            for index, item in enumerate(value):
                shared, token = self._share(item)
                if shared is not item:
                    value[index] = shared
                tokens.append(token)
            memo_key = (list, tuple(tokens))
        elif cls is str:
            # Equal strings decoded or built apart are distinct objects: one each.
            return self._memo.setdefault(value, value), value
        elif value is None:
            return value, value
        else:
            # ``True == 1 == 1.0`` in Python but not in JSON: the type is part of a scalar's token.
            return value, (cls, value)
        found = self._memo.setdefault(memo_key, value)
        return found, id(found)
