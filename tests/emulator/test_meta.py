"""Health, regions, whoami, authentication and the envelope of unknown routes."""

from __future__ import annotations

import httpx
import pytest

from reconciler.emulator.arker import EmulatorApp

from .conformance import ConformanceChecker
from .conftest import error_of

pytestmark = pytest.mark.anyio


async def test_health_needs_no_key(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_regions_point_back_at_the_emulator(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/v1/regions")
    (region,) = response.json()["regions"]
    # The regional endpoint is the base URL the client used, so SDK routing stays on the emulator.
    assert region["endpoint"] == "http://emulator.test/api"
    assert (region["provider"], region["region"]) == ("aws", "us-west-2")


async def test_whoami_names_the_org_of_the_key(api: httpx.AsyncClient, api_b: httpx.AsyncClient) -> None:
    acme = (await api.get("/v1/whoami")).json()
    globex = (await api_b.get("/v1/whoami")).json()
    assert acme["org_name"] == "acme" and globex["org_name"] == "globex"
    assert acme["org_id"] != globex["org_id"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic abc", "Bearer "])
async def test_bad_credentials_are_401(anon: httpx.AsyncClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = await anon.get("/v1/whoami", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_every_response_carries_a_request_id(api: httpx.AsyncClient) -> None:
    ok = await api.get("/v1/whoami")
    missing = await api.get("/v1/vms/does-not-exist")
    assert ok.headers["x-request-id"].startswith("req_")
    assert error_of(missing)["request_id"] == missing.headers["x-request-id"]


async def test_unknown_route_is_an_unmatched_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/no-such-thing")
    assert response.status_code == 404
    error = error_of(response)
    assert error["request"] == {"kind": "unmatched", "method": "GET"}
    assert error["details"] == {"resource": "route"}


async def test_wrong_method_is_405_with_allow(api: httpx.AsyncClient) -> None:
    response = await api.delete("/v1/regions")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert error_of(response)["details"]["allowed_methods"] == ["GET"]


async def test_paths_without_the_api_prefix_work_too(app: EmulatorApp, checker: ConformanceChecker) -> None:
    from .conftest import KEY_A, client_for

    async with client_for(app, KEY_A, checker) as client:
        response = await client.get("http://emulator.test/v1/whoami")
    assert response.status_code == 200
    assert response.json()["org_name"] == "acme"


async def test_trailing_slash_is_an_unknown_route(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/vms/")
    assert response.status_code == 404
    assert error_of(response)["details"] == {"resource": "route"}


async def test_emulator_extras_are_also_under_the_base_url(anon: httpx.AsyncClient) -> None:
    assert "totals" in (await anon.get("/_emulator/stats")).json()
    assert (await anon.post("/_emulator/reset")).json() == {"reset": True}
