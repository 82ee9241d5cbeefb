"""FastRoutes answers exactly what Starlette's router would, and leaves everything else to it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from reconciler.emulator._routing import FastRoutes

pytestmark = pytest.mark.anyio


def _answer(name: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return JSONResponse({"route": name, "params": dict(request.path_params)})

    return endpoint


def _app(routes: list[BaseRoute]) -> tuple[Starlette, list[str]]:
    """A Starlette app with FastRoutes in front of its router; the list records what reached the router."""
    fallen: list[str] = []

    class Recorder:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            fallen.append(scope["path"])
            await self.app(scope, receive, send)

    middleware = [Middleware(FastRoutes, routes=tuple(routes)), Middleware(Recorder)]
    return Starlette(routes=routes, middleware=middleware), fallen


ROUTES: list[BaseRoute] = [
    Route("/v1/vms", _answer("list"), methods=["GET"]),
    Route("/v1/vms/{id}", _answer("get"), methods=["GET", "PATCH"]),
    Route("/v1/vms/{id}/mounts/{mount_id}", _answer("mount"), methods=["DELETE"]),
    Route("/files/{token}", _answer("read"), methods=["GET"]),
    Route("/files/{token}", _answer("write"), methods=["PUT"]),
]


async def _call(app: Starlette, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.request(method, path)


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("GET", "/v1/vms", "list", {}),
        ("GET", "/v1/vms/abc", "get", {"id": "abc"}),
        ("PATCH", "/v1/vms/abc", "get", {"id": "abc"}),
        ("DELETE", "/v1/vms/a/mounts/m", "mount", {"id": "a", "mount_id": "m"}),
        ("GET", "/files/t1", "read", {"token": "t1"}),
    ],
)
async def test_indexed_routes_are_served_without_the_router(
    method: str, path: str, route: str, params: dict[str, str]
) -> None:
    app, fallen = _app(ROUTES)
    response = await _call(app, method, path)
    assert response.json() == {"route": route, "params": params}
    assert fallen == []


@pytest.mark.parametrize(
    ("method", "path", "status", "route"),
    [
        ("PUT", "/files/t1", 200, "write"),  # the first match takes no PUT: a later route does
        ("POST", "/v1/vms/abc", 405, None),  # no route takes the method
        ("GET", "/v1/vms//mounts/m", 404, None),  # an empty parameter segment matches nothing
        ("GET", "/v1/nothing", 404, None),
    ],
)
async def test_everything_else_is_left_to_the_router(
    method: str, path: str, status: int, route: str | None
) -> None:
    app, fallen = _app(ROUTES)
    plain = Starlette(routes=ROUTES)
    response, expected = await _call(app, method, path), await _call(plain, method, path)
    assert (response.status_code, response.content) == (expected.status_code, expected.content)
    assert response.status_code == status
    if route is not None:
        assert response.json()["route"] == route
    assert fallen == [path]


async def test_routes_after_one_it_cannot_index_are_left_to_the_router() -> None:
    # The mount could shadow what follows it: only the route before it is served directly.
    routes: list[BaseRoute] = [
        Route("/a", _answer("a"), methods=["GET"]),
        Mount("/m", routes=[Route("/x", _answer("mounted"), methods=["GET"])]),
        Route("/b", _answer("b"), methods=["GET"]),
    ]
    app, fallen = _app(routes)
    assert (await _call(app, "GET", "/a")).json()["route"] == "a"
    assert (await _call(app, "GET", "/b")).json()["route"] == "b"
    assert (await _call(app, "GET", "/m/x")).json()["route"] == "mounted"
    assert fallen == ["/b", "/m/x"]
