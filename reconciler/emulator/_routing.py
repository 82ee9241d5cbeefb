"""A route index in front of Starlette's router: the emulators' hot path, without its linear scan.

Starlette matches a request by trying every route's regex in order and then runs it through its error
and exception middleware and a per-route wrapper; at ~30 routes that is a good share of a request's CPU.
:class:`FastRoutes` finds the same route by segment comparison among the routes with as many path
segments, and calls its endpoint directly. It only answers what Starlette would answer the same way:
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

__all__ = ["FastRoutes"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]

# (position, literal segment) pairs, (position, parameter name) pairs, allowed methods, endpoint
_Indexed = tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...], frozenset[str], Endpoint]


def _index(route: BaseRoute) -> tuple[int, _Indexed] | None:
    """(segment count, entry) of a plain route: an async function endpoint, whole-segment ``{name}``
    parameters of the default (str) type, a method list. None for anything else."""
    if not isinstance(route, Route) or route.methods is None:
        return None
    if not inspect.iscoroutinefunction(route.endpoint):
        return None
    segments = route.path.split("/")
    literal: list[tuple[int, str]] = []
    params: list[tuple[int, str]] = []
    for position, segment in enumerate(segments):
        if "{" not in segment and "}" not in segment:
            literal.append((position, segment))
        elif segment.startswith("{") and segment.endswith("}") and ":" not in segment:
            params.append((position, segment[1:-1]))
        else:
            return None
    entry = (tuple(literal), tuple(params), frozenset(route.methods), route.endpoint)
    return len(segments), entry


class FastRoutes:
    """ASGI middleware: serve indexed routes directly, pass everything else to ``app`` (the router)."""

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self._by_length: dict[int, list[_Indexed]] = {}
        for route in routes:
            indexed = _index(route)
            if indexed is None:
                break  # a later route could be shadowed by this one: leave the rest to the router
            length, entry = indexed
            self._by_length.setdefault(length, []).append(entry)

    def _find(self, method: str, path: str) -> tuple[Endpoint, dict[str, Any]] | None:
        segments = path.split("/")
        for literal, params, methods, endpoint in self._by_length.get(len(segments), ()):
            if any(segments[position] != text for position, text in literal):
                continue
            values = {name: segments[position] for position, name in params}
            if not all(values.values()):
                continue  # an empty parameter segment matches no route
            if method not in methods:
                return None  # a later route may take the method, else a 405: the router decides
            return endpoint, values
        return None

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
