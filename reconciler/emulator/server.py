"""Serving an emulator app over loopback HTTP with uvicorn: in the foreground (``serve``) or in a
background thread for tests and demos (``running``).

Platform-neutral: both take an ``app_factory`` (default: the Arker app). The socket is bound before
uvicorn starts, so ``port=0`` yields the real port to print and hand to clients.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import uvicorn
from starlette.applications import Starlette

from ._protocol import HttpProtocol
from .settings import EmulatorSettings

__all__ = ["AppFactory", "banner", "base_url", "running", "serve"]

AppFactory = Callable[[EmulatorSettings], Starlette]
_START_TIMEOUT = 10.0


def _default_factory(settings: EmulatorSettings) -> Starlette:
    # imported late: server.py stays platform-neutral
    if settings.platform == "fastvm":
        from .fastvm import create_app as fastvm_app

        return fastvm_app(settings)
    from .arker import create_app

    return create_app(settings)


# Where each platform's API lives under the origin (Arker: https://arker.ai/api; FastVM: the root).
_API_PATH = {"arker": "/api", "fastvm": ""}
# (display name, base URL variable, API key variable)
_NAMES = {
    "arker": ("Arker", "ARKER_BASE_URL", "ARKER_API_KEY"),
    "fastvm": ("FastVM", "FASTVM_BASE_URL", "FASTVM_API_KEY"),
}


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising SIGINT/SIGTERM after its graceful shutdown.

    uvicorn re-delivers the captured signal once it has stopped, which turns Ctrl+C into a
    KeyboardInterrupt and SIGTERM into a kill; ``serve`` wants to return normally and close its store.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only disables Nagle (TCP_NODELAY) on accepted sockets whose proto is
    # IPPROTO_TCP, and without it every keep-alive response stalls ~40 ms on the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def base_url(host: str, port: int, path: str = "/api") -> str:
    """The base URL clients should use (``ARKER_BASE_URL``): the Arker API lives under ``/api``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def banner(settings: EmulatorSettings, url: str) -> str:
    """What ``serve`` prints on start. Only a key the emulator generated itself is ever shown."""
    name, url_var, key_var = _NAMES[settings.platform]
    lines = [f"{name} emulator listening on {url}", f"  export {url_var}={url}"]
    generated = [g for g in settings.api_keys if g.generated]
    for grant in generated:
        lines.append(f"  export {key_var}={grant.key.get_secret_value()}   # demo key, org {grant.org}")
    supplied = [g for g in settings.api_keys if not g.generated]
    if supplied:
        orgs = ", ".join(sorted({g.org for g in supplied}))
        lines.append(f"  {len(supplied)} API key(s) from --api-key (orgs: {orgs})")
    storage = f"SQLite {settings.db_path}" if settings.db_path else "in memory (nothing survives a restart)"
    lines.append(f"  state: {storage}")
    faults = []
    if settings.latency_ms or settings.latency_ops:
        ops = ", ".join(f"{name}={ms:g}ms" for name, ms in settings.latency_ops)
        faults.append(f"latency {settings.latency_ms:g}ms" + (f" ({ops})" if ops else ""))
    if settings.fail_rate:
        faults.append(f"fail-rate {settings.fail_rate:g}")
    if settings.ambiguous_rate:
        faults.append(f"ambiguous-rate {settings.ambiguous_rate:g}")
    if faults:
        seed = f", seed {settings.seed}" if settings.seed is not None else ""
        lines.append(f"  faults: {', '.join(faults)}{seed}")
    lines.append("  stats: GET /_emulator/stats   reset: POST /_emulator/reset   stop: Ctrl+C")
    return "\n".join(lines)


def _config(app: Starlette, settings: EmulatorSettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=settings.log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        # Clients connect directly: X-Forwarded-* headers are not trusted, and skipping the proxy
        # middleware saves its work on every request.
        proxy_headers=False,
        http=HttpProtocol,
    )


def _close(app: Starlette) -> None:
    close: Any = getattr(app.state, "close", None)
    if callable(close):
        close()


def serve(
    settings: EmulatorSettings,
    *,
    app_factory: AppFactory | None = None,
    out: IO[str] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully and return."""
    app = (app_factory or _default_factory)(settings)
    try:
        sock = _bind(settings.host, settings.port)
    except OSError:
        _close(app)
        raise
    url = base_url(settings.host, sock.getsockname()[1], _API_PATH[settings.platform])
    print(banner(settings, url), file=out or sys.stdout, flush=True)
    server = _Server(_config(app, settings))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown
        pass
    finally:
        sock.close()
        _close(app)
    print(f"{_NAMES[settings.platform][0]} emulator stopped.", file=out or sys.stdout, flush=True)


@contextlib.contextmanager
def running(
    settings: EmulatorSettings | None = None,
    *,
    app_factory: AppFactory | None = None,
) -> Iterator[str]:
    """Run the emulator in a background thread on a free loopback port; yield its base URL.

    The API key is ``settings.primary_api_key`` (pass settings with known ``api_keys`` to choose it).
    The server is stopped and its store closed when the block exits.
    """
    settings = settings or EmulatorSettings()
    app = (app_factory or _default_factory)(settings)
    sock = _bind(settings.host, 0)
    server = _Server(_config(app, settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            _close(app)
            raise RuntimeError("the emulator did not start")
        time.sleep(0.01)
    try:
        yield base_url(settings.host, sock.getsockname()[1], _API_PATH[settings.platform])
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT)
        sock.close()
        _close(app)
