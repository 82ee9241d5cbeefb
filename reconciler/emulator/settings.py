"""Emulator settings: one frozen value shared by every platform the emulator serves.

Nothing here is specific to Arker: a platform reads the fields it needs and ignores the others. Operation
names in ``latency_ops`` are kept as given; the platform resolves them (operationId or alias) when the app
is built, so an unknown name fails early with a clear message.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "DEFAULT_ORG",
    "ApiKeyGrant",
    "EmulatorSettings",
    "parse_api_key",
    "parse_latency_op",
]

DEFAULT_ORG = "demo"
_DEMO_KEY_PREFIX = "ak_emulator_"


class ApiKeyGrant(BaseModel):
    """One accepted bearer key and the organization (by name) it authenticates as."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: SecretStr
    org: str = Field(default=DEFAULT_ORG, min_length=1, max_length=128)
    # True only for the key the emulator generated itself: the one key it may print.
    generated: bool = False

    @field_validator("key")
    @classmethod
    def _non_blank_key(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw or raw != raw.strip() or any(ch.isspace() for ch in raw):
            raise ValueError("an API key must be non-empty and contain no whitespace")
        return value


def parse_api_key(spec: str) -> ApiKeyGrant:
    """``KEY`` or ``KEY:ORG`` (the org defaults to ``demo``); the last ``:`` separates the org."""
    key, sep, org = spec.rpartition(":")
    if not sep:
        key, org = spec, DEFAULT_ORG
    if not org:
        raise ValueError("--api-key KEY:ORG needs a non-empty ORG")
    return ApiKeyGrant(key=SecretStr(key), org=org)


def parse_latency_op(spec: str) -> tuple[str, float]:
    """``OP=MS`` -> (op, milliseconds)."""
    name, sep, value = spec.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected OP=MS, got {spec!r}")
    try:
        millis = float(value)
    except ValueError as exc:
        raise ValueError(f"latency for {name!r} must be a number of milliseconds, got {value!r}") from exc
    if millis < 0:
        raise ValueError(f"latency for {name!r} must be >= 0")
    return name.strip(), millis


class EmulatorSettings(BaseModel):
    """How to run the emulator. Defaults suit an interactive demo; tests shorten the delays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Which API the emulator speaks: the Arker public API or the FastVM API (``reconciler.emulator.fastvm``).
    platform: Literal["arker", "fastvm"] = "arker"
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    # SQLite file; None keeps everything in memory (nothing survives a restart).
    db_path: Path | None = None
    # Empty means "generate one demo key for org demo" (done at construction, so the value is stable).
    api_keys: tuple[ApiKeyGrant, ...] = ()

    # --- fault injection -------------------------------------------------------------------------
    latency_ms: float = Field(default=0.0, ge=0)
    # (operation name or alias, milliseconds); replaces latency_ms for that operation.
    latency_ops: tuple[tuple[str, float], ...] = ()
    fail_rate: float = Field(default=0.0, ge=0, le=1)
    ambiguous_rate: float = Field(default=0.0, ge=0, le=1)
    # Share of injected failures answered 429 rate_limited rather than 503 unavailable.
    rate_limited_share: float = Field(default=0.5, ge=0, le=1)
    retry_after_seconds: int = Field(default=1, ge=0)
    seed: int | None = None

    # --- platform behaviour ------------------------------------------------------------------------
    mount_delay_seconds: float = Field(default=0.2, ge=0)
    # FastVM: 0 answers a launch 201 with the VM running; > 0 answers 202 (provisioning) and the VM turns
    # running that many seconds later.
    launch_delay_seconds: float = Field(default=0.0, ge=0)
    # Sync reads of files larger than this answer with a presigned URL instead of inline content.
    presign_threshold_bytes: int = Field(default=1024 * 1024, ge=0)
    # Largest decoded chunk one inline sync write entry may carry (the SDKs send 4 MiB chunks).
    sync_chunk_limit_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    presign_ttl_seconds: int = Field(default=300, ge=1)

    log_level: str = "warning"

    @field_validator("latency_ops", mode="before")
    @classmethod
    def _ops_from_mapping(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return tuple(sorted(value.items()))
        return value

    @field_validator("latency_ops")
    @classmethod
    def _non_negative_ops(cls, value: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
        for name, millis in value:
            if millis < 0:
                raise ValueError(f"latency for {name!r} must be >= 0")
        return value

    @model_validator(mode="after")
    def _check(self) -> EmulatorSettings:
        if self.fail_rate + self.ambiguous_rate > 1:
            raise ValueError("fail_rate + ambiguous_rate must not exceed 1")
        if not self.api_keys:
            demo = ApiKeyGrant(
                key=SecretStr(_DEMO_KEY_PREFIX + secrets.token_urlsafe(18)), org=DEFAULT_ORG, generated=True
            )
            # Frozen model: set once, here, so every reader of these settings sees the same key.
            object.__setattr__(self, "api_keys", (demo,))
        seen: set[str] = set()
        for grant in self.api_keys:
            raw = grant.key.get_secret_value()
            if raw in seen:
                raise ValueError("the same API key is configured twice")
            seen.add(raw)
        return self

    @property
    def latency_by_op(self) -> dict[str, float]:
        return dict(self.latency_ops)

    @property
    def primary_api_key(self) -> str:
        """The first configured key: what demos and tests hand their client."""
        return self.api_keys[0].key.get_secret_value()

    @classmethod
    def from_cli(
        cls,
        *,
        host: str,
        port: int,
        db: str | None,
        api_keys: Iterable[str],
        latency: float,
        latency_ops: Iterable[str],
        fail_rate: float,
        ambiguous_rate: float,
        seed: int | None,
        platform: str = "arker",
    ) -> EmulatorSettings:
        """Build settings from the ``arkerctl emulator`` options (raises ValueError on bad input)."""
        return cls(
            platform=platform,  # validated: a ValidationError names the choices
            host=host,
            port=port,
            db_path=Path(db) if db else None,
            api_keys=tuple(parse_api_key(spec) for spec in api_keys),
            latency_ms=latency,
            latency_ops=tuple(parse_latency_op(spec) for spec in latency_ops),
            fail_rate=fail_rate,
            ambiguous_rate=ambiguous_rate,
            seed=seed,
        )
