"""A local stand-in for the Arker public API (SPEC §5), for demos and tests.

``create_app(settings)`` returns a Starlette app speaking the contract in the ``arker`` package's
``_openapi.json`` (mount it in process with ``httpx.ASGITransport(app)``); ``serve(settings)`` serves
it on loopback until SIGINT/SIGTERM; ``running(settings)`` runs it in a background thread on a free
port and yields the base URL (``http://127.0.0.1:PORT/api``). The API key is
``settings.primary_api_key``. Test-only extras: ``GET /_emulator/stats``, ``POST /_emulator/reset``.

What is emulated, the timing knobs and every deviation from the contract: ``docs/emulator.md``.
The emulator imports nothing else of arkerctl: it must not share our client's assumptions.

``EmulatorSettings(platform="fastvm")`` makes ``create_app``/``running``/``serve`` speak the FastVM API
instead (``reconciler.emulator.fastvm``, base URL without ``/api``; see ``docs/fastvm.md``).
"""

from __future__ import annotations

from .arker import EmulatorApp
from .arker import create_app as _arker_app
from .faults import FaultKind, FaultPlan
from .server import base_url, running, serve
from .settings import ApiKeyGrant, EmulatorSettings, parse_api_key, parse_latency_op
from .stats import OperationStats


def create_app(settings: EmulatorSettings | None = None) -> EmulatorApp:
    """The emulator app for ``settings.platform`` (default Arker)."""
    if settings is not None and settings.platform == "fastvm":
        from .fastvm import create_app as fastvm_app  # imported late: Arker users never load it

        return fastvm_app(settings)
    return _arker_app(settings)


__all__ = [
    "ApiKeyGrant",
    "EmulatorSettings",
    "FaultKind",
    "FaultPlan",
    "OperationStats",
    "base_url",
    "create_app",
    "parse_api_key",
    "parse_latency_op",
    "running",
    "serve",
]
