"""The request loop under :class:`FastvmClient`: send, read (capped), classify, retry, count.

Everything httpx or pydantic can raise becomes the typed tree of ``errors.py`` here. Log lines carry the
operation, method, path (no query), status, duration and attempt: never headers or bodies.
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
from pydantic import TypeAdapter, ValidationError

from .errors import (
    FastvmAPIError,
    FastvmConnectError,
    FastvmConnectionLost,
    FastvmError,
    FastvmProtocolError,
    FastvmTimeoutError,
    FastvmTransportError,
    api_error_class,
)
from .retry import Replay, RetryPolicy, parse_retry_after, should_retry

__all__ = ["CallStats", "HttpCore", "Operation", "Reply", "logger"]

logger = logging.getLogger("reconciler.providers.fastvm")
T = TypeVar("T")


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    replay: Replay


@dataclass(frozen=True)
class Reply:
    status: int
    content: bytes
    headers: httpx.Headers
    method: str
    path: str


class CallStats:
    """HTTP requests sent per operation id (every attempt); ``retries`` counts the repeats alone."""

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


def _describe(error: ValidationError, limit: int = 3) -> str:
    """Locations and messages only: never the offending input."""
    items = error.errors(include_url=False, include_input=False, include_context=False)
    parts = [f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}" for item in items[:limit]]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return "; ".join(parts) + more


class HttpCore:
    def __init__(
        self, http: httpx.AsyncClient, *, api_key: str, retry: RetryPolicy, max_response_bytes: int
    ) -> None:
        self.http = http
        self._api_key = api_key
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self.stats = CallStats()

    def scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key and self._api_key in text else text

    def _reason(self, exc: Exception) -> str:
        detail = self.scrub(str(exc)).strip()
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__

    async def send_once(
        self,
        operation: Operation,
        url: str,
        path: str,
        *,
        params: tuple[tuple[str, str], ...] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        attempt: int,
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
                raise FastvmConnectError(self._reason(exc), method=method, path=path) from None
            except httpx.TimeoutException as exc:
                status = type(exc).__name__
                raise FastvmTimeoutError(
                    self._reason(exc), method=method, path=path, ambiguous=ambiguous
                ) from None
            except Exception as exc:  # httpx.HTTPError, or a transport failing outside httpx's types
                status = type(exc).__name__
                raise FastvmConnectionLost(
                    self._reason(exc), method=method, path=path, ambiguous=ambiguous
                ) from None
            status = response.status_code
            try:
                body = await self._read(response, method, path)
            except FastvmError:
                raise
            except httpx.TimeoutException as exc:
                raise FastvmTimeoutError(
                    self._reason(exc), method=method, path=path, ambiguous=ambiguous
                ) from None
            except Exception as exc:
                raise FastvmConnectionLost(
                    self._reason(exc), method=method, path=path, ambiguous=ambiguous
                ) from None
            finally:
                with contextlib.suppress(Exception):
                    await response.aclose()
            return Reply(response.status_code, body, response.headers, method, path)
        finally:
            logger.debug(
                "fastvm %s %s %s -> %s in %.1f ms (attempt %d)",
                operation.id,
                method,
                path,
                status,
                (time.perf_counter() - started) * 1000.0,
                attempt,
            )

    async def _read(self, response: httpx.Response, method: str, path: str) -> bytes:
        cap = self.max_response_bytes
        buffer = bytearray()
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > cap:
                raise FastvmProtocolError(
                    f"response body exceeds the {cap}-byte cap",
                    method=method,
                    path=path,
                    status=response.status_code,
                )
        return bytes(buffer)

    async def request(
        self,
        operation: Operation,
        url: str,
        path: str,
        *,
        params: tuple[tuple[str, str], ...] | None = None,
        body: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        done_on_retry: tuple[int, ...] = (),
        replay: Replay | None = None,
    ) -> Reply:
        """Send until a status in ``ok`` arrives (or, on a repeat, one in ``done_on_retry``: a DELETE whose
        first attempt worked), a non-retryable failure happens or the attempts run out."""
        replay = operation.replay if replay is None else replay
        headers = {"Accept": "application/json", "X-API-Key": self._api_key}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        attempt = 0
        while True:
            attempt += 1
            error: FastvmError
            try:
                reply = await self.send_once(
                    operation, url, path, params=params, content=content, headers=headers, attempt=attempt
                )
            except FastvmTransportError as exc:
                if replay is Replay.SAFE:
                    exc.ambiguous = False
                error = exc
            else:
                if reply.status in ok or (attempt > 1 and reply.status in done_on_retry):
                    return reply
                error = self.error_for(reply)
            if attempt >= self.retry.max_attempts or not should_retry(error, replay):
                raise error
            hint = error.retry_after if isinstance(error, FastvmAPIError) else None
            self.stats.record_retry(operation.id)
            await self.retry.sleep(self.retry.delay(attempt - 1, hint))

    def error_for(self, reply: Reply) -> FastvmError:
        if 200 <= reply.status < 400:
            return FastvmProtocolError(
                f"unexpected HTTP {reply.status}", method=reply.method, path=reply.path, status=reply.status
            )
        fields: dict[str, Any] = {}
        with contextlib.suppress(ValueError, RecursionError):
            document = json.loads(reply.content)
            if isinstance(document, dict) and isinstance(document.get("error"), dict):
                fields = document["error"]
        code = fields.get("code") if isinstance(fields.get("code"), str) else None
        cls, effective = api_error_class(code or None, reply.status)
        hint = fields.get("retryAfterSeconds")
        retry_after = (
            float(hint)
            if isinstance(hint, (int, float)) and not isinstance(hint, bool) and hint >= 0
            else parse_retry_after(reply.headers.get("retry-after"))
        )
        message = fields.get("message")
        request_id = fields.get("requestId")
        details = fields.get("details")
        return cls(
            self.scrub(message) if isinstance(message, str) and message else f"HTTP {reply.status}",
            status=reply.status,
            code=effective,
            method=reply.method,
            path=reply.path,
            request_id=self.scrub(request_id) if isinstance(request_id, str) else None,
            retry_after=retry_after,
            details=json.loads(self.scrub(json.dumps(details))) if isinstance(details, dict) else None,
        )

    def parse(self, adapter: TypeAdapter[T], reply: Reply) -> T:
        try:
            return adapter.validate_json(reply.content, strict=True)
        except ValidationError as exc:
            raise FastvmProtocolError(
                f"response does not match the API: {_describe(exc)}",
                method=reply.method,
                path=reply.path,
                status=reply.status,
            ) from None
