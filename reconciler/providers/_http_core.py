"""The platform-neutral HTTP core under the provider clients: send one attempt (capped read, every failure
mapped into the platform's typed tree), retry it by the platform's table, count calls, log.

A platform's ``HttpCore`` subclasses :class:`HttpCoreBase`, names its error classes and logger, and keeps
what its API alone defines: request headers, the error envelope (``error_for``), body parsing and which
failures are worth a retry. Nothing here logs headers or bodies: a log line is the operation id, method,
path (no query string), status, duration and attempt number.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from reconciler.providers._retry import Replay, RetryPolicy
from reconciler.providers.errors_base import (
    ProviderAPIError,
    ProviderError,
    ProviderProtocolError,
    ProviderTransportError,
)

__all__ = [
    "CallStats",
    "ClientLifecycle",
    "HttpCoreBase",
    "OperationLike",
    "Params",
    "Reply",
    "body_retry_after",
    "describe_validation_error",
    "envelope_fields",
    "http_client",
]

# Query parameters as httpx takes them: a mapping, or pairs (a name may repeat).
Params = Mapping[str, str] | tuple[tuple[str, str], ...]


class OperationLike(Protocol):
    """What the core needs of a platform's operation: id (stats, logs), method and replay safety."""

    @property
    def id(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def replay(self) -> Replay: ...


@dataclass(frozen=True)
class Reply:
    """A complete HTTP response, body read within the cap."""

    status: int
    content: bytes
    headers: httpx.Headers
    method: str
    path: str


class CallStats:
    """HTTP requests sent, per operation id. Every attempt counts; ``retries`` counts the repeats alone."""

    def __init__(self) -> None:
        self._calls: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()

    def record_call(self, operation_id: str) -> None:
        self._calls[operation_id] += 1

    def record_retry(self, operation_id: str) -> None:
        self._retries[operation_id] += 1

    @property
    def calls(self) -> dict[str, int]:
        return dict(sorted(self._calls.items()))

    @property
    def retries(self) -> dict[str, int]:
        return dict(sorted(self._retries.items()))

    @property
    def total(self) -> int:
        return sum(self._calls.values())

    def reset(self) -> None:
        self._calls.clear()
        self._retries.clear()

    def __repr__(self) -> str:
        return f"CallStats(total={self.total}, calls={self.calls}, retries={self.retries})"


def describe_validation_error(error: ValidationError, limit: int = 3) -> str:
    """Field locations and messages only: never the offending input, which may be anything."""
    items = error.errors(include_url=False, include_input=False, include_context=False)
    parts = []
    for item in items[:limit]:
        location = ".".join(str(part) for part in item["loc"]) or "body"
        parts.append(f"{location}: {item['msg']}")
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(parts) + more


def envelope_fields(content: bytes) -> dict[str, Any] | None:
    """The envelope's ``error`` object, read leniently: a server error must become a typed error even when
    its envelope is incomplete. ``None`` when there is no envelope at all (a proxy's HTML page)."""
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else None


def body_retry_after(hint: Any) -> float | None:
    """The envelope's retry hint in seconds, when it is a non-negative number."""
    if isinstance(hint, (int, float)) and not isinstance(hint, bool) and hint >= 0:
        return float(hint)
    return None


class HttpCoreBase:
    """Owns the ``httpx.AsyncClient``, the attempt/retry loop and the transport error mapping.

    Subclasses set the class attributes (their error classes, logger and log prefix) and implement
    :meth:`error_for` and :meth:`should_retry`.
    """

    logger: ClassVar[logging.Logger]
    log_prefix: ClassVar[str]
    root_error: ClassVar[type[ProviderError]]
    connect_error: ClassVar[type[ProviderTransportError]]
    timeout_error: ClassVar[type[ProviderTransportError]]
    lost_error: ClassVar[type[ProviderTransportError]]
    too_large_error: ClassVar[type[ProviderProtocolError]]
    # Whether a refusal after an earlier lost answer (or a lost last answer) is marked ``ambiguous``, and
    # whether each retry is logged: platform choices, kept as each client had them.
    mark_ambiguous: ClassVar[bool] = True
    log_retries: ClassVar[bool] = True

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        retry: RetryPolicy,
        max_response_bytes: int,
        stats: CallStats | None = None,
    ) -> None:
        self.http = http
        self._api_key = api_key
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self.stats = CallStats() if stats is None else stats

    # ── platform hooks ──────────────────────────────────────────────────────────────────────────────────

    def error_for(self, reply: Reply) -> ProviderError:
        """The typed error for a non-success reply."""
        raise NotImplementedError

    def should_retry(self, error: ProviderError, replay: Replay) -> bool:
        """The platform's retry table."""
        raise NotImplementedError

    def lost_reason(self, exc: Exception) -> str:
        """The message of a lost exchange caused by ``exc``."""
        return self._reason(exc)

    # ── secrets ─────────────────────────────────────────────────────────────────────────────────────────

    def scrub(self, text: str) -> str:
        """Remove the API key from server- or library-supplied text before it can reach an error or log."""
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, "***")
        return text

    def _reason(self, exc: Exception) -> str:
        detail = self.scrub(str(exc)).strip()
        name = type(exc).__name__
        return f"{name}: {detail}" if detail else name

    # ── one attempt ─────────────────────────────────────────────────────────────────────────────────────

    async def send_once(
        self,
        operation: OperationLike,
        url: str,
        log_path: str,
        *,
        params: Params | None,
        content: bytes | None,
        headers: Mapping[str, str],
        attempt: int,
        cap: int | None = None,
    ) -> Reply:
        method = operation.method
        ambiguous = operation.replay is Replay.UNSAFE
        limit = self.max_response_bytes if cap is None else cap
        self.stats.record_call(operation.id)
        started = time.perf_counter()
        status: int | str = "-"
        try:
            try:
                request = self.http.build_request(
                    method, url, params=params, content=content, headers=headers
                )
                response = await self.http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                status = type(exc).__name__
                raise self.connect_error(self._reason(exc), method=method, path=log_path) from None
            except httpx.TimeoutException as exc:
                status = type(exc).__name__
                raise self.timeout_error(
                    self._reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            except Exception as exc:
                # httpx.HTTPError, or a transport (an ASGI app, a custom transport) failing outside httpx's
                # own types: from our side of the wire a lost exchange like any other.
                status = type(exc).__name__
                raise self.lost_error(
                    self.lost_reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            status = response.status_code
            try:
                body = await self._read(response, limit, method, log_path)
            except self.root_error:
                raise
            except httpx.TimeoutException as exc:
                raise self.timeout_error(
                    self._reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            except Exception as exc:
                raise self.lost_error(
                    self.lost_reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            finally:
                # Closing a stream that already broke can raise again; the first failure is the one reported.
                with contextlib.suppress(Exception):
                    await response.aclose()
            return Reply(response.status_code, body, response.headers, method, log_path)
        finally:
            self.logger.debug(
                "%s %s %s %s -> %s in %.1f ms (attempt %d)",
                self.log_prefix,
                operation.id,
                method,
                log_path,
                status,
                (time.perf_counter() - started) * 1000.0,
                attempt,
            )

    async def _read(self, response: httpx.Response, cap: int, method: str, path: str) -> bytes:
        buffer = bytearray()
        # aiter_bytes yields decoded content: a compressed bomb is bounded by what it inflates to.
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > cap:
                raise self.too_large_error(
                    f"response body exceeds the {cap}-byte cap",
                    method=method,
                    path=path,
                    status=response.status_code,
                )
        return bytes(buffer)

    # ── the loop ────────────────────────────────────────────────────────────────────────────────────────

    def _maybe_processed(self, error: ProviderError) -> bool:
        """An attempt that was sent and whose answer was lost: the server may have acted on it."""
        return isinstance(error, ProviderTransportError) and not isinstance(error, self.connect_error)

    async def send_with_retries(
        self,
        operation: OperationLike,
        url: str,
        log_path: str,
        *,
        params: Params | None,
        content: bytes | None,
        headers: Mapping[str, str],
        ok: tuple[int, ...],
        done_on_retry: tuple[int, ...] = (),
        replay: Replay | None = None,
        cap: int | None = None,
    ) -> Reply:
        """Send until a status in ``ok`` arrives (or, on a repeat, one in ``done_on_retry``: a DELETE whose
        first attempt worked), a non-retryable failure happens or the attempts run out."""
        replay = operation.replay if replay is None else replay
        attempt = 0
        lost = False  # an earlier attempt was sent but its answer lost: the server may have acted on it
        while True:
            attempt += 1
            error: ProviderError
            try:
                reply = await self.send_once(
                    operation,
                    url,
                    log_path,
                    params=params,
                    content=content,
                    headers=headers,
                    attempt=attempt,
                    cap=cap,
                )
            except ProviderTransportError as exc:
                if replay is Replay.SAFE:
                    exc.ambiguous = False
                error = exc
            else:
                if reply.status in ok or (attempt > 1 and reply.status in done_on_retry):
                    return reply
                error = self.error_for(reply)
            if attempt >= self.retry.max_attempts or not self.should_retry(error, replay):
                if (
                    self.mark_ambiguous
                    and isinstance(error, (ProviderAPIError, ProviderTransportError))
                    and (lost or self._maybe_processed(error))
                ):
                    error.ambiguous = True  # the last or an earlier attempt may have done the work
                raise error
            lost = lost or self._maybe_processed(error)
            hint = error.retry_after if isinstance(error, ProviderAPIError) else None
            delay = self.retry.delay(attempt - 1, hint)
            self.stats.record_retry(operation.id)
            if self.log_retries:
                self.logger.debug(
                    "%s %s %s %s: retry %d in %.3f s after %s",
                    self.log_prefix,
                    operation.id,
                    operation.method,
                    log_path,
                    attempt,
                    delay,
                    getattr(error, "code", type(error).__name__),
                )
            await self.retry.sleep(delay)


def http_client(
    *,
    transport: httpx.AsyncBaseTransport | None,
    trust_env: bool,
    timeout: float | httpx.Timeout,
    max_connections: int,
    user_agent: str,
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` under a provider client: no redirects followed, a pool of
    ``max_connections`` kept alive, a 10 s connect timeout unless ``timeout`` says otherwise."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        verify=True,
        follow_redirects=False,
        trust_env=trust_env,
        headers={"User-Agent": user_agent},
    )


_Client = TypeVar("_Client", bound="ClientLifecycle")


class ClientLifecycle:
    """``async with`` support for a provider client: leaving the block closes its HTTP connections."""

    _core: HttpCoreBase

    async def __aenter__(self: _Client) -> _Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._core.http.aclose()
