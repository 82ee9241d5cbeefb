"""JSON responses carry what Starlette's Response would; recent Authorization headers are remembered
without changing who is let in; an indexed endpoint's exception is answered as Starlette would."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reconciler.emulator._app import EmulatorApp
from reconciler.emulator._envelope import json_response, new_request_id, set_header
from reconciler.emulator.arker.auth import OrgDirectory, org_for_name
from reconciler.emulator.arker.errors import ApiError
from reconciler.emulator.settings import ApiKeyGrant

PAYLOAD = {"b": 1, "a": [1.5, None, True, "é\u2028"], "nested": {"z": {}, "y": []}}


@pytest.mark.parametrize(
    ("status", "headers"),
    [(200, None), (201, {}), (409, {"Retry-After": "1", "X-Request-Id": "req_1"}), (204, None), (304, None)],
)
def test_json_responses_match_starlettes(status: int, headers: dict[str, str] | None) -> None:
    content = json.dumps(PAYLOAD, separators=(",", ":"), ensure_ascii=False).encode()
    expected = Response(
        content, status_code=status, media_type="application/json", headers=dict(headers or {})
    )
    response = json_response(PAYLOAD, status, headers)
    assert response.body == expected.body
    assert response.raw_headers == expected.raw_headers
    assert response.status_code == status
    assert response.background is None


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [(b"content-type", b"application/json")],
        [(b"x-request-id", b"old"), (b"a", b"1"), (b"x-request-id", b"older")],
    ],
)
def test_set_header_is_mutable_headers_assignment(raw: list[tuple[bytes, bytes]]) -> None:
    response, expected = Response(b""), Response(b"")
    response.raw_headers, expected.raw_headers = list(raw), list(raw)
    set_header(response, "X-Request-Id", "req_new")
    MutableHeaders(raw=expected.raw_headers)["X-Request-Id"] = "req_new"
    assert response.raw_headers == expected.raw_headers


def test_request_ids_are_distinct_and_shaped() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 20 and i.startswith("req_") and int(i[4:], 16) >= 0 for i in ids)


def test_remembered_headers_do_not_change_who_is_let_in() -> None:
    directory = OrgDirectory([ApiKeyGrant(key=SecretStr("ak_good"), org="acme")])
    for _ in range(2):  # the second round is answered from what the first remembered
        assert directory.authenticate("Bearer ak_good") == org_for_name("acme")
        assert directory.authenticate("bearer  ak_good ") == org_for_name("acme")
        for refused in (None, "", "Bearer ak_bad", "Basic ak_good", "Bearer ", "ak_good"):
            with pytest.raises(ApiError) as caught:
                directory.authenticate(refused)
            assert caught.value.code == "unauthorized"


def test_remembered_headers_are_bounded() -> None:
    directory = OrgDirectory([ApiKeyGrant(key=SecretStr("ak_good"), org="acme")])
    for spaces in range(600):
        assert directory.authenticate("Bearer " + " " * spaces + "ak_good").org_name == "acme"
    assert len(directory._recent) <= 256


@pytest.mark.anyio
async def test_an_indexed_endpoints_exception_is_a_plain_500_and_reraised() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    routes = [Route("/broken", broken, methods=["GET"])]
    # FastRoutes sits outside Starlette's error middleware here, as in the emulators.
    fast = EmulatorApp(outer=lambda inner: inner, routes=routes)
    plain = Starlette(routes=routes)
    answers = []
    for app in (fast, plain):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers.append(await client.get("/broken"))
        with pytest.raises(RuntimeError, match="boom"):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                await client.get("/broken")
    got, expected = answers
    assert (got.status_code, got.content, got.headers["content-type"]) == (
        expected.status_code,
        expected.content,
        expected.headers["content-type"],
    )
    assert got.status_code == 500
