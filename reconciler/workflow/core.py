"""The commands' core, provider-neutral: load, refresh, plan, apply, import. The CLI only parses and prints.

Side effects live here and in the providers; ``engine.plan`` stays pure. Each platform's provider is found
through ``providers/registry.py`` by the ``provider`` name its resources carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.engine import (
    Action,
    ExecutionEvent,
    ExecutionReport,
    LiveResource,
    Operation,
    Plan,
    PlanMemo,
    PlanOptions,
    ResourceConfig,
    RetryPolicy,
    build_operation_graph,
    execute,
    plan,
)
from reconciler.manifest import DesiredState, load_stack
from reconciler.providers.base import PENDING_KEY, Provider, intent_entry, is_pending
from reconciler.providers.registry import open_providers
from reconciler.state import (
    Lock,
    LockRequest,
    StateBackend,
    StateDocument,
    open_backend,
)
from reconciler.state.model import config_hash

from .recorder import Deferred, StateRecorder
from .settings import RunSettings

__all__ = [
    "ApplyResult",
    "Planned",
    "WorkflowError",
    "Workspace",
    "apply_planned",
    "configs_digest",
    "connected",
    "import_resource",
    "make_plan",
    "open_workspace",
    "refresh_and_plan",
    "resolve_pending",
    "save_settled",
]

_log = logging.getLogger(__name__)

OpReport = ExecutionReport[Operation, None]


# The client retries each request; an operation that still ends in a transient error (a run of 503s, a lost
# connection) is run again whole. Every operation is safe to re-run: forks carry idempotency keys, other
# creates look their object up first, PATCHes are absolute and deletes accept "already gone".
def _operation_retry(attempts: int) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, initial_backoff=1.0, multiplier=2.0, max_backoff=8.0)


OpEvent = ExecutionEvent[Operation, None]


class WorkflowError(Exception):
    """A user-facing failure of a command (bad address, refused saved plan, ...): printed, exit 1."""


@dataclass(frozen=True)
class Workspace:
    """One stack's manifests and state backend."""

    settings: RunSettings
    desired: DesiredState
    backend: StateBackend

    def lock(self, operation: str) -> Lock:
        request = LockRequest(
            operation=operation, stack=self.desired.stack.name, who=self.settings.lock_holder
        )
        return self.backend.lock(request, timeout=self.settings.lock_timeout)


def open_workspace(settings: RunSettings) -> Workspace:
    """Load and validate the manifests (``ManifestError`` on any problem) and open the state backend."""
    desired = load_stack(list(settings.paths), variables=dict(settings.variables), environ=settings.environ)
    backend = open_backend(desired.stack.state, root=desired.stack.root, stack=desired.stack.name)
    return Workspace(settings=settings, desired=desired, backend=backend)


@contextlib.asynccontextmanager
async def connected(
    ws: Workspace, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[list[Provider]]:
    """The providers for the workspace's resources, with open API clients: only the platforms that the
    manifests or the state use (the state counts: its resources may have lost their manifests)."""
    state = ws.backend.read()
    used = {entry.provider for entry in state.resources.values()} if state is not None else set()
    del state  # this generator frame lives for the whole run: do not keep the document alive
    async with open_providers(ws.desired, ws.settings, environ=environ, state_platforms=used) as providers:
        yield providers


def configs_digest(configs: Sequence[ResourceConfig]) -> str:
    """One hash over every desired config (a saved plan is refused when the manifests changed)."""
    return config_hash({c.address: c.model_dump(mode="json") for c in configs})


def resolve_pending(state: StateDocument | None, live: Mapping[str, LiveResource]) -> StateDocument | None:
    """Settle creates a crashed or interrupted run left unconfirmed: an object found live (by the handle the
    provider recorded) is adopted with its id; one not found was never created and is dropped."""
    if state is None:
        return None
    resolved = state
    for address, entry in state.resources.items():
        if not is_pending(entry):
            continue
        found = live.get(address)
        if found is None:
            resolved = resolved.without(address)
        else:
            values = {k: v for k, v in entry.values.items() if k != PENDING_KEY}
            resolved = resolved.with_resource(entry.model_copy(update={"id": found.id, "values": values}))
    return resolved


@dataclass(frozen=True)
class Planned:
    """A plan with what it was computed from (apply needs the configs and the live view)."""

    plan: Plan
    configs: tuple[ResourceConfig, ...]
    live: Mapping[str, LiveResource]
    state: StateDocument | None  # pending entries resolved
    stored_state: StateDocument | None  # as read from the backend

    @property
    def digest(self) -> str:
        return configs_digest(self.configs)


_FIRST_REQUESTS_LEAVE = 0.01  # seconds: enough for a loopback or LAN connect and a first write


async def make_plan(
    ws: Workspace, providers: Sequence[Provider], options: PlanOptions, *, state: StateDocument | None = None
) -> Planned:
    # The reads that need no state (lists) leave first and travel while the state is read (in a worker
    # thread: decoding a large state takes about as long as a round trip). Meanwhile the connections the
    # per-object reads will use are opened, rather than all at once when those reads start.
    for p in providers:
        p.warm(min(ws.settings.parallelism, len(p.configs())))
    prefetched = [p.prefetch() for p in providers]
    try:
        stored = await asyncio.to_thread(ws.backend.read) if state is None else state
    except BaseException:
        for handle in prefetched:
            if handle is not None:
                handle.cancel()
        raise
    configs = tuple(sorted((c for p in providers for c in p.configs()), key=lambda c: c.address))
    by_address = {c.address: c for c in configs}
    recorded = stored.resources if stored is not None else {}
    # Each live view is compared as it arrives, while the refresh still waits on the network: the plan
    # then only assembles (it recomputes anything the memo did not see, so the result is the same).
    memo = PlanMemo()

    def compare(found: LiveResource) -> None:
        memo.add(by_address.get(found.address), recorded.get(found.address), found)

    live: dict[str, LiveResource] = {}
    refreshing = asyncio.gather(
        *(
            p.refresh(stored, on_live=compare, prefetched=h)
            for p, h in zip(providers, prefetched, strict=True)
        )
    )
    # The desired graph is built while the refresh's first reads wait on the network rather than after
    # the last read: once they have had the moment they need to connect and leave.
    try:
        await asyncio.wait((refreshing,), timeout=_FIRST_REQUESTS_LEAVE)
    except BaseException:
        refreshing.cancel()  # ``wait`` does not cancel what it waits for
        raise
    memo.prepare(configs)
    for one in await refreshing:
        live.update(one)
    resolved = resolve_pending(stored, live)
    result = plan(configs, live, resolved, options, memo=memo)
    _log.debug(
        "plan: %d desired, %d live, %d in state -> %s",
        len(configs),
        len(live),
        len(stored.resources) if stored is not None else 0,
        result.summary.model_dump(),
    )
    return Planned(
        plan=result, configs=configs, live=dict(sorted(live.items())), state=resolved, stored_state=stored
    )


async def refresh_and_plan(ws: Workspace, options: PlanOptions) -> Planned:
    """Connect to the platforms the stack uses, refresh and plan (``plan`` and ``drift``)."""
    async with connected(ws) as providers:
        return await make_plan(ws, providers, options)


# ── apply ───────────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    report: OpReport
    state: StateDocument
    state_writes: int

    @property
    def ok(self) -> bool:
        return self.report.ok and not self.report.stopped


async def apply_planned(
    ws: Workspace,
    providers: Sequence[Provider],
    planned: Planned,
    *,
    stop: asyncio.Event | None = None,
    on_event: Callable[[OpEvent], None] | None = None,
) -> ApplyResult:
    """Carry out ``planned`` (the caller holds the lock). State is written after every operation."""
    the_plan = planned.plan
    if not the_plan.is_applyable:
        raise WorkflowError("the plan has conflicts or errors and cannot be applied")
    by_provider = {p.name: p for p in providers}
    configs = {c.address: c for c in planned.configs}
    base = planned.state
    stored = planned.stored_state is not None
    doc = base if base is not None else StateDocument(stack=ws.desired.stack.name)
    recorder = StateRecorder(ws.backend, doc, stored=stored)
    if planned.stored_state is None or base != planned.stored_state:
        # Persist what refresh settled (pending entries) and create the state document on a first apply;
        # the first write below carries it (``flush`` there when nothing else is written).
        recorder.replace_document(doc)

    if the_plan.options.refresh_only:
        await recorder.flush()
        await _record_refresh(recorder, planned)
        empty: OpReport = ExecutionReport(outcomes={})
        return ApplyResult(the_plan, empty, recorder.document, recorder.writes)

    changes = {rc.address: rc for rc in the_plan.resource_changes}
    graph = build_operation_graph(the_plan, planned.configs, base)

    def provider_for(address: str) -> Provider:
        config = configs.get(address)
        entry = recorder.current(address) or (base.resources.get(address) if base is not None else None)
        name = config.provider if config is not None else entry.provider if entry is not None else ""
        try:
            return by_provider[name]
        except KeyError:
            raise WorkflowError(f"{address}: no provider {name!r} is configured") from None

    # Connections for the operations that will run at once, opened while the first ones are under way
    # (the first wave of a fleet would otherwise open them all together, on its critical path).
    operations: Counter[str] = Counter()
    for op in graph:
        with contextlib.suppress(WorkflowError):  # no such provider: that operation fails when it runs
            operations[provider_for(op.address).name] += 1
    for name, count in sorted(operations.items()):
        by_provider[name].warm(min(ws.settings.parallelism, count))

    async def perform(op: Operation) -> None:
        rc = changes[op.address]
        provider = provider_for(op.address)
        if op.step == "delete":
            entry = recorder.current(op.address)
            if entry is None:
                return
            if rc.live_id is None and rc.action is Action.DELETE:
                await recorder.forget(op.address)  # already gone outside arkerctl
                return
            await provider.delete(entry, recorder)
            return
        config = configs[op.address]
        if op.step == "create":
            old = base.resources.get(op.address) if base is not None else None
            replacing = (
                rc.live_id if rc.action.is_replace else (old.id if old is not None and old.id else None)
            )
            await provider.create(config, recorder, replacing=replacing)
            return
        entry = recorder.current(op.address)
        if entry is None:  # pragma: no cover - the planner only updates recorded objects
            raise WorkflowError(f"{op.address} is not in state")
        await provider.update(config, entry, planned.live.get(op.address), recorder)

    in_flight: dict[Operation, Deferred] = {}

    async def run(op: Operation) -> None:
        if later_intents is not None and op.step == "create" and op.address in later_addresses:
            await asyncio.shield(later_intents)  # its intent must be durable before its request
        with recorder.deferring() as deferred:
            try:
                await perform(op)
            except Exception:
                await deferred.wait()  # what the operation did record must land (a failed write wins)
                raise
        in_flight[op] = deferred

    async def settle(op: Operation, _: None) -> None:
        # Outside the parallelism slot: the next operation starts while this one's record is written.
        await in_flight.pop(op).wait()

    # Every plain create's intent is durable before its request, in two writes rather than one per create:
    # first those of the creates that can start at once (a small write), then the rest in the background
    # while those run; a create of the second kind waits for it in ``run``. One write of every intent up
    # front held the first request back for tens of milliseconds on a large apply.
    creates = [
        configs[rc.address]
        for rc in the_plan.resource_changes
        if rc.action is Action.CREATE and recorder.current(rc.address) is None and rc.address in configs
    ]
    startable = {op.address for op in graph if op.step == "create" and not graph.dependencies(op)}
    later_addresses = {config.address for config in creates if config.address not in startable}
    await recorder.record_many([intent_entry(config) for config in creates if config.address in startable])
    await recorder.flush()  # the replaced document, when no startable intent was written with it
    later_intents: asyncio.Future[None] | None = None
    if later_addresses:

        async def record_later() -> None:
            await asyncio.sleep(0)  # the startable operations send their requests first
            later = [config for config in creates if config.address in later_addresses]
            await recorder.record_many([intent_entry(config) for config in later])

        later_intents = asyncio.ensure_future(record_later())

    try:
        report: OpReport = await execute(
            graph,
            run,
            parallelism=ws.settings.parallelism,
            stop=stop,
            on_event=on_event,
            retry=_operation_retry(ws.settings.operation_attempts),
            settle=settle,
        )
    finally:
        if later_intents is not None:
            # Settled before the intents of never-started creates are dropped below. A failed write already
            # failed the operations that waited for it; the final flush writes the document again.
            with contextlib.suppress(Exception):
                await asyncio.shield(later_intents)
    # Creates that never started leave nothing behind: drop their intents.
    never_started = [
        op.address
        for op, outcome in report.outcomes.items()
        if op.step == "create" and outcome.started_at is None
    ]
    await recorder.forget_many(
        [a for a in never_started if (entry := recorder.current(a)) is not None and is_pending(entry)]
    )
    await recorder.flush()
    return ApplyResult(the_plan, report, recorder.document, recorder.writes)


async def save_settled(ws: Workspace, planned: Planned) -> bool:
    """Store what the refresh settled when there is nothing to apply (the caller holds the lock): creates a
    crashed run left pending, now found live with their ids (or found never made, and dropped). Without
    this, a converged stack would keep an entry without an id until its next change. True if written."""
    settled, stored = planned.state, planned.stored_state
    if settled is None or stored is None or settled == stored:
        return False
    recorder = StateRecorder(ws.backend, stored, stored=True)
    recorder.replace_document(settled)
    await recorder.flush()
    return True


async def _record_refresh(recorder: StateRecorder, planned: Planned) -> None:
    """``--refresh-only``: live values become the last applied ones (drift is recorded, nothing changes)."""
    for drift in planned.plan.drift:
        entry = recorder.current(drift.address)
        if entry is None:
            continue
        if drift.deleted:
            await recorder.forget(drift.address)
            continue
        found = planned.live.get(drift.address)
        if found is None:
            continue
        values = dict(entry.values)
        for key in entry.values:
            if key in found.values:
                values[key] = found.values[key]
        await recorder.record(entry.model_copy(update={"values": values}))


# ── import ──────────────────────────────────────────────────────────────────────────────────────────────


async def import_resource(
    ws: Workspace, providers: Sequence[Provider], address: str, object_id: str
) -> StateDocument:
    """Adopt the existing object ``object_id`` as ``address`` (the caller holds the lock)."""
    configs = {c.address: (p, c) for p in providers for c in p.configs()}
    if address not in configs:
        known = ", ".join(sorted(configs)[:8]) or "none"
        raise WorkflowError(f"{address} is not declared in the manifests (addresses: {known})")
    state = ws.backend.read()
    if state is not None and address in state.resources and state.resources[address].id:
        raise WorkflowError(
            f"{address} is already managed (id {state.resources[address].id}); "
            f"remove it first with `arkerctl state rm {address}`"
        )
    if state is not None:
        owner = next((r.address for r in state.resources.values() if r.id == object_id), None)
        if owner is not None:
            raise WorkflowError(f"{object_id} is already managed as {owner}")
    provider, config = configs[address]
    entry = await provider.import_resource(config, object_id)
    doc = state if state is not None else StateDocument(stack=ws.desired.stack.name)
    return ws.backend.write(
        doc.with_resource(entry), expected_serial=state.serial if state is not None else None
    )
