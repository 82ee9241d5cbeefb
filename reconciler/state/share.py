"""Sharing equal values between resources, so that N resources of the same shape hold one copy.

A fleet repeats itself: every replica of a group records, wants and shows the same policy rules, keys,
file digests and lifecycle, each decoded or built into its own dicts and lists (at 10,000 VMs that was
most of a plan's memory). ``ValueSharer`` maps each value to one canonical instance per distinct content.

Content is the value's ``marshal`` serialisation (format 2: no back-references, so equal values give
equal bytes; one C-level call per value, about 3x cheaper than a compact JSON encode, which made a cold
state decode 2.5x slower than pydantic's own), with the top-level Python type. ``True``/``1``/``1.0``,
lists/tuples and key order stay distinct: two values share an instance only when they are the same
data, in the same order.

Safe only because values are never mutated in place (the ``ResourceState`` contract, and the engine's
values are frozen models): a shared dict mutated through one resource would change them all.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

__all__ = ["ValueSharer"]

_CONTAINERS = (dict, list, tuple)
_MARSHAL_VERSION = 2  # before back-references (version 3): the bytes depend on the data alone


class ValueSharer:
    """Canonical instances of the values seen so far, by content."""

    __slots__ = ("_fields_sets", "_memo")

    def __init__(self) -> None:
        self._memo: dict[tuple[type, bytes], Any] = {}
        self._fields_sets: dict[frozenset[str], set[str]] = {}

    def share(self, value: Any) -> Any:
        """The canonical instance of ``value`` (``value`` itself the first time its content is seen).
        Scalars and values that are not JSON come back as they are."""
        cls = value.__class__
        if cls not in _CONTAINERS:
            return value
        try:
            key = (cls, marshal.dumps(value, _MARSHAL_VERSION))
        except ValueError:  # not marshallable data (a model, a set of objects...): keep it as it is
            return value
        return self._memo.setdefault(key, value)

    def share_items(self, values: dict[str, Any]) -> dict[str, Any]:
        """Replace, in place, every value of the fresh dict ``values`` (built by the caller, not yet seen
        by anyone else) with its canonical instance; returns ``values``."""
        for key, value in values.items():
            shared = self.share(value)
            if shared is not value:
                values[key] = shared  # same key: no resize while iterating
        return values

    def share_models(self, models: Iterable[BaseModel], *fields: str) -> None:
        """Compact fresh frozen models (built by the caller, not yet seen by anyone else): each of the
        JSON-like ``fields`` becomes its canonical instance (or, for a dict seen for the first time, its
        items do), and equal sets of explicitly set field names become one set.

        A pydantic model carries its own set of set-field names (728 bytes for five names) and copies
        every dict it validates: at 20,000 resources per kind that is most of what a model costs. Both are
        replaced in the instance's ``__dict__`` / ``__pydantic_fields_set__`` directly (a frozen model
        refuses ``setattr``); pydantic never changes either in place (``model_copy`` copies them first).
        """
        sets = self._fields_sets
        for model in models:
            names = model.__pydantic_fields_set__
            shared_names = sets.setdefault(frozenset(names), names)
            if shared_names is not names:
                object.__setattr__(model, "__pydantic_fields_set__", shared_names)
            attributes = model.__dict__
            for name in fields:
                value = attributes[name]
                shared = self.share(value)
                if shared is not value:
                    attributes[name] = shared
                elif value.__class__ is dict:
                    self.share_items(value)  # new as a whole (a Sync's VM name): its parts may repeat
