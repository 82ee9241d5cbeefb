"""``GET /healthz``."""

from __future__ import annotations

from starlette.responses import Response

from .context import Ctx
from .errors import json_response

__all__ = ["health"]


def health(ctx: Ctx) -> Response:
    return json_response({"status": "ok"})
