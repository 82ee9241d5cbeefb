"""The request loop under :class:`ArkerClient`: send, read (capped), classify, retry, count, log.

Everything httpx or pydantic can raise is converted here into the typed tree of ``errors.py``; the
attempt/retry loop itself is the shared :class:`~reconciler.providers._http_core.HttpCoreBase`. Nothing in
this module logs headers or bodies: a log line is the operation id, method, path (no query string),
status, duration and attempt number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

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
    ArkerConnectError,
    ArkerConnectionLost,
    ArkerError,
    ArkerProtocolError,
    ArkerResponseTooLarge,
    ArkerTimeoutError,
    api_error_class,
)
from .retry import Replay, parse_retry_after, should_retry

__all__ = ["CallStats", "HttpCore", "Operation", "Reply", "describe_validation_error", "logger"]

logger = logging.getLogger("reconciler.providers.arker")

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class Operation:
    """One contract operation: its id (for stats and logs), method, plane and replay safety."""

    id: str
    method: str
    control: bool
    replay: Replay


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class HttpCore(HttpCoreBase):
    """The shared core with Arker's errors, headers and envelope. Used by ``ArkerClient``."""

    logger = logger
    log_prefix = "arker"
    root_error = ArkerError
    connect_error = ArkerConnectError
    timeout_error = ArkerTimeoutError
    lost_error = ArkerConnectionLost
    too_large_error = ArkerResponseTooLarge

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cached_headers: dict[bool, Mapping[str, str]] = {}

    def _scrub_json(self, value: dict[str, Any]) -> dict[str, Any]:
        if not self._api_key:
            return value
        raw = json.dumps(value)
        if self._api_key not in raw:
            return value
        scrubbed: dict[str, Any] = json.loads(raw.replace(json.dumps(self._api_key)[1:-1], "***"))
        return scrubbed

    def _headers(self, body: bool, extra: Mapping[str, str] | None, authorize: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        if authorize:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _common_headers(self, body: bool) -> Mapping[str, str]:
        cached = self._cached_headers.get(body)
        if cached is None:
            # Read-only: the same mapping goes with every request of this client.
            cached = self._cached_headers[body] = MappingProxyType(self._headers(body, None, True))
        return cached

    def should_retry(self, error: ProviderError, replay: Replay) -> bool:
        return isinstance(error, ArkerError) and should_retry(error, replay)

    def request(
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
    ) -> Coroutine[Any, Any, Reply]:
        """Send until a status in ``ok`` arrives, a non-retryable failure happens or attempts run out.

        Returns the retry loop's coroutine (awaited by the caller): no coroutine layer of its own."""
        all_headers: Mapping[str, str]
        if not headers and authorize:
            all_headers = self._common_headers(content is not None)  # most calls: built once per client
        else:
            all_headers = self._headers(content is not None, headers, authorize)
        return self.send_with_retries(
            operation,
            url,
            log_path,
            params=params,
            content=content,
            headers=all_headers,
            ok=ok,
            replay=replay,
            cap=cap,
        )

    # ── responses ───────────────────────────────────────────────────────────────────────────────────────

    def error_for(self, reply: Reply) -> ArkerError:
        """The typed error for a non-success reply."""
        if 200 <= reply.status < 400:
            return ArkerProtocolError(
                f"unexpected HTTP {reply.status}", method=reply.method, path=reply.path, status=reply.status
            )
        fields = envelope_fields(reply.content) or {}
        cls, code = api_error_class(_str_or_none(fields.get("code")), reply.status)
        retry_after = body_retry_after(fields.get("retry_after_seconds"))
        if retry_after is None:
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
