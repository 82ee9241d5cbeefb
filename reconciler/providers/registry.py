"""Which provider serves which resources: the one place that knows the platforms by name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from reconciler.manifest import DesiredState

from .base import Provider

__all__ = ["open_providers"]


@contextlib.asynccontextmanager
async def open_providers(
    desired: DesiredState, settings: Any, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[list[Provider]]:
    """Providers with open clients for the platforms ``desired`` uses (Arker for now: every stack has it,
    so that resources recorded in state can be deleted even when no manifest declares one any more)."""
    from .arker import ArkerClient, ConnectionSettings
    from .arker.provider import ArkerProvider

    connection = ConnectionSettings.from_env(environ)
    transport = settings.transport_factory() if settings.transport_factory is not None else None
    max_connections = max(16, settings.parallelism * 2)
    async with ArkerClient(connection, transport=transport, max_connections=max_connections) as client:
        provider = ArkerProvider(
            client, desired, parallelism=settings.parallelism, mount_timeout=settings.mount_timeout
        )
        yield [provider]
