"""Connection settings from the environment (SPEC §3) and the client's routing of operations to planes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from reconciler.engine.errors import PermanentError
from reconciler.providers.arker import ArkerClient, ArkerConfigurationError, ConnectionSettings

from .fakes import API_KEY, FakeArker, make_client, vm_json


def test_explicit_base_url_serves_both_planes() -> None:
    settings = ConnectionSettings.from_env(
        {"ARKER_API_KEY": "k", "ARKER_BASE_URL": "http://127.0.0.1:8787/api/"}
    )
    assert settings.base_url == "http://127.0.0.1:8787/api"
    assert settings.control_base_url == "http://127.0.0.1:8787/api"


def test_explicit_control_url_wins_over_base_url() -> None:
    env = {
        "ARKER_API_KEY": "k",
        "ARKER_BASE_URL": "https://eu.example.net/api",
        "ARKER_CONTROL_BASE_URL": "https://control.example.net/api",
        "ARKER_PROVIDER": "ignored",
        "ARKER_REGION": "ignored",
    }
    settings = ConnectionSettings.from_env(env)
    assert (settings.base_url, settings.control_base_url) == (
        "https://eu.example.net/api",
        "https://control.example.net/api",
    )


def test_provider_and_region_build_the_regional_url_and_default_control() -> None:
    env = {"ARKER_API_KEY": "k", "ARKER_PROVIDER": "AWS", "ARKER_REGION": "us-west-2"}
    settings = ConnectionSettings.from_env(env)
    assert settings.base_url == "https://aws-us-west-2.arker.ai/api"
    assert settings.control_base_url == "https://arker.ai/api"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "ARKER_API_KEY"),
        ({"ARKER_API_KEY": "   ", "ARKER_BASE_URL": "https://x.example/api"}, "ARKER_API_KEY"),
        ({"ARKER_API_KEY": "k"}, "ARKER_BASE_URL"),
        ({"ARKER_API_KEY": "k", "ARKER_PROVIDER": "aws"}, "ARKER_REGION"),
        ({"ARKER_API_KEY": "k", "ARKER_PROVIDER": "aws", "ARKER_REGION": "x.evil.com/"}, "ARKER_REGION"),
        ({"ARKER_API_KEY": "k", "ARKER_BASE_URL": "ftp://host/api"}, "http(s)"),
        ({"ARKER_API_KEY": "k", "ARKER_BASE_URL": "http://arker.example.com/api"}, "https://"),
        ({"ARKER_API_KEY": "k", "ARKER_BASE_URL": "https://user:pw@host/api"}, "credentials"),
        ({"ARKER_API_KEY": "k", "ARKER_BASE_URL": "https://host/api?token=1"}, "query"),
    ],
)
def test_bad_environments_raise_a_clear_configuration_error(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ArkerConfigurationError) as caught:
        ConnectionSettings.from_env(env)
    assert needle in str(caught.value)
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.5"])
def test_plain_http_is_allowed_on_loopback_only(host: str) -> None:
    settings = ConnectionSettings.from_env({"ARKER_API_KEY": "k", "ARKER_BASE_URL": f"http://{host}:1/api"})
    assert settings.base_url.startswith("http://")


def test_repr_and_str_never_show_the_key() -> None:
    settings = ConnectionSettings.from_env(
        {"ARKER_API_KEY": API_KEY, "ARKER_BASE_URL": "https://h.example/api"}
    )
    client = ArkerClient(settings)
    try:
        for text in (repr(settings), str(settings), repr(client), settings.model_dump_json()):
            assert API_KEY not in text
    finally:
        asyncio.run(client.aclose())


def test_operations_go_to_their_plane_with_bearer_auth() -> None:
    fake = (
        FakeArker()
        .on("GET", "/api/v1/whoami", httpx.Response(200, json={"org_id": "o", "org_name": "Org"}))
        .on("GET", "/api/v1/regions", httpx.Response(200, json={"regions": []}))
        .on("GET", "/api/v1/vms", httpx.Response(200, json={"vms": []}))
        .on("GET", "/api/v1/vms/vm_01", httpx.Response(200, json=vm_json()))
        .on("GET", "/api/v1/filesystems", httpx.Response(200, json={"filesystems": []}))
        .on("GET", "/api/v1/health", httpx.Response(200, json={"status": "ok", "timestamp": "t"}))
    )

    async def go() -> None:
        async with make_client(fake) as client:
            await client.whoami()
            await client.regions()
            assert [vm async for vm in client.list_vms()] == []
            await client.get_vm("vm_01")
            await client.list_filesystems()
            assert (await client.health()).ok
            assert (await client.health(control=True)).ok

    asyncio.run(go())
    hosts = [(r.url.path.removeprefix("/api"), r.url.host) for r in fake.requests]
    assert hosts == [
        ("/v1/whoami", "arker.ai"),
        ("/v1/regions", "arker.ai"),
        ("/v1/vms", "arker.ai"),
        ("/v1/vms/vm_01", "aws-us-west-2.arker.ai"),
        ("/v1/filesystems", "aws-us-west-2.arker.ai"),
        ("/v1/health", "aws-us-west-2.arker.ai"),
        ("/v1/health", "arker.ai"),
    ]
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {API_KEY}"}
    assert all(r.url.scheme == "https" for r in fake.requests)


def test_redirects_are_not_followed() -> None:
    fake = FakeArker().on(
        "GET", "/api/v1/vms/vm_01", httpx.Response(302, headers={"Location": "https://evil.example/steal"})
    )

    async def go() -> None:
        async with make_client(fake) as client:
            await client.get_vm("vm_01")

    from reconciler.providers.arker import ArkerProtocolError

    with pytest.raises(ArkerProtocolError, match="unexpected HTTP 302"):
        asyncio.run(go())
    assert [r.url.host for r in fake.requests] == ["aws-us-west-2.arker.ai"]
