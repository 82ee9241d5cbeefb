"""``Idempotency-Key`` handling shared by fork and createRun."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from .body import Body
from .context import Ctx
from .errors import ApiError

__all__ = ["idempotency_key", "request_fingerprint"]

_KEY = re.compile(r"^[ -~]{1,64}$")


def idempotency_key(ctx: Ctx) -> str | None:
    """The request's key, validated as the contract's parameter schema says (1-64 printable ASCII)."""
    key = ctx.header("idempotency-key")
    if key is not None and not _KEY.match(key):
        raise ApiError.field("Idempotency-Key", "must be 1-64 printable ASCII characters")
    return key


def request_fingerprint(request: Body, sent: dict[str, Any] | None = None) -> str:
    """What makes two requests "the same": their sent fields, canonically ordered (nulls included).
    ``sent`` is ``request.sent()`` when the caller has it already."""
    text = json.dumps(request.sent() if sent is None else sent, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
