"""The request loop under :class:`ArkerClient`: send, read (capped), classify, retry, count, log.

Everything httpx or pydantic can raise is converted here into the typed tree of ``errors.py``. Nothing in
this module logs headers or bodies: a log line is the operation id, method, path (no query string),
status, duration and attempt number.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from .errors import (
    ArkerAPIError,
    ArkerConnectError,
    ArkerConnectionLost,
    ArkerError,
    ArkerProtocolError,
    ArkerResponseTooLarge,
    ArkerTimeoutError,
    ArkerTransportError,
    api_error_class,
)
from .retry import Replay, RetryPolicy, parse_retry_after, should_retry

__all__ = ["CallStats", "Operation", "Reply", "logger"]

logger = logging.getLogger("reconciler.providers.arker")

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """One contract operation: its id (for stats and logs), method, plane and replay safety."""

    id: str
    method: str
    control: bool
    replay: Replay


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


def _envelope_fields(content: bytes) -> dict[str, Any] | None:
    """The envelope's ``error`` object, read leniently: a server error must become a typed error even when
    its envelope is incomplete. ``None`` when there is no envelope at all (a proxy's HTML page)."""
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) else None


async def _close_quietly(response: httpx.Response) -> None:
    # Closing a stream that already broke can raise again; the first failure is the one reported.
    with contextlib.suppress(Exception):
        await response.aclose()


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def describe_validation_error(error: ValidationError, limit: int = 3) -> str:
    """Field locations and messages only: never the offending input, which may be anything."""
    items = error.errors(include_url=False, include_input=False, include_context=False)
    parts = []
    for item in items[:limit]:
        location = ".".join(str(part) for part in item["loc"]) or "body"
        parts.append(f"{location}: {item['msg']}")
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(parts) + more


def _maybe_processed(error: ArkerError) -> bool:
    """An attempt that was sent and whose answer was lost: the server may have acted on it."""
    return isinstance(error, ArkerTransportError) and not isinstance(error, ArkerConnectError)


class HttpCore:
    """Owns the ``httpx.AsyncClient``, the retry loop and the error mapping. Used by ``ArkerClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        retry: RetryPolicy,
        max_response_bytes: int,
        stats: CallStats,
    ) -> None:
        self.http = http
        self._api_key = api_key
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self.stats = stats

    # ── secrets ─────────────────────────────────────────────────────────────────────────────────────────

    def scrub(self, text: str) -> str:
        """Remove the API key from server- or library-supplied text before it can reach an error or log."""
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, "***")
        return text

    def _scrub_json(self, value: dict[str, Any]) -> dict[str, Any]:
        if not self._api_key:
            return value
        raw = json.dumps(value)
        if self._api_key not in raw:
            return value
        scrubbed: dict[str, Any] = json.loads(raw.replace(json.dumps(self._api_key)[1:-1], "***"))
        return scrubbed

    # ── one attempt ─────────────────────────────────────────────────────────────────────────────────────

    async def send_once(
        self,
        operation: Operation,
        url: str,
        log_path: str,
        *,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        attempt: int,
        cap: int,
    ) -> Reply:
        method = operation.method
        ambiguous = operation.replay is Replay.UNSAFE
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
                raise ArkerConnectError(self._reason(exc), method=method, path=log_path) from None
            except httpx.TimeoutException as exc:
                status = type(exc).__name__
                raise ArkerTimeoutError(
                    self._reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            except httpx.HTTPError as exc:
                status = type(exc).__name__
                raise ArkerConnectionLost(
                    self._reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            except Exception as exc:
                # A transport (an ASGI app, a custom transport) failing outside httpx's own error types:
                # from our side of the wire this is a lost exchange like any other. The type is kept in
                # the message so a bug there stays diagnosable.
                status = type(exc).__name__
                raise ArkerConnectionLost(
                    f"transport failed: {type(exc).__name__}",
                    method=method,
                    path=log_path,
                    ambiguous=ambiguous,
                ) from None
            status = response.status_code
            try:
                body = await self._read(response, cap, method, log_path)
            except httpx.TimeoutException as exc:
                raise ArkerTimeoutError(
                    self._reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            except httpx.HTTPError as exc:
                raise ArkerConnectionLost(
                    self._reason(exc), method=method, path=log_path, ambiguous=ambiguous
                ) from None
            except ArkerError:
                raise
            except Exception as exc:
                raise ArkerConnectionLost(
                    f"transport failed: {type(exc).__name__}",
                    method=method,
                    path=log_path,
                    ambiguous=ambiguous,
                ) from None
            finally:
                await _close_quietly(response)
            return Reply(response.status_code, body, response.headers, method, log_path)
        finally:
            logger.debug(
                "arker %s %s %s -> %s in %.1f ms (attempt %d)",
                operation.id,
                method,
                log_path,
                status,
                (time.perf_counter() - started) * 1000.0,
                attempt,
            )

    def _reason(self, exc: Exception) -> str:
        detail = self.scrub(str(exc)).strip()
        name = type(exc).__name__
        return f"{name}: {detail}" if detail else name

    async def _read(self, response: httpx.Response, cap: int, method: str, path: str) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ArkerResponseTooLarge(
                f"response declares {int(declared)} bytes, above the {cap}-byte cap",
                method=method,
                path=path,
                status=response.status_code,
            )
        buffer = bytearray()
        # aiter_bytes yields decoded content: a compressed bomb is bounded by what it inflates to.
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > cap:
                raise ArkerResponseTooLarge(
                    f"response body exceeds the {cap}-byte cap",
                    method=method,
                    path=path,
                    status=response.status_code,
                )
        return bytes(buffer)

    # ── the loop ────────────────────────────────────────────────────────────────────────────────────────

    async def request(
        self,
        operation: Operation,
        url: str,
        log_path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        authorize: bool = True,
        ok: tuple[int, ...] = (200,),
        replay: Replay | None = None,
        cap: int | None = None,
    ) -> Reply:
        """Send until a status in ``ok`` arrives, a non-retryable failure happens or attempts run out."""
        replay = operation.replay if replay is None else replay
        all_headers = {"Accept": "application/json"}
        if content is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        if authorize:
            all_headers["Authorization"] = f"Bearer {self._api_key}"
        limit = self.max_response_bytes if cap is None else cap
        attempt = 0
        lost = False  # an earlier attempt was sent but its answer lost: the server may have acted on it
        while True:
            attempt += 1
            error: ArkerError
            try:
                reply = await self.send_once(
                    operation,
                    url,
                    log_path,
                    params=params,
                    content=content,
                    headers=all_headers,
                    attempt=attempt,
                    cap=limit,
                )
            except ArkerTransportError as exc:
                if replay is Replay.SAFE:
                    exc.ambiguous = False
                error = exc
            else:
                if reply.status in ok:
                    return reply
                error = self.error_for(reply)
            if attempt >= self.retry.max_attempts or not should_retry(error, replay):
                if isinstance(error, (ArkerAPIError, ArkerTransportError)) and (
                    lost or _maybe_processed(error)
                ):
                    error.ambiguous = True  # the last or an earlier attempt may have done the work
                raise error
            lost = lost or _maybe_processed(error)
            hint = error.retry_after if isinstance(error, ArkerAPIError) else None
            delay = self.retry.delay(attempt - 1, hint)
            self.stats.record_retry(operation.id)
            logger.debug(
                "arker %s %s %s: retry %d in %.3f s after %s",
                operation.id,
                operation.method,
                log_path,
                attempt,
                delay,
                getattr(error, "code", type(error).__name__),
            )
            await self.retry.sleep(delay)

    # ── responses ───────────────────────────────────────────────────────────────────────────────────────

    def error_for(self, reply: Reply) -> ArkerError:
        """The typed error for a non-success reply."""
        if 200 <= reply.status < 400:
            return ArkerProtocolError(
                f"unexpected HTTP {reply.status}", method=reply.method, path=reply.path, status=reply.status
            )
        fields = _envelope_fields(reply.content) or {}
        cls, code = api_error_class(_str_or_none(fields.get("code")), reply.status)
        hint = fields.get("retry_after_seconds")
        retry_after: float | None
        if isinstance(hint, (int, float)) and not isinstance(hint, bool) and hint >= 0:
            retry_after = float(hint)
        else:
            retry_after = parse_retry_after(reply.headers.get("retry-after"))
        message = _str_or_none(fields.get("message"))
        request_id = _str_or_none(fields.get("request_id"))
        details = fields.get("details")
        recovery = fields.get("recovery")
        return cls(
            self.scrub(message) if message else f"HTTP {reply.status} without an Arker error envelope",
            status=reply.status,
            code=code,
            method=reply.method,
            path=reply.path,
            request_id=self.scrub(request_id) if request_id else None,
            retry_after=retry_after,
            details=self._scrub_json(details) if isinstance(details, dict) else None,
            recovery=self._scrub_json(recovery) if isinstance(recovery, dict) else None,
        )

    def parse(self, model: type[ModelT], reply: Reply) -> ModelT:
        """Validate the body strictly against ``model``; a mismatch is an ``ArkerProtocolError``."""
        try:
            return model.model_validate_json(reply.content, strict=True)
        except ValidationError as exc:
            raise ArkerProtocolError(
                f"response does not match {model.__name__}: {describe_validation_error(exc)}",
                method=reply.method,
                path=reply.path,
                status=reply.status,
            ) from None
