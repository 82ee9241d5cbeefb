"""Structured differences between two comparable values.

We walk the values ourselves instead of using ``deepdiff``: the rules we need are few but specific
(compare only the paths one side manages, whole-list changes, ``exact`` mappings, prefix-based
ignore/force/sensitive matching, masking at the source), and expressing them as deepdiff options plus a
translation of its ``root['a']['b']`` paths and per-index list reports would be longer, slower and harder
to reason about than this one recursive function. Values are small JSON-like trees, so a direct walk is
cheap; values that agree on every compared path short-circuit (one pass, no change objects, no path
sets) before any walking: that is every resource of a no-op plan.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .model import MASK, Change, is_reserved_key
from .paths import Part, PathSet, format_path

__all__ = ["MASK", "diff_values", "mask_values", "project", "without_paths"]

Path = tuple[Part, ...]

# Comparable values are plain JSON-like data (dict / list / scalars): type checks use the concrete types,
# which is several times faster than ``isinstance(x, Mapping)`` on hot paths.
_SEQUENCES = (list, tuple)


class _Missing:
    """Marks a key that one side does not have (distinct from an explicit ``None``)."""

    __slots__ = ()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "<missing>"


_MISSING: Any = _Missing()


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = frozenset({dict, list})
_MARSHAL_VERSION = 2  # no back-references: the bytes depend on the data alone


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True  # values are often shared (state, configs and live views share equal values)
    kind = type(a)
    if kind is type(b) and kind in _PLAIN_SCALARS:
        return bool(a == b)  # the common leaf: same plain type, nothing to reconcile
    return _equal_mixed(a, b)


def _equal_mixed(a: Any, b: Any) -> bool:
    # Stricter than ``==`` where JSON is: ``True == 1`` in Python, but ``true`` and ``1`` differ in a value.
    kind = type(a)
    if kind is type(b) and kind in _CONTAINERS:
        # Equal serialisations (marshal tells bool from int, and keeps order) mean equal values, found in
        # C; anything else (other key order, 1 against 1.0, lists against tuples) takes the walk below.
        try:
            if marshal.dumps(a, _MARSHAL_VERSION) == marshal.dumps(b, _MARSHAL_VERSION):
                return True
        except ValueError:  # not plain data
            pass
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, *_SEQUENCES)) or isinstance(b, (dict, *_SEQUENCES)):
        return False
    return bool(a == b)


def _sorted_dicts(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with every mapping's keys sorted; ``value`` itself (not a copy) when they already are.

    Display values of a plan are mostly the config's or the live object's own values: sharing them
    instead of copying keeps a 10,000-VM plan from holding a second and third copy of every value.
    """
    keys = sorted(value)
    changed: dict[str, Any] = {}
    for key in keys:
        item = value[key]
        if isinstance(item, dict):
            canonical = _sorted_dicts(item)
            if canonical is not item:
                changed[key] = canonical
    if not changed and keys == list(value):
        return value
    return {key: changed.get(key, value[key]) for key in keys}


def _mask(value: Any, path: Path, sensitive: PathSet) -> Any:
    """``value`` (found at ``path``) with every sensitive part replaced by ``"(sensitive)"``."""
    if value is _MISSING or value is None:
        return None
    if sensitive.covers(path):
        return MASK
    if isinstance(value, dict):
        if not sensitive.below(path):
            # Nothing below is sensitive (no member covers ``path`` nor lies below it): share, sorted.
            return _sorted_dicts(value)
        # Rebuilt with sorted keys at every level, so display values are deterministic too.
        return {k: _mask(value[k], (*path, k), sensitive) for k in sorted(value)}
    if sensitive.below(path):
        # A secret somewhere inside a list: we do not address list items by key, so hide the whole list.
        return MASK
    return value


def mask_values(values: Mapping[str, Any] | None, sensitive: Iterable[str]) -> dict[str, Any] | None:
    """A display copy of ``values`` with sensitive paths masked and reserved keys dropped."""
    if values is None:
        return None
    paths = PathSet.parse(sensitive)
    if not paths:  # nothing to mask (most resources): sorted keys, shared values
        shown = {k: values[k] for k in sorted(values) if not is_reserved_key(k)}
        for key, value in shown.items():
            if isinstance(value, dict):
                shown[key] = _sorted_dicts(value)  # same key: no resize while iterating
        return shown
    return {k: _mask(values[k], (k,), paths) for k in sorted(values) if not is_reserved_key(k)}


def without_paths(values: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """A copy of ``values`` with the given paths (and everything below them) removed."""
    parsed = PathSet.parse(paths)

    def strip(value: Any, path: Path) -> Any:
        if not isinstance(value, dict) or not parsed.below(path):
            return value
        return {k: strip(v, (*path, k)) for k, v in value.items() if not parsed.covers((*path, k))}

    return {k: strip(v, (k,)) for k, v in values.items() if not parsed.covers((k,))}


def project(
    values: Mapping[str, Any], shape: Mapping[str, Any], *, exact: Iterable[str] = ()
) -> dict[str, Any]:
    """``values`` restricted to the keys ``shape`` has, recursively through mappings on both sides.

    Below an ``exact`` path the value is kept whole (the user owns all of that mapping).
    """
    exact_paths = PathSet.parse(exact)

    def restrict(value: Mapping[str, Any], wanted: Mapping[str, Any], path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in sorted(value):
            sub = (*path, key)
            whole = exact_paths.covers(sub)
            if (not path and is_reserved_key(key)) or (key not in wanted and not whole):
                continue
            item, shape_item = value[key], wanted.get(key)
            if isinstance(item, dict) and isinstance(shape_item, dict) and not whole:
                out[key] = restrict(item, shape_item, sub)
            else:
                out[key] = item
        if (
            isinstance(value, dict)
            and len(out) == len(value)
            and all(out[key] is item for key, item in value.items())
        ):
            return value  # nothing left out: share the value instead of holding a copy
        return out

    return restrict(values, shape, ())


class _Walk:
    def __init__(
        self,
        scope: Literal["before", "after"],
        ignore: PathSet,
        force_new: PathSet,
        sensitive: PathSet,
        exact: PathSet,
    ) -> None:
        self.scope_after = scope == "after"
        self.ignore = ignore
        self.force_new = force_new
        self.sensitive = sensitive
        self.exact = exact
        self.changes: list[Change] = []

    def emit(self, path: Path, before: Any, after: Any) -> None:
        self.changes.append(
            Change(
                path=format_path(path),
                before=_mask(before, path, self.sensitive),
                after=_mask(after, path, self.sensitive),
                forces_replacement=self.force_new.covers(path) or self.force_new.below(path),
                sensitive=self.sensitive.covers(path) or self.sensitive.below(path),
            )
        )

    def keys(self, path: Path, before: Any, after: Any) -> list[str]:
        scoped = after if self.scope_after else before
        keys = set(scoped) if isinstance(scoped, dict) else set()
        if self.exact.covers(path):
            # The user owns the whole mapping: what the other side has beyond it is a difference too.
            other = before if self.scope_after else after
            if isinstance(other, dict):
                keys |= set(other)
        if not path:
            keys = {k for k in keys if not is_reserved_key(k)}
        return sorted(keys)

    def walk(self, path: Path, before: Any, after: Any) -> None:
        if path and self.ignore.covers(path):
            return
        scoped = after if self.scope_after else before
        if scoped is _MISSING:
            # Only reachable through an ``exact`` mapping: the other side has a key we do not want.
            self.emit(path, before, after)
            return
        if (
            isinstance(scoped, dict)
            and (before is _MISSING or isinstance(before, dict))
            and (after is _MISSING or isinstance(after, dict))
        ):
            # Descend for leaf-level changes; a side that lacks the mapping is treated as empty.
            for key in self.keys(path, before, after):
                b = before.get(key, _MISSING) if before is not _MISSING else _MISSING
                a = after.get(key, _MISSING) if after is not _MISSING else _MISSING
                self.walk((*path, key), b, a)
            return
        if (before is _MISSING and after is None) or (after is _MISSING and before is None):
            return  # an explicit null and an absent field mean the same in comparable values
        if before is _MISSING or after is _MISSING or not _equal(before, after):
            # Scalars, lists (already canonical, so compared whole) and type changes.
            self.emit(path, before, after)


def _agree(scoped: dict[str, Any], other: dict[str, Any], path: Path, exact: PathSet | None) -> bool:
    """Whether the walk would find nothing: every key of ``scoped`` (the compared side) has an equal
    value in ``other``, recursively through mappings, with an absent key and ``None`` alike; below an
    ``exact`` path both mappings must be equal outright. A quick, conservative check: ``False`` only
    means "walk to find out"."""
    for key, value in scoped.items():
        if not path and is_reserved_key(key):
            continue
        found = other.get(key, _MISSING)
        if found is value:
            continue
        if found is _MISSING:
            if value is None:
                continue
            return False
        if isinstance(value, dict):
            if not isinstance(found, dict):
                return False
            sub = (*path, key)
            if exact is not None and exact.covers(sub):
                if not _equal(value, found):
                    return False
            elif not _agree(value, found, sub, exact):
                return False
        elif value is None and found is None:
            continue
        elif not _equal(value, found):
            return False
    return True


def _as_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    return values if type(values) is dict else dict(values)  # no copy of what is already a plain dict


def diff_values(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    scope: Literal["before", "after"] = "after",
    ignore: Iterable[str] = (),
    force_new: Iterable[str] = (),
    sensitive: Iterable[str] = (),
    exact: Iterable[str] = (),
) -> tuple[Change, ...]:
    """The changes that turn ``before`` into ``after``, sorted by path.

    ``scope`` names the side whose paths are compared: with ``"after"`` (pending changes: live ->
    desired) a field the desired values do not contain is unmanaged and never a difference; with
    ``"before"`` (drift: last applied -> live) only what was recorded is compared. ``exact`` paths lift
    that restriction for the keys of one mapping. ``ignore`` paths are skipped entirely; top-level
    reserved ``__keys__`` are never compared. Values are plain JSON-like data (dicts, lists, scalars).
    """
    # Ignored paths only ever remove changes, so agreement everywhere means no change at all.
    scoped, other = (after, before) if scope == "after" else (before, after)
    exact_paths = PathSet.parse(exact) if exact else None
    if exact_paths is not None and exact_paths.covers(()):
        pass  # the whole document is owned: walk
    elif _agree(_as_dict(scoped), _as_dict(other), (), exact_paths):
        return ()
    walker = _Walk(
        scope,
        ignore=PathSet.parse(ignore),
        force_new=PathSet.parse(force_new),
        sensitive=PathSet.parse(sensitive),
        exact=PathSet.parse(exact),
    )
    walker.walk((), _as_dict(before), _as_dict(after))
    return tuple(sorted(walker.changes, key=lambda c: c.path))
