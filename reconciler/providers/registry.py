"""Which provider serves which resources: the one place that knows the platforms by name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any

from reconciler.manifest import DesiredState
from reconciler.state.model import StateDocument

from .base import Provider

__all__ = ["PLATFORMS", "open_providers", "platforms_used", "transport_for"]

PLATFORMS = ("arker", "fastvm")


def platforms_used(desired: DesiredState, state: StateDocument | None) -> tuple[str, ...]:
    """The platforms of every desired resource and every state entry (sorted). A stack without any
    resource at all uses its default platform, so that its commands still check the connection."""
    used: set[str] = {resource.provider for resource in desired.resources()}
    if state is not None:
        used |= {entry.provider for entry in state.resources.values()}
    if not used:
        used = {desired.stack.provider}
    return tuple(sorted(used))


def transport_for(settings: Any, platform: str) -> Any:
    """The injected httpx transport for ``platform``, if any. ``RunSettings.transport_factory`` is one
    factory (used for every platform: existing callers) or a mapping of factories by platform."""
    factory: Callable[[], Any] | Mapping[str, Callable[[], Any]] | None = settings.transport_factory
    if factory is None:
        return None
    if isinstance(factory, Mapping):
        chosen = factory.get(platform)
        return chosen() if chosen is not None else None
    return factory()


@contextlib.asynccontextmanager
async def open_providers(
    desired: DesiredState,
    settings: Any,
    *,
    environ: Mapping[str, str] | None = None,
    state_platforms: Collection[str] = (),
) -> AsyncIterator[list[Provider]]:
    """Providers with open clients for the platforms ``desired`` or ``state`` uses, and only those (a
    FastVM-only stack needs no ARKER_API_KEY, and the other way round). The platforms of state entries
    (``state_platforms``) count too: a resource whose manifest is gone must still be refreshed and deleted
    on its platform."""
    # Platforms, not the state document: a context manager keeps its arguments for the whole run.
    used = tuple(sorted(set(platforms_used(desired, None)) | set(state_platforms)))
    unknown = sorted(set(used) - set(PLATFORMS))
    if unknown:
        raise ValueError(f"unknown platform(s) in the manifests or state: {', '.join(unknown)}")
    max_connections = max(16, settings.parallelism * 2)
    providers: list[Provider] = []
    async with contextlib.AsyncExitStack() as stack:
        if "arker" in used:
            from .arker import ArkerClient, ConnectionSettings
            from .arker.provider import ArkerProvider

            arker = await stack.enter_async_context(
                ArkerClient(
                    ConnectionSettings.from_env(environ),
                    transport=transport_for(settings, "arker"),
                    max_connections=max_connections,
                )
            )
            providers.append(
                ArkerProvider(
                    arker, desired, parallelism=settings.parallelism, mount_timeout=settings.mount_timeout
                )
            )
        if "fastvm" in used:
            from .fastvm import FastvmClient, FastvmSettings
            from .fastvm.provider import FastvmProvider

            fastvm = await stack.enter_async_context(
                FastvmClient(
                    FastvmSettings.from_env(environ),
                    transport=transport_for(settings, "fastvm"),
                    max_connections=max_connections,
                )
            )
            providers.append(
                FastvmProvider(
                    fastvm,
                    desired,
                    parallelism=settings.parallelism,
                    launch_timeout=settings.mount_timeout,
                    mount_timeout=settings.mount_timeout,
                )
            )
        yield providers
