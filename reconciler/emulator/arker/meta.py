"""``GET /v1/health``, ``GET /v1/regions`` and ``GET /v1/whoami``."""

from __future__ import annotations

from starlette.responses import Response

from .clock import now_rfc3339
from .context import Ctx
from .errors import json_response
from .placement import PLATFORM, PROVIDER, REGION

__all__ = ["health", "list_regions", "whoami"]


def health(ctx: Ctx) -> Response:
    return json_response({"status": "ok", "timestamp": now_rfc3339()})


def list_regions(ctx: Ctx) -> Response:
    # The regional endpoint is this emulator, as the client reached it (so any base URL works).
    placement = {"provider": PROVIDER, "region": REGION, "endpoint": ctx.api_base, "platforms": [PLATFORM]}
    return json_response({"regions": [placement]})


def whoami(ctx: Ctx) -> Response:
    return json_response({"org_id": ctx.org.org_id, "org_name": ctx.org.org_name})
