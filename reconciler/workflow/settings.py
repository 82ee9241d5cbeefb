"""The options of a run, grouped: what the CLI parses and the core consumes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RunSettings"]


class RunSettings(BaseModel):
    """Everything a plan/apply/destroy/drift/import run needs to know besides the manifests themselves."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    paths: tuple[Path, ...] = (Path("."),)
    variables: Mapping[str, str] = Field(default_factory=dict)
    environ: Mapping[str, str] | None = None  # None: the process environment
    parallelism: int = Field(default=10, ge=1, le=1000)
    lock_timeout: float = Field(default=0.0, ge=0)
    # Runs of an operation that ends in a transient error (each run already retries its requests).
    operation_attempts: int = Field(default=3, ge=1, le=10)
    mount_timeout: float = Field(default=300.0, gt=0)
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    refresh_only: bool = False
    destroy: bool = False
    lock_holder: str | None = None  # shown to whoever is blocked by our lock (default user@host)
    # Tests and the demo inject an httpx transport (ASGI app) instead of a socket: one factory for every
    # platform, or a mapping of factories by platform ({"arker": ..., "fastvm": ...}).
    transport_factory: Callable[[], Any] | Mapping[str, Callable[[], Any]] | None = None
