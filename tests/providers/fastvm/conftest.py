"""The FastVM client wired to an in-process emulator (httpx.ASGITransport), with instant retry sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings, create_app
from reconciler.emulator.arker import EmulatorApp
from reconciler.providers.fastvm import FastvmClient, FastvmSettings, RetryPolicy

KEY = "fvm-client-key"
BASE = "http://127.0.0.1:9"  # loopback: plain http is allowed; the ASGI transport never dials it


async def _no_sleep(seconds: float) -> None:
    return None


def make_settings(**overrides: Any) -> EmulatorSettings:
    values: dict[str, Any] = {
        "platform": "fastvm",
        "api_keys": (ApiKeyGrant(key=SecretStr(KEY), org="acme"),),
        "mount_delay_seconds": 0.02,
        "retry_after_seconds": 0,
    }
    values.update(overrides)
    return EmulatorSettings(**values)


def make_client(app: Any, *, attempts: int = 5) -> FastvmClient:
    return FastvmClient(
        FastvmSettings.create(KEY, BASE),
        transport=httpx.ASGITransport(app=app),
        retry=RetryPolicy(max_attempts=attempts, sleep=_no_sleep),
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings() -> EmulatorSettings:
    return make_settings()


@pytest.fixture
def app(settings: EmulatorSettings) -> Iterator[EmulatorApp]:
    application = create_app(settings)
    yield application
    application.state.close()


@pytest.fixture
async def client(app: EmulatorApp) -> AsyncIterator[FastvmClient]:
    async with make_client(app) as fastvm:
        yield fastvm
