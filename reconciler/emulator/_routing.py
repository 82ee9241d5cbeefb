"""A route index in front of Starlette's router: the emulators' hot path, without its linear scan.

Starlette matches a request by trying every route's regex in order and then runs it through its error
and exception middleware and a per-route wrapper; at ~30 routes that is a good share of a request's CPU.
:class:`FastRoutes` finds the same route with a :class:`~._segments.SegmentIndex` (a dict lookup per
shape of path) and calls its endpoint directly. It only answers what Starlette would answer the same way:
a request whose first full match (path and method, in route order) it finds; anything else (unknown
paths, methods a route does not take, ``root_path`` mounts, routes it cannot index) goes to the router.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ._segments import SegmentIndex

__all__ = ["FastRoutes"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _indexable(route: BaseRoute) -> Route | None:
    """A plain route (an async function endpoint, a method list), else None; its path must also be
    indexable (:func:`~._segments.parse_template`)."""
    if not isinstance(route, Route) or route.methods is None:
        return None
    if not inspect.iscoroutinefunction(route.endpoint):
        return None
    return route


class FastRoutes:
    """ASGI middleware: serve indexed routes directly, pass everything else to ``app`` (the router)."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self._index: SegmentIndex[tuple[frozenset[str], Endpoint]] = SegmentIndex()
        for route in routes:
            plain = _indexable(route)
            entry = (frozenset(plain.methods or ()), plain.endpoint) if plain is not None else None
            if plain is None or entry is None or not self._index.add(plain.path, entry):
                break  # a later route could be shadowed by this one: leave the rest to the router

    def _find(self, method: str, path: str) -> tuple[Endpoint, dict[str, Any]] | None:
        found = self._index.find(path)
        if found is None:
            return None
        _, (methods, endpoint), params = found
        if method not in methods:
            return None  # a later route may take the method, else a 405: the router decides
        return endpoint, params

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        found = self._find(scope["method"], scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        endpoint, params = found
        scope["endpoint"] = endpoint
        scope["path_params"] = params
        try:
            response = await endpoint(Request(scope, receive, send))
        except Exception:
            # What Starlette's error middleware (which this path skips) does: a plain 500, then re-raise
            # for the server to log.
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        await response(scope, receive, send)
