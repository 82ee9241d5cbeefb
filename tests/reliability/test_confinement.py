"""Guarantee 7: file sources stay inside the stack root, state and plan files are private, and TLS is
verified for https endpoints with no way to turn it off silently."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import inspect
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.emulator import running
from reconciler.providers.arker import ArkerClient, ArkerConnectError, ConnectionSettings

from .helpers import KEY_A, Fleet, Group, arkerctl, cli_env, emulator_settings, state_backend


def _fleet_reading(source: str) -> Fleet:
    return Fleet(stack="confined", base_files=({"path": "/home/user/x", "source": source},))


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink-file", "symlink-dir"])
def test_file_sources_outside_the_root_are_refused(tmp_path: Path, how: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours\n")
    root = tmp_path / "stack"
    source = {
        "dotdot": "../outside/secret.txt",
        "absolute": str(outside / "secret.txt"),
        "symlink-file": "files/link.txt",
        "symlink-dir": "files/linked/secret.txt",
    }[how]
    _fleet_reading(source).write(root)
    (root / "files" / "link.txt").symlink_to(outside / "secret.txt")
    (root / "files" / "linked").symlink_to(outside, target_is_directory=True)
    for command in ("validate", "plan"):
        env = {"ARKER_API_KEY": KEY_A, "ARKER_BASE_URL": "http://127.0.0.1:9/api"}
        result = CliRunner().invoke(main, [command, str(root)], env=env)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)
        assert "outside" in result.output or "stack root" in result.output, result.output
        assert "not yours" not in result.output
    assert not state_backend(root).path.exists()


def test_state_backup_lock_and_plan_files_are_owner_only(tmp_path: Path) -> None:
    root = Fleet(stack="private", groups=(Group("w", 2),)).write(tmp_path / "stack")
    planfile = root / "saved.plan"
    with running(emulator_settings()) as url:
        env = cli_env(url)  # the subprocesses run with the usual umask 022, which must not widen the files
        assert arkerctl("apply", "--auto-approve", cwd=root, env=env).code == 0
        (root / "stack.yaml").write_text((root / "stack.yaml").read_text().replace("base image", "b2"))
        assert arkerctl("plan", "--out", str(planfile), cwd=root, env=env).code == 0
        assert arkerctl("apply", str(planfile), cwd=root, env=env).code == 0
    backend = state_backend(root)
    for path in (backend.path, backend.backup_path, planfile):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(backend.path.parent.stat().st_mode) == 0o700


# ── TLS ─────────────────────────────────────────────────────────────────────────────────────────────────


@contextlib.contextmanager
def _tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https server on localhost with a self-signed certificate (which it also returns)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"vms": [], "next_cursor": null}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/api", cert
    finally:
        server.shutdown()
        server.server_close()


def _list_vms(url: str) -> int:
    async def go() -> int:
        async with ArkerClient(ConnectionSettings.create(KEY_A, url)) as client:
            return len([vm async for vm in client.list_vms()])

    return asyncio.run(go())


def test_tls_is_verified_and_has_no_off_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    # Switches people reach for: none of them may turn verification off.
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    monkeypatch.setenv("ARKER_INSECURE", "1")
    monkeypatch.setenv("ARKER_VERIFY", "false")
    with _tls_server(tmp_path) as (url, cert):
        with pytest.raises(ArkerConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            _list_vms(url)
        # The explicit, documented way to trust a private CA works: the failure above was verification.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert _list_vms(url) == 0
    assert "verify" not in inspect.signature(ArkerClient).parameters
    assert "verify" not in ConnectionSettings.model_fields
    with pytest.raises(ValueError):
        # Deliberately an unknown keyword: the settings must refuse it at run time, not ignore it.
        ConnectionSettings(api_key=KEY_A, base_url=url, control_base_url=url, verify=False)  # type: ignore[call-arg]
