"""The platform-neutral HTTP core under the provider clients: send one attempt (capped read, every failure
mapped into the platform's typed tree), retry it by the platform's table, count calls, log.

A platform's ``HttpCore`` subclasses :class:`HttpCoreBase`, names its error classes and logger, and keeps
what its API alone defines: request headers, the error envelope (``error_for``), body parsing and which
failures are worth a retry. Nothing here logs headers or bodies: a log line is the operation id, method,
path (no query string), status, duration and attempt number.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Protocol, TypeVar

import httpx
from pydantic import ValidationError

from reconciler.providers._exchange import (
    Exchange,
    ExchangeConnectError,
    ExchangeLost,
    ExchangeTimeout,
    ExchangeTooLarge,
    Params,
)
from reconciler.providers._h1 import H1Exchange
from reconciler.providers._httpx_exchange import HttpxExchange
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
    "open_exchange",
    "proxies_configured",
]


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
    headers: Mapping[str, str]  # look names up in lower case
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
    """Owns the exchange (the wire), the attempt/retry loop and the mapping of wire failures.

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
        exchange: Exchange,
        *,
        api_key: str,
        retry: RetryPolicy,
        max_response_bytes: int,
        stats: CallStats | None = None,
    ) -> None:
        self.exchange = exchange
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

    # ── secrets ─────────────────────────────────────────────────────────────────────────────────────────

    def scrub(self, text: str) -> str:
        """Remove the API key from server- or library-supplied text before it can reach an error or log."""
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, "***")
        return text

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
        # Checked once per attempt: a disabled debug log costs neither the clock nor the formatting.
        logging_on = self.logger.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if logging_on else 0.0
        status: int | str = "-"
        try:
            try:
                raw = await self.exchange.exchange(
                    method, url, params=params, headers=headers, content=content, cap=limit
                )
            except ExchangeConnectError as exc:
                status = "connect-error"
                raise self.connect_error(self.scrub(str(exc)), method=method, path=log_path) from None
            except ExchangeTimeout as exc:
                status = "timeout"
                raise self.timeout_error(
                    self.scrub(str(exc)), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            except ExchangeTooLarge as exc:
                status = exc.status
                raise self.too_large_error(
                    self.scrub(str(exc)), method=method, path=log_path, status=exc.status
                ) from None
            except ExchangeLost as exc:
                status = "lost"
                raise self.lost_error(
                    self.scrub(str(exc)), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            status = raw.status
            return Reply(raw.status, raw.content, raw.headers, method, log_path)
        finally:
            if logging_on:
                self._log_attempt(operation, log_path, status, started, attempt)

    def _log_attempt(
        self, operation: OperationLike, log_path: str, status: int | str, started: float, attempt: int
    ) -> None:
        self.logger.debug(
            "%s %s %s %s -> %s in %.1f ms (attempt %d)",
            self.log_prefix,
            operation.id,
            operation.method,
            log_path,
            status,
            (time.perf_counter() - started) * 1000.0,
            attempt,
        )

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


def proxies_configured() -> bool:
    """Whether the environment names an HTTP proxy (only the httpx path routes through one)."""
    return any(scheme in urllib.request.getproxies() for scheme in ("http", "https", "all"))


def open_exchange(
    *,
    transport: httpx.AsyncBaseTransport | None,
    timeout: float | httpx.Timeout,
    max_connections: int,
    user_agent: str,
) -> Exchange:
    """The exchange under a provider client: redirects never followed, at most ``max_connections`` in
    flight and kept alive, a 10 s connect timeout unless ``timeout`` says otherwise, TLS always verified
    (``SSL_CERT_FILE``/``SSL_CERT_DIR`` name a private CA)."""
    limits = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=10.0)
    if transport is None and not proxies_configured():
        return H1Exchange(max_connections=max_connections, timeout=limits, user_agent=user_agent)
    client = httpx.AsyncClient(
        transport=transport,
        timeout=limits,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        verify=True,
        follow_redirects=False,
        # An injected transport must see every request: environment proxies would bypass it.
        trust_env=transport is None,
        headers={"User-Agent": user_agent},
    )
    return HttpxExchange(client)


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
        await self._core.exchange.aclose()
