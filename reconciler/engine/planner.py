"""``plan()``: desired configs + refreshed live objects + state -> a ``Plan``. Pure: no I/O, no clock.

Per address (SPEC §2):

* desired, not in state, nothing live       -> create
* desired, not in state, a live object      -> conflict (no action; ``arkerctl import`` adopts it)
* desired, in state, live object gone       -> create ("deleted outside arkerctl: will be recreated")
* desired, in state, live object present    -> diff desired vs live: no-op / update / replace
* in state, no longer desired               -> delete (prune)

A replacement is forced by a changed ``force_new`` path, by ``--replace``, or by the replacement (or
re-creation) of an address listed in ``replace_with``; walking addresses in dependency order makes one
pass reach the fixed point. Its order follows ``lifecycle.create_before_destroy``, and, as in Terraform, a
create-before-destroy replacement makes every replaced resource it depends on create-before-destroy too
(otherwise the apply graph would need the dependency both gone and present at once).

Conflicts do not stop the rest of the plan from being computed (dependents of a conflicting address are
planned as if it were fine, so the user sees everything at once), but a plan with conflicts or errors is
not applyable: ``Plan.is_applyable`` is false until the conflict is imported or renamed away.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.state.model import ResourceState, StateDocument
from reconciler.state.share import ValueSharer

from .action import Action
from .dag import CycleError, Graph
from .diff import diff_values, mask_values, project, without_paths
from .fingerprint import compute_fingerprint, live_text
from .model import (
    Change,
    Conflict,
    Drift,
    Lifecycle,
    LiveResource,
    Plan,
    PlanOptions,
    ResourceChange,
    ResourceConfig,
    recorded_lifecycle,
    recorded_sensitive,
    strip_reserved,
)
from .paths import Part, parse_path

__all__ = [
    "REASON_DELETED_OUTSIDE",
    "REASON_GONE",
    "REASON_REPLACE_REQUESTED",
    "PlanMemo",
    "addresses_named",
    "plan",
]


def addresses_named(pattern: str, known: Collection[str]) -> set[str]:
    """What ``--target``/``--replace`` ``pattern`` names among ``known`` addresses: itself or, for a
    replicated resource's address without its replica suffix (``vm.worker``), every replica of it.
    """
    if pattern in known:
        return {pattern}
    replica = re.compile(re.escape(pattern) + r"-[0-9]+")
    return {address for address in known if replica.fullmatch(address)}


REASON_DELETED_OUTSIDE = "deleted outside arkerctl: will be recreated"
REASON_GONE = "already deleted outside arkerctl: will be removed from state"
REASON_REPLACE_REQUESTED = "replacement requested with --replace"
_REASON_PRUNE = "no longer in the manifests"
_REASON_DESTROY = "destroy requested"


def plan(
    desired: Sequence[ResourceConfig],
    live: Mapping[str, LiveResource],
    state: StateDocument | None,
    options: PlanOptions = PlanOptions(),  # noqa: B008 - frozen value, safe as a default
    *,
    memo: PlanMemo | None = None,
) -> Plan:
    """Compute the plan. ``live`` is keyed by address as the provider's refresh resolved it.

    ``memo`` holds per-resource comparisons computed earlier (while the refresh was still reading); one
    is used only when it was computed from these very objects, so the result is the same without it.
    """
    return _Planner(desired, live, state, options, memo).run()


@dataclass(frozen=True)
class _Compared:
    """What one resource's comparison yields from its config, state entry and live view alone."""

    config: ResourceConfig | None
    recorded: ResourceState | None
    found: LiveResource
    desired: _DesiredDiff | None  # config and found: changes and display values
    drift: tuple[Change, ...] | None  # recorded and found
    text: str  # found's part of the plan's fingerprint
    kept: ResourceChange | None = None  # the change when nothing forces a replacement (desired only)


@dataclass(frozen=True)
class _DesiredDiff:
    changes: tuple[Change, ...]
    before: dict[str, Any] | None  # masked
    after: dict[str, Any] | None  # masked; when the object is kept (not replaced)


@dataclass(frozen=True)
class _Structure:
    """What the desired configs alone determine: their map, their errors, their graph and its order."""

    source: Sequence[ResourceConfig]  # the very sequence it was built from
    configs: dict[str, ResourceConfig]
    errors: tuple[str, ...]
    graph: Graph[str]  # not changed once built
    order: tuple[str, ...]


def _structure(desired: Sequence[ResourceConfig]) -> _Structure:
    errors: list[str] = []
    configs: dict[str, ResourceConfig] = {}
    for config in desired:
        if config.address in configs:
            errors.append(f"{config.address}: declared more than once")
        configs[config.address] = config
    graph: Graph[str] = Graph(configs)
    for address, config in sorted(configs.items()):
        for dep in config.dependencies:
            if dep == address:
                errors.append(f"{address}: depends on itself")
            elif dep not in configs:
                errors.append(f"{address}: depends on {dep}, which is not declared")
            else:
                graph.add_edge(address, dep)
    try:
        order = graph.topological_order()
    except CycleError as err:
        errors.append(str(err))
        order = graph.nodes
    return _Structure(desired, configs, tuple(errors), graph, order)


class PlanMemo:
    """Work done ahead of ``plan()``: :meth:`prepare` the desired configs' graph, and feed each live view
    to :meth:`add` as it arrives (the refresh is waiting on the network meanwhile); then pass the memo to
    ``plan`` with the same configs."""

    def __init__(self) -> None:
        self._entries: dict[str, _Compared] = {}
        self._structure: _Structure | None = None

    def prepare(self, desired: Sequence[ResourceConfig]) -> None:
        """Build what ``desired`` alone determines; ``plan`` uses it when given this very sequence."""
        self._structure = _structure(desired)

    def _structure_of(self, desired: Sequence[ResourceConfig]) -> _Structure | None:
        known = self._structure
        return known if known is not None and known.source is desired else None

    def add(self, config: ResourceConfig | None, recorded: ResourceState | None, found: LiveResource) -> None:
        desired = _desired_diff(config, found) if config is not None and recorded is not None else None
        drift = _drift_changes(config, recorded, found) if recorded is not None else None
        kept = None
        if (
            config is not None
            and desired is not None
            and not any(c.forces_replacement for c in desired.changes)
        ):
            # What the plan records for this address unless a dependency's replacement cascades to it.
            kept = _Pending(
                address=config.address,
                kind=config.kind,
                name=config.name,
                action=Action.UPDATE if desired.changes else Action.NOOP,
                changes=desired.changes,
                before=desired.before,
                after=desired.after,
                live_id=found.id,
            ).freeze()
        self._entries[found.address] = _Compared(
            config, recorded, found, desired, drift, live_text(found), kept
        )

    def _lookup(
        self, address: str, config: ResourceConfig | None, recorded: ResourceState | None, found: LiveResource
    ) -> _Compared | None:
        entry = self._entries.get(address)
        if entry is None or entry.found is not found or entry.config is not config:
            return None
        return entry if entry.recorded is recorded else None

    def _texts(self, live: Mapping[str, LiveResource]) -> dict[str, str]:
        """Fingerprint texts of the objects in ``live`` that the memo saw (the very same objects)."""
        return {a: e.text for a, e in self._entries.items() if live.get(a) is e.found}

    def __len__(self) -> int:
        return len(self._entries)


def _desired_diff(config: ResourceConfig, found: LiveResource) -> _DesiredDiff:
    lifecycle = config.lifecycle
    changes = diff_values(
        found.values,
        config.values,
        ignore=lifecycle.ignore_changes,
        force_new=config.force_new,
        sensitive=config.sensitive,
        exact=config.exact,
    )
    # ignore_changes paths are not written: after an update they keep their live value.
    after = _keep_paths(config.values, found.values, lifecycle.ignore_changes)
    before = project(found.values, config.values, exact=config.exact)
    return _DesiredDiff(
        changes=changes,
        before=mask_values(before, config.sensitive),
        after=mask_values(after, config.sensitive),
    )


def _lifecycle_of(config: ResourceConfig | None, recorded: ResourceState | None) -> Lifecycle:
    if config is not None:
        return config.lifecycle
    return recorded_lifecycle(recorded.values) if recorded is not None else Lifecycle()


def _sensitive_of(config: ResourceConfig | None, recorded: ResourceState | None) -> frozenset[str]:
    paths = config.sensitive if config is not None else frozenset()
    return paths | (recorded_sensitive(recorded.values) if recorded is not None else frozenset())


def _drift_changes(
    config: ResourceConfig | None, recorded: ResourceState, found: LiveResource
) -> tuple[Change, ...]:
    return diff_values(
        recorded.values,  # its reserved bookkeeping keys are never compared
        found.values,
        scope="before",
        ignore=_lifecycle_of(config, recorded).ignore_changes,
        sensitive=_sensitive_of(config, recorded),
        exact=config.exact if config is not None else (),
    )


@dataclass
class _Pending:
    address: str
    kind: str
    name: str
    action: Action
    reasons: list[str] = field(default_factory=list)
    changes: tuple[Change, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    live_id: str | None = None
    replace_paths: tuple[str, ...] = ()
    frozen: ResourceChange | None = None  # built ahead (PlanMemo) for exactly these values

    def freeze(self) -> ResourceChange:
        if self.frozen is not None and self.frozen.action is self.action and not self.reasons:
            return self.frozen
        return ResourceChange(
            address=self.address,
            kind=self.kind,
            name=self.name,
            action=self.action,
            reason="; ".join(self.reasons) or None,
            changes=self.changes,
            before=self.before,
            after=self.after,
            live_id=self.live_id,
            replace_paths=self.replace_paths,
        )


class _Planner:
    def __init__(
        self,
        desired: Sequence[ResourceConfig],
        live: Mapping[str, LiveResource],
        state: StateDocument | None,
        options: PlanOptions,
        memo: PlanMemo | None = None,
    ) -> None:
        self.memo = memo
        self.live = live
        self.state = state
        self.options = options
        structure = (memo._structure_of(desired) if memo is not None else None) or _structure(desired)
        self.configs = structure.configs
        self.errors: list[str] = list(structure.errors)
        self.desired_graph = structure.graph
        self.order = structure.order
        self.recorded: dict[str, ResourceState] = dict(state.resources) if state is not None else {}
        self.pending: dict[str, _Pending] = {}
        self.conflicts: list[Conflict] = []

    # -- graphs ---------------------------------------------------------------------------------------
    # desired (``_structure``): edges of the manifests, needed by every plan. The recorded and union
    # graphs are built on first use: only targeting, destroy and create_before_destroy ask for them.

    def _recorded_edges(self) -> Iterator[tuple[str, str]]:
        for address, resource in self.recorded.items():
            for dep in resource.dependencies:
                if dep in self.recorded and dep != address:
                    yield address, dep

    @functools.cached_property
    def recorded_graph(self) -> Graph[str]:
        """Edges as last applied."""
        graph: Graph[str] = Graph(self.recorded)
        for address, dep in self._recorded_edges():
            graph.add_edge(address, dep)
        return graph

    @functools.cached_property
    def union_graph(self) -> Graph[str]:
        """Desired and recorded edges together: what an old-or-new object relates to (destroy targeting,
        create_before_destroy inheritance)."""
        graph: Graph[str] = Graph([*self.configs, *self.recorded])
        for address, dep in (*self.desired_graph.edges, *self._recorded_edges()):
            graph.add_edge(address, dep)
        return graph

    # -- options --------------------------------------------------------------------------------------

    def _resolve(self, flag: str, patterns: Iterable[str]) -> set[str]:
        """Exact addresses; an address without a replica suffix also names all of its replicas."""
        known = set(self.configs) | set(self.recorded)
        found: set[str] = set()
        for pattern in patterns:
            matches = addresses_named(pattern, known)
            if not matches:
                self.errors.append(f"{flag} {pattern}: no such resource address")
            found |= matches
        return found

    def _scope(self) -> set[str]:
        opts = self.options
        if opts.destroy:
            universe = set(self.recorded)
            if not opts.targets:
                return universe
            # Destroying a target takes what depends on it down first, as in Terraform.
            scope: set[str] = set()
            for target in self._resolve("--target", opts.targets):
                scope |= {target} | self.union_graph.descendants(target)
            return scope & universe
        if not opts.targets:
            return set(self.configs) | set(self.recorded)
        scope = set()
        for target in self._resolve("--target", opts.targets):
            scope.add(target)
            if target in self.configs:
                scope |= self.desired_graph.ancestors(target)
            else:
                # A targeted prune also prunes what (as last applied) depended on it and is gone too.
                scope |= {a for a in self.recorded_graph.descendants(target) if a not in self.configs}
        return scope

    # -- run ------------------------------------------------------------------------------------------

    def run(self) -> Plan:
        opts = self.options
        if opts.destroy and opts.refresh_only:
            self.errors.append("--destroy and --refresh-only cannot be combined")
        if opts.replace and (opts.destroy or opts.refresh_only):
            self.errors.append("--replace cannot be combined with --destroy or --refresh-only")
        scope = self._scope()
        replace = self._resolve("--replace", opts.replace) if opts.replace else set()
        for address in sorted(replace - scope):
            if not (opts.destroy or opts.refresh_only):
                self.errors.append(f"--replace {address}: outside the --target scope")

        if opts.destroy:
            for address in sorted(scope):
                self._delete(address, _REASON_DESTROY)
        elif not opts.refresh_only:
            for address in self.order:
                if address in scope:
                    self._desired(address, address in replace)
            for address in sorted(scope - set(self.configs)):
                self._delete(address, _REASON_PRUNE)
            self._inherit_create_before_destroy()
        self._check_prevent_destroy()

        resource_changes = tuple(self.pending[a].freeze() for a in sorted(self.pending))
        # One set of set-field names for all (a plan of 20,000 resources held 20,000 equal sets).
        ValueSharer().share_models(resource_changes)
        return Plan(
            resource_changes=resource_changes,
            drift=self._drift(scope),
            conflicts=tuple(sorted(self.conflicts, key=lambda c: c.address)),
            state_lineage=self.state.lineage if self.state is not None else None,
            state_serial=self.state.serial if self.state is not None else None,
            options=opts,
            errors=tuple(self.errors),
            scope=tuple(sorted(scope)),
            fingerprint=compute_fingerprint(
                self.state, self.live, scope, known=self.memo._texts(self.live) if self.memo else None
            ),
        )

    def _desired(self, address: str, replace_requested: bool) -> None:
        config = self.configs[address]
        recorded = self.recorded.get(address)
        found = self.live.get(address)
        if recorded is None:
            if found is not None:
                self.conflicts.append(
                    Conflict(
                        address=address,
                        kind=config.kind,
                        name=config.name,
                        live_id=found.id,
                        message=(
                            f"a {config.kind} named {config.name!r} already exists (id {found.id}) but "
                            "the state does not record it; arkerctl never adopts objects silently: run "
                            f"`arkerctl import {address} {found.id}` to manage it, or choose another name"
                        ),
                    )
                )
                return
            self._create(config, None)
            return
        if found is None:
            self._create(config, REASON_DELETED_OUTSIDE)
            return
        if found.id != recorded.id:
            self.errors.append(
                f"{address}: the refreshed object has id {found.id} but the state records {recorded.id}"
            )
        lifecycle = config.lifecycle
        known = self.memo._lookup(address, config, recorded, found) if self.memo is not None else None
        compared = known.desired if known is not None and known.desired is not None else None
        if compared is None:
            compared = _desired_diff(config, found)
        changes = compared.changes
        reasons: list[str] = []
        forced = tuple(c.path for c in changes if c.forces_replacement)
        if forced:
            reasons.append(f"{', '.join(forced)} {'forces' if len(forced) == 1 else 'force'} replacement")
        if replace_requested:
            reasons.append(REASON_REPLACE_REQUESTED)
        for cause in config.replace_with:
            upstream = self.pending.get(cause)
            if upstream is not None and upstream.action.creates:
                verb = "replaced" if upstream.action.is_replace else "recreated"
                reasons.append(f"replaced because {cause} is {verb}")
        if reasons:
            action = Action.CREATE_DELETE if lifecycle.create_before_destroy else Action.DELETE_CREATE
            after = mask_values(config.values, config.sensitive)  # a new object gets the whole config
        else:
            action = Action.UPDATE if changes else Action.NOOP
            after = compared.after
        self.pending[address] = _Pending(
            address=address,
            kind=config.kind,
            name=config.name,
            action=action,
            reasons=reasons,
            changes=changes,
            before=compared.before,
            after=after,
            live_id=found.id,
            replace_paths=forced,
            frozen=known.kept if known is not None else None,  # used by freeze() only if it still fits
        )

    def _create(self, config: ResourceConfig, reason: str | None) -> None:
        # ignore_changes does not apply to creation: a new object gets the whole config.
        changes = diff_values({}, config.values, sensitive=config.sensitive)
        self.pending[config.address] = _Pending(
            address=config.address,
            kind=config.kind,
            name=config.name,
            action=Action.CREATE,
            reasons=[reason] if reason else [],
            changes=changes,
            after=mask_values(config.values, config.sensitive),
        )

    def _delete(self, address: str, reason: str) -> None:
        recorded = self.recorded[address]
        found = self.live.get(address)
        sensitive = self._sensitive(address)
        last = strip_reserved(recorded.values)
        before = project(found.values, last) if found is not None else last
        self.pending[address] = _Pending(
            address=address,
            kind=recorded.kind,
            name=recorded.name,
            action=Action.DELETE,
            reasons=[reason if found is not None else REASON_GONE],
            changes=diff_values(before, {}, scope="before", sensitive=sensitive),
            before=mask_values(before, sensitive),
            live_id=found.id if found is not None else None,
        )

    # -- cross-resource rules -------------------------------------------------------------------------

    def _inherit_create_before_destroy(self) -> None:
        # Ancestors are transitive, so one pass over the replacements that are create-before-destroy by
        # their own lifecycle reaches every replacement that must follow suit.
        for address in sorted(self.pending):
            if self.pending[address].action is not Action.CREATE_DELETE:
                continue
            for ancestor in sorted(self.union_graph.ancestors(address)):
                upstream = self.pending.get(ancestor)
                if upstream is not None and upstream.action is Action.DELETE_CREATE:
                    upstream.action = Action.CREATE_DELETE
                    upstream.reasons.append(f"create_before_destroy inherited from {address}")

    def _lifecycle(self, address: str) -> Lifecycle:
        return _lifecycle_of(self.configs.get(address), self.recorded.get(address))

    def _sensitive(self, address: str) -> frozenset[str]:
        return _sensitive_of(self.configs.get(address), self.recorded.get(address))

    def _check_prevent_destroy(self) -> None:
        for address in sorted(self.pending):
            pending = self.pending[address]
            # Nothing to protect when the object is already gone.
            if not pending.action.deletes or pending.live_id is None:
                continue
            if self._lifecycle(address).prevent_destroy:
                verb = "replace" if pending.action.is_replace else "destroy"
                why = f" ({'; '.join(pending.reasons)})" if pending.reasons else ""
                self.errors.append(
                    f"{address}: lifecycle.prevent_destroy is set, but this plan would {verb} it{why}"
                )

    def _drift(self, scope: set[str]) -> tuple[Drift, ...]:
        drift: list[Drift] = []
        for address in sorted(scope & set(self.recorded)):
            recorded = self.recorded[address]
            found = self.live.get(address)
            if found is None:
                drift.append(Drift(address=address, deleted=True))
                continue
            config = self.configs.get(address)
            known = self.memo._lookup(address, config, recorded, found) if self.memo is not None else None
            if known is not None and known.drift is not None:
                changes = known.drift
            else:
                changes = _drift_changes(config, recorded, found)
            if changes:
                drift.append(Drift(address=address, changes=changes))
        return tuple(drift)


def _keep_paths(
    desired: Mapping[str, Any], current: Mapping[str, Any], paths: Iterable[str]
) -> dict[str, Any]:
    """``desired`` with each of ``paths`` taken from ``current`` instead (dropped where it has none)."""
    result = without_paths(desired, paths)
    for text in paths:
        parts = parse_path(text)
        found, value = _lookup(current, parts)
        if found:
            _assign(result, parts, value)
    return result


def _lookup(values: Mapping[str, Any], parts: tuple[Part, ...]) -> tuple[bool, Any]:
    node: Any = values
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _assign(values: dict[str, Any], parts: tuple[Part, ...], value: Any) -> None:
    node = values
    for part in parts[:-1]:
        child = node.get(str(part))
        child = dict(child) if isinstance(child, Mapping) else {}
        node[str(part)] = child
        node = child
    node[str(parts[-1])] = value
