"""What the workflow needs from a platform provider, and nothing platform-specific.

A provider is built per run from the desired state (so it can keep what the engine's comparable values
do not carry, such as file contents) and an open API client. The workflow drives it:

1. ``configs()``: desired resources -> engine ``ResourceConfig`` values (pure);
2. ``refresh(state)``: live objects -> ``LiveResource`` per address, with the fewest API calls;
3. ``create``/``update``/``delete``: one platform operation each, returning what to record in state.

Operations record progress through ``ApplyContext`` (state is written after every completed operation,
and before a create, as an intent, so a crash between the API call and the state write is recoverable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from reconciler.engine.model import LiveResource, ResourceConfig, state_values
from reconciler.state.model import ResourceState, StateDocument

__all__ = ["PENDING_KEY", "ApplyContext", "ImportError_", "Provider", "intent_entry", "is_pending"]

# Reserved state key of an object whose create was started but not confirmed: its value is the
# provider's handle to find it again (idempotency key, name). The id of such an entry is "".
PENDING_KEY = "__pending__"


def is_pending(resource: ResourceState) -> bool:
    return not resource.id and PENDING_KEY in resource.values


def intent_entry(config: ResourceConfig) -> ResourceState:
    """The pending state entry of a create about to start (providers find such objects again by name or by
    their ownership tags, so the handle needs nothing more)."""
    values = state_values(config)
    values[PENDING_KEY] = {"name": config.name}
    return ResourceState(
        address=config.address,
        kind=config.kind,
        name=config.name,
        id="",
        provider=config.provider,
        config_hash=config.config_hash,
        values=dict(sorted(values.items())),
        dependencies=config.dependencies,
    )


class ImportError_(Exception):
    """``arkerctl import`` cannot adopt the object (unknown address, no such object, wrong kind)."""


class ApplyContext(Protocol):
    """The workflow's side of an operation: current state and durable recording."""

    @property
    def lineage(self) -> str: ...

    def current(self, address: str) -> ResourceState | None:
        """The state entry as of now (dependencies created earlier in this run are visible)."""

    async def record(self, resource: ResourceState) -> None:
        """Persist ``resource`` in state before returning (coalesced with concurrent operations)."""

    async def forget(self, address: str) -> None:
        """Remove ``address`` from state, durably."""


class Provider(Protocol):
    """One platform. Implementations live in ``reconciler/providers/<platform>/provider.py``."""

    name: str

    def configs(self) -> tuple[ResourceConfig, ...]:
        """The desired resources this provider owns, as engine values."""

    def warm(self, connections: int) -> None:
        """Open up to ``connections`` to the platform in the background: a burst of about that many calls
        is about to start (best effort; a connection that fails is left to the call that needs it)."""

    def prefetch(self) -> asyncio.Future[Any] | None:
        """Start the reads a refresh needs that do not depend on the state (a platform's lists), so they
        overlap reading it; hand the result to ``refresh(prefetched=...)``, or cancel it. None when there
        is nothing to start."""

    async def refresh(
        self,
        state: StateDocument | None,
        on_live: Callable[[LiveResource], None] | None = None,
        prefetched: asyncio.Future[Any] | None = None,
    ) -> dict[str, LiveResource]:
        """Live objects by address: managed ones found by the id in state, others by their desired name
        (the planner reports those as conflicts). Pending entries are looked up by their handle.

        ``on_live``, when given, may be called with any view as soon as it is final (the very object the
        result will hold), so the caller can compare it while the rest is still being read.
        ``prefetched``: what this provider's ``prefetch`` returned, started just before the state was read."""

    async def create(self, config: ResourceConfig, ctx: ApplyContext, *, replacing: str | None) -> None:
        """Create the object; ``replacing`` is the id of the object this one replaces, if any."""

    async def update(
        self, config: ResourceConfig, current: ResourceState, live: LiveResource | None, ctx: ApplyContext
    ) -> None:
        """Change the live object in place to match ``config``."""

    async def delete(self, current: ResourceState, ctx: ApplyContext) -> None:
        """Delete the object; one already gone counts as deleted."""

    async def import_resource(self, config: ResourceConfig, object_id: str) -> ResourceState:
        """The state entry that adopts the existing object ``object_id`` at ``config.address``."""
