"""The engine's provider-neutral values: what is wanted, what exists, and the plan between them.

Providers translate manifests into ``ResourceConfig`` and API objects into ``LiveResource``; both carry
*comparable values*: JSON-like dicts in a canonical form (lists sorted where order does not matter,
sensitive leaves already reduced to ``sha256:<hex>`` digests). The planner only ever compares those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from reconciler.state.model import StateDocument, config_hash

from .action import Action
from .fingerprint import compute_fingerprint
from .paths import PathError, parse_path

__all__ = [
    "LIFECYCLE_KEY",
    "RESERVED_KEYS",
    "SENSITIVE_KEY",
    "Change",
    "Conflict",
    "Drift",
    "Lifecycle",
    "LiveResource",
    "Plan",
    "PlanOptions",
    "PlanSummary",
    "ResourceChange",
    "ResourceConfig",
    "is_reserved_key",
    "recorded_lifecycle",
    "recorded_sensitive",
    "state_values",
    "strip_reserved",
]

# Reserved top-level keys of ``ResourceState.values``: bookkeeping the planner needs after a manifest is
# gone (a removed manifest must still honour its ``prevent_destroy``, and drift must still mask its
# secrets). They are never compared, diffed or shown. Any ``__dunder__`` key is reserved.
LIFECYCLE_KEY = "__lifecycle__"
SENSITIVE_KEY = "__sensitive__"
RESERVED_KEYS = frozenset({LIFECYCLE_KEY, SENSITIVE_KEY})

MASK = "(sensitive)"

_VALUE = ConfigDict(frozen=True, extra="forbid")


def is_reserved_key(key: str) -> bool:
    return len(key) > 4 and key.startswith("__") and key.endswith("__")


def strip_reserved(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the reserved bookkeeping keys."""
    return {k: v for k, v in values.items() if not is_reserved_key(k)}


# Keys of values derived from fields, cached in a config's ``__dict__`` (pydantic refuses field names with
# a leading underscore, so they cannot collide; equality and dumps look at fields only).
_HASH_CACHE = "_config_hash_cache"
_DEPENDENCIES_CACHE = "_dependencies_cache"


def _check_paths(paths: Iterable[str]) -> None:
    for path in paths:
        try:
            parse_path(path)
        except PathError as err:
            raise ValueError(f"invalid field path {path!r}: {err}") from err


class Lifecycle(BaseModel):
    """The manifest's ``lifecycle`` block."""

    model_config = _VALUE

    prevent_destroy: bool = False
    create_before_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()  # field paths (see paths.py); a path covers everything below it

    @field_validator("ignore_changes")
    @classmethod
    def _valid_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_paths(value)
        return tuple(sorted(set(value)))


class ResourceConfig(BaseModel):
    """What a provider wants to exist at one address."""

    model_config = _VALUE

    address: str
    kind: str
    name: str
    provider: str = "arker"
    # Comparable values: only the fields the user manages are present.
    values: dict[str, Any] = Field(default_factory=dict)
    # Paths whose change forces replacement (a path covers everything below it).
    force_new: frozenset[str] = frozenset()
    # Paths shown as "(sensitive)" in every output.
    sensitive: frozenset[str] = frozenset()
    # Mapping paths the user owns whole: a key the live value has but the desired one lacks is a
    # difference (a removal). Elsewhere keys absent from ``values`` are unmanaged and never compared.
    # Needed for keyed collections such as policy rules by id, where dropping an entry must be seen.
    exact: frozenset[str] = frozenset()
    depends_on: tuple[str, ...] = ()
    # Addresses whose replacement forces this one's replacement too (a binding whose VM is replaced).
    replace_with: tuple[str, ...] = ()
    lifecycle: Lifecycle = Lifecycle()

    @field_validator("force_new", "sensitive", "exact")
    @classmethod
    def _valid_path_set(cls, value: frozenset[str]) -> frozenset[str]:
        _check_paths(value)
        return value

    @field_validator("values")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = sorted(k for k in value if is_reserved_key(k))
        if reserved:
            raise ValueError(f"reserved keys are not allowed in values: {', '.join(reserved)}")
        return value

    @field_validator("depends_on", "replace_with")
    @classmethod
    def _sorted_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))

    @field_serializer("force_new", "sensitive", "exact")
    def _sorted_paths(self, value: frozenset[str]) -> list[str]:
        # frozenset iteration order varies between processes: serialise sorted so planfiles are stable.
        return sorted(value)

    @property
    def config_hash(self) -> str:
        # Computed once per values object (apply asks at the intent, the idempotency key and the record).
        # Kept in ``__dict__`` beside the fields, as pydantic keeps a cached_property: equality and dumps
        # ignore it, and a copy with other values recomputes because the cache names its values object.
        cached = self.__dict__.get(_HASH_CACHE)
        values = self.values
        if cached is None or cached[0] is not values:
            cached = (values, config_hash(values))
            self.__dict__[_HASH_CACHE] = cached
        return cast(str, cached[1])

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Every address this one must come after: ``depends_on`` and ``replace_with`` together.

        This is also what ``ResourceState.dependencies`` should record when the resource is applied.
        """
        cached = self.__dict__.get(_DEPENDENCIES_CACHE)
        sources = (self.depends_on, self.replace_with)
        if cached is None or cached[0] != sources:
            cached = (sources, tuple(sorted(set(self.depends_on) | set(self.replace_with))))
            self.__dict__[_DEPENDENCIES_CACHE] = cached
        return cast(tuple[str, ...], cached[1])


def state_values(config: ResourceConfig) -> dict[str, Any]:
    """What to store as ``ResourceState.values`` after applying ``config``: its values plus bookkeeping."""
    values = dict(config.values)
    values[LIFECYCLE_KEY] = config.lifecycle.model_dump(mode="json")
    values[SENSITIVE_KEY] = sorted(config.sensitive)
    return dict(sorted(values.items()))


def recorded_lifecycle(values: Mapping[str, Any]) -> Lifecycle:
    """The lifecycle stored in state values (the default one when none, or an unreadable one, is stored)."""
    raw = values.get(LIFECYCLE_KEY)
    if isinstance(raw, Mapping):
        try:
            return Lifecycle.model_validate(dict(raw))
        except ValueError:
            pass
    return Lifecycle()


def recorded_sensitive(values: Mapping[str, Any]) -> frozenset[str]:
    raw = values.get(SENSITIVE_KEY)
    if isinstance(raw, list | tuple):
        return frozenset(str(p) for p in raw)
    return frozenset()


class LiveResource(BaseModel):
    """A platform object as the provider's refresh found it, in comparable form (all fields)."""

    model_config = _VALUE

    address: str
    kind: str
    name: str
    id: str
    values: dict[str, Any] = Field(default_factory=dict)


class Change(BaseModel):
    """One field that differs. Sensitive values are already masked as ``"(sensitive)"`` here."""

    model_config = _VALUE

    path: str
    before: Any = None
    after: Any = None
    forces_replacement: bool = False
    sensitive: bool = False


class ResourceChange(BaseModel):
    """The plan for one address. ``before``/``after`` are masked display values, not apply input."""

    model_config = _VALUE

    address: str
    kind: str
    name: str
    action: Action
    reason: str | None = None
    changes: tuple[Change, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    live_id: str | None = None  # the existing object's id (None when there is none to touch)
    replace_paths: tuple[str, ...] = ()  # the changed paths that force the replacement


class Drift(BaseModel):
    """Live vs last applied: ``before`` is what arkerctl applied, ``after`` what exists now."""

    model_config = _VALUE

    address: str
    changes: tuple[Change, ...] = ()
    deleted: bool = False  # the object was deleted outside arkerctl


class Conflict(BaseModel):
    """A live object with the desired name that the state does not record: never adopted silently."""

    model_config = _VALUE

    address: str
    kind: str
    name: str
    live_id: str
    message: str


class PlanOptions(BaseModel):
    model_config = _VALUE

    destroy: bool = False
    refresh_only: bool = False
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()

    @field_validator("targets", "replace")
    @classmethod
    def _sorted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))


class PlanSummary(BaseModel):
    """SPEC §4 counts. A replacement counts once, as ``replace`` (not as an add plus a destroy)."""

    model_config = _VALUE

    add: int = 0
    change: int = 0
    replace: int = 0
    destroy: int = 0


class Plan(BaseModel):
    """The outcome of ``plan()``: pure data, JSON round-trippable (``model_validate_json``) for planfiles."""

    model_config = _VALUE

    resource_changes: tuple[ResourceChange, ...] = ()  # sorted by address, no-ops included
    drift: tuple[Drift, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    state_lineage: str | None = None
    state_serial: int | None = None
    options: PlanOptions = PlanOptions()
    errors: tuple[str, ...] = ()
    # Every address the plan looked at (after --target): the set the fingerprint covers.
    scope: tuple[str, ...] = ()
    fingerprint: str = ""

    @property
    def summary(self) -> PlanSummary:
        counts = {"add": 0, "change": 0, "replace": 0, "destroy": 0}
        for rc in self.resource_changes:
            if rc.action is Action.CREATE:
                counts["add"] += 1
            elif rc.action is Action.UPDATE:
                counts["change"] += 1
            elif rc.action.is_replace:
                counts["replace"] += 1
            elif rc.action is Action.DELETE:
                counts["destroy"] += 1
        return PlanSummary(**counts)

    @property
    def has_changes(self) -> bool:
        """Anything to apply; for a refresh-only plan, any drift to record."""
        if self.options.refresh_only:
            return bool(self.drift)
        return any(rc.action is not Action.NOOP for rc in self.resource_changes)

    @property
    def is_applyable(self) -> bool:
        """Errors or unresolved conflicts (which need ``arkerctl import``) block apply."""
        return not self.errors and not self.conflicts

    def change_for(self, address: str) -> ResourceChange | None:
        for rc in self.resource_changes:
            if rc.address == address:
                return rc
        return None

    def is_current(self, state: StateDocument | None, live: Mapping[str, LiveResource]) -> bool:
        """True when ``state`` and a fresh refresh ``live`` are what this plan was computed from."""
        return compute_fingerprint(state, live, self.scope) == self.fingerprint
