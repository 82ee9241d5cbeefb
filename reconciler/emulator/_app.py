"""The platform-neutral parts of the emulator apps: the app class with the fault layer outermost, the
fault plan from settings, the fault target's injected refusals, per-path method dispatch and the
``/_emulator`` stats/reset endpoints.

Each platform's ``app`` module keeps its handler table, routes, envelope wording and URL prefixes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ._envelope import json_response
from ._operations import OperationMatcher
from ._routing import FastRoutes
from .faults import ASGIApp, FaultKind, FaultPlan, InjectedResponse
from .settings import EmulatorSettings
from .stats import OperationStats

__all__ = [
    "EmulatorApp",
    "FaultTargetBase",
    "allowed_methods",
    "control_endpoints",
    "dispatcher",
    "fault_plan",
]

Endpoint = Callable[[Request], Any]


class EmulatorApp(Starlette):
    """A Starlette app whose whole middleware stack sits inside an outer wrapper (the fault layer).

    The fault layer must be outermost: to drop a connection it needs the server's own ``send``. Just
    inside it, :class:`FastRoutes` serves the routes without the router's scan (answering an endpoint's
    exception as Starlette's error middleware would); anything else goes through Starlette's stack.
    """

    def __init__(self, *, outer: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self._outer = outer
        self._fast_routes = tuple(kwargs.get("routes") or ())
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._outer(FastRoutes(super().build_middleware_stack(), self._fast_routes))


def fault_plan(settings: EmulatorSettings, canonical: Callable[[str], str]) -> FaultPlan:
    """The fault plan of ``settings``; ``canonical`` resolves ``latency_ops`` names (ValueError if not)."""
    return FaultPlan(
        latency_seconds=settings.latency_ms / 1000,
        latency_by_op={canonical(name): ms / 1000 for name, ms in settings.latency_ops},
        fail_rate=settings.fail_rate,
        ambiguous_rate=settings.ambiguous_rate,
        rate_limited_share=settings.rate_limited_share,
        retry_after_seconds=settings.retry_after_seconds,
        seed=settings.seed,
    )


class FaultTargetBase:
    """How the fault layer sees a platform: which operation a request is, and the platform's 429/503.

    Subclasses render the refusal (:meth:`refusal`); operations in ``without_rate_limit`` (whose contract
    declares no 429) get the 503 instead.
    """

    def __init__(self, matcher: OperationMatcher, without_rate_limit: Iterable[str]) -> None:
        self._matcher = matcher
        self._without_rate_limit = frozenset(without_rate_limit)

    def operation_for(self, method: str, path: str) -> str | None:
        return self._matcher.operation_for(method, path)

    def refusal(self, operation: str, kind: FaultKind, retry_after_seconds: int) -> tuple[int, Response]:
        """The status and the enveloped response for an injected ``kind`` failure of ``operation``."""
        raise NotImplementedError

    def injected_failure(self, operation: str, kind: FaultKind, retry_after_seconds: int) -> InjectedResponse:
        if kind is FaultKind.RATE_LIMITED and operation in self._without_rate_limit:
            kind = FaultKind.UNAVAILABLE
        status, response = self.refusal(operation, kind, retry_after_seconds)
        headers = tuple((k, v) for k, v in response.headers.items() if k.lower() != "content-length")
        return InjectedResponse(status, headers, bytes(response.body), kind)


def dispatcher(
    path: str, by_method: dict[str, Endpoint], method_not_allowed: Callable[[Request, list[str]], Response]
) -> Endpoint:
    """One route's endpoint: the operation for the request's method, else ``method_not_allowed``."""
    allowed = sorted(by_method)

    async def dispatch(request: Request) -> Response:
        handler = by_method.get(request.method)
        if handler is None:
            return method_not_allowed(request, allowed)
        response: Response = await handler(request)
        return response

    dispatch.__name__ = path
    return dispatch


def allowed_methods(exc: HTTPException) -> list[str]:
    """The methods a 405 from the router names."""
    return sorted(m.strip() for m in (exc.headers or {}).get("Allow", "GET").split(","))


class _Resettable(Protocol):
    def reset(self) -> None: ...


def control_endpoints(
    state: _Resettable, stats: OperationStats, plan: FaultPlan
) -> tuple[Endpoint, Endpoint]:
    """``GET /_emulator/stats`` and ``POST /_emulator/reset`` (state, counters and fault seed)."""

    async def get_stats(request: Request) -> Response:
        return json_response(stats.snapshot())

    async def post_reset(request: Request) -> Response:
        state.reset()
        stats.reset()
        plan.reseed()
        return json_response({"reset": True})

    return get_stats, post_reset
