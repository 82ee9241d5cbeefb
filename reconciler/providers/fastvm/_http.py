"""The request loop under :class:`FastvmClient`: send, read (capped), classify, retry, count.

Everything httpx or pydantic can raise becomes the typed tree of ``errors.py`` here. Log lines carry the
operation, method, path (no query), status, duration and attempt: never headers or bodies.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from reconciler.providers._http_core import (
    CallStats,
    HttpCoreBase,
    Reply,
    body_retry_after,
    describe_validation_error,
    envelope_fields,
)
from reconciler.providers.errors_base import ProviderError

from .errors import (
    FastvmConnectError,
    FastvmConnectionLost,
    FastvmError,
    FastvmProtocolError,
    FastvmTimeoutError,
    api_error_class,
)
from .retry import Replay, parse_retry_after, should_retry

__all__ = ["CallStats", "HttpCore", "Operation", "Reply", "logger"]

logger = logging.getLogger("reconciler.providers.fastvm")
T = TypeVar("T")


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    replay: Replay


class HttpCore(HttpCoreBase):
    """The shared core with FastVM's errors, headers and envelope. Used by ``FastvmClient``."""

    logger = logger
    log_prefix = "fastvm"
    root_error = FastvmError
    connect_error = FastvmConnectError
    timeout_error = FastvmTimeoutError
    lost_error = FastvmConnectionLost
    too_large_error = FastvmProtocolError
    # The FastVM client never marked a refusal ambiguous nor logged its retries: kept as it was.
    mark_ambiguous = False
    log_retries = False

    def should_retry(self, error: ProviderError, replay: Replay) -> bool:
        return isinstance(error, FastvmError) and should_retry(error, replay)

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
        headers = {"Accept": "application/json", "X-API-Key": self._api_key}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        return await self.send_with_retries(
            operation,
            url,
            path,
            params=params,
            content=content,
            headers=headers,
            ok=ok,
            done_on_retry=done_on_retry,
            replay=replay,
        )

    def error_for(self, reply: Reply) -> FastvmError:
        if 200 <= reply.status < 400:
            return FastvmProtocolError(
                f"unexpected HTTP {reply.status}", method=reply.method, path=reply.path, status=reply.status
            )
        fields = envelope_fields(reply.content) or {}
        code = fields.get("code") if isinstance(fields.get("code"), str) else None
        cls, effective = api_error_class(code or None, reply.status)
        retry_after = body_retry_after(fields.get("retryAfterSeconds"))
        if retry_after is None:
            retry_after = parse_retry_after(reply.headers.get("retry-after"))
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
                f"response does not match the API: {describe_validation_error(exc)}",
                method=reply.method,
                path=reply.path,
                status=reply.status,
            ) from None
