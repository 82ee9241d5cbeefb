"""State-entry helpers every provider shares: the entry recorded for a finished or pending create, the
entries a provider owns, a dependency's object id, lookup by recorded id or name, ``ignore_changes`` roots,
and bounded-parallel reads.

What an entry's pending handle holds, and how an object is found again from it, stays with each provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from reconciler.engine.model import ResourceConfig, state_values
from reconciler.state.model import ResourceState, StateDocument

from .base import PENDING_KEY, ApplyContext, is_pending

__all__ = [
    "create_by_kind",
    "dependency_id",
    "find_by_id_or_name",
    "gather_limited",
    "handle_has_id",
    "ignored_roots",
    "imported_values",
    "kind_of",
    "owned_entries",
    "pending_entry",
    "recorded_entry",
]

T = TypeVar("T")


async def gather_limited(calls: Iterable[Callable[[], Awaitable[T]]], parallelism: int) -> list[T]:
    """Run ``calls`` with at most ``parallelism`` in flight; results in the calls' order. The first
    failure is raised and the calls not yet started are not started.

    ``parallelism`` workers take the calls in order: a refresh of 10,000 VMs makes tens of thousands of
    calls, and a task per call, all created up front, held their frames at once.
    """
    pending = enumerate(calls)
    results: dict[int, T] = {}

    async def worker() -> None:
        for index, call in pending:
            results[index] = await call()

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, parallelism))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        raise
    return [results[index] for index in range(len(results))]


def owned_entries(state: StateDocument | None, provider: str) -> dict[str, ResourceState]:
    """The state's entries that belong to ``provider``, by address."""
    return {
        address: entry
        for address, entry in (state.resources.items() if state is not None else ())
        if entry.provider == provider
    }


def kind_of(config: ResourceConfig | None, entry: ResourceState | None) -> str:
    return config.kind if config is not None else entry.kind if entry is not None else ""


def recorded_entry(
    config: ResourceConfig, object_id: str, provider: str, values: dict[str, Any] | None = None
) -> ResourceState:
    """The entry for ``config`` realised as ``object_id`` (``values`` default to the config's)."""
    return ResourceState(
        address=config.address,
        kind=config.kind,
        name=config.name,
        id=object_id,
        provider=provider,
        config_hash=config.config_hash,
        values=state_values(config) if values is None else values,
        dependencies=config.dependencies,
    )


def pending_entry(config: ResourceConfig, handle: dict[str, Any], provider: str) -> ResourceState:
    """The entry of a create under way: no id yet, ``handle`` says how to find the object again."""
    values = state_values(config)
    values[PENDING_KEY] = handle
    return recorded_entry(config, "", provider, dict(sorted(values.items())))


def handle_has_id(entry: ResourceState) -> bool:
    """Whether a pending entry's handle already names the object (an earlier step created it)."""
    handle = entry.values.get(PENDING_KEY)
    return isinstance(handle, Mapping) and bool(handle.get("id"))


def dependency_id(ctx: ApplyContext, address: str) -> str:
    """The object id of an already created dependency; ValueError if it has none."""
    entry = ctx.current(address)
    if entry is None or not entry.id:
        raise ValueError(f"{address} has not been created")
    return entry.id


def find_by_id_or_name(
    by_id: Mapping[str, T],
    by_name: Mapping[str, T],
    config: ResourceConfig | None,
    entry: ResourceState | None,
) -> T | None:
    """The object a recorded entry's id names; without one, the object of the config's (or entry's) name."""
    if entry is not None and entry.id:
        return by_id.get(entry.id)
    name = config.name if config is not None else entry.name if entry is not None else None
    return by_name.get(name) if name else None


def ignored_roots(config: ResourceConfig) -> set[str]:
    """The top-level value names ``lifecycle.ignore_changes`` covers."""
    return {path.split(".", 1)[0].split("[", 1)[0] for path in config.lifecycle.ignore_changes}


def imported_values(
    config: ResourceConfig, live: Mapping[str, Any], read_from_state: Iterable[str]
) -> dict[str, Any]:
    """The values to record for an imported object: the live view, and for facts the API does not report
    (``read_from_state``) the manifest's, over the config's state values."""
    values = dict(live)
    for key in read_from_state:  # not readable: assume the manifest's
        if key in config.values:
            values[key] = config.values[key]
    stored = state_values(config)
    stored.update(values)
    return dict(sorted(stored.items()))


_Err = TypeVar("_Err", bound=Exception)


async def create_by_kind(
    config: ResourceConfig,
    ctx: ApplyContext,
    creators: Mapping[str, Callable[[], Awaitable[None]]],
    *,
    errors: type[_Err],
    maybe_done: Callable[[_Err, ResourceState], bool],
) -> None:
    """Run the creator of ``config.kind``. When it fails with one of ``errors``, a create refused for sure
    leaves nothing behind: its pending entry is dropped so state stays exact. A failure after which the
    object may exist (``maybe_done``) keeps it: the next refresh finds the object, or drops the entry."""
    try:
        creator = creators.get(config.kind)
        if creator is None:  # pragma: no cover - configs() only produces the kinds a provider creates
            raise ValueError(f"unknown kind {config.kind}")
        await creator()
    except errors as err:
        entry = ctx.current(config.address)
        if entry is not None and is_pending(entry) and not maybe_done(err, entry):
            await ctx.forget(config.address)
        raise
