"""Over a real socket: ``running()``, the vendor SDK as a client, a real connection drop, ``serve()``.

The vendor SDK (``arker==1.3.0``) is a test-only conformance client; its shared httpx client gets the
contract checker as a response hook, so every response it receives is validated too.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from arker import computer as arker_computer
from arker.computer import Arker, ArkerError

from reconciler.emulator import EmulatorSettings, running

from .conformance import ConformanceChecker
from .conftest import KEY_A, make_settings

MiB = 1024 * 1024


def _client(url: str, checker: ConformanceChecker, key: str | None = KEY_A) -> httpx.Client:
    """A plain httpx client whose every response goes through the contract checker."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, event_hooks={"response": [checker.hook]})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, EmulatorSettings]]:
    settings = make_settings()
    with running(settings) as url:
        yield url, settings


@pytest.fixture
def sdk(server: tuple[str, EmulatorSettings], checker: ConformanceChecker) -> Iterator[Arker]:
    url, _ = server
    hooks = arker_computer._http_client.event_hooks
    hooks["response"].append(checker.hook)
    arker_computer._http_client.event_hooks = hooks
    try:
        yield Arker(api_key=KEY_A, base_url=url, control_base_url=url, retry=False)
    finally:
        hooks["response"].remove(checker.hook)
        arker_computer._http_client.event_hooks = hooks
    assert checker.checked, "no response was checked"


def test_running_yields_a_loopback_base_url(
    server: tuple[str, EmulatorSettings], checker: ConformanceChecker
) -> None:
    url, _ = server
    assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
    with _client(url, checker, key=None) as client:
        assert client.get("/v1/health").json()["status"] == "ok"
    assert checker.checked["health"] == 1


def test_sdk_end_to_end(sdk: Arker) -> None:
    assert sdk.whoami().org_name == "acme"
    assert sdk.list_regions().regions[0].endpoint == sdk.base_url

    vm = sdk.fork(source_vm_name="ubuntu", name="sdk-vm", idempotency_key="sdk-1")
    assert vm.name == "sdk-vm" and vm.resources is not None and vm.resources.vcpu == 2
    again = sdk.fork(source_vm_name="ubuntu", name="sdk-vm", idempotency_key="sdk-1")
    assert again.id == vm.id

    fetched = sdk.get_vm(vm.id)
    assert fetched.owner_org_id == vm.owner_org_id

    updated = fetched.update(vcpu=4, memory_mib=4096, description="from the SDK")
    assert updated.resources is not None
    assert (updated.resources.vcpu, updated.resources.memory_mib) == (4, 4096)
    assert updated.description == "from the SDK"

    doc = fetched.set_policies(
        {
            "policies": [
                {"type": "outbound", "match": {"hosts": ["github.com"], "ports": [443]}, "action": "allow"},
                {"type": "outbound", "action": "deny"},
            ]
        }
    )
    assert doc.policies is not None and len(doc.policies) == 2
    patched = fetched.update(policies={"rules": {"rule-1": None}})
    assert patched.policies is not None and sorted(patched.policies.rules or {}) == ["rule-0"]
    assert len(fetched.get_policies().policies or []) == 1

    small = b"hello from the sdk\n"
    fetched.sync("/home/user/hello.txt", small)
    assert fetched.sync("/home/user/hello.txt") == small
    big = os.urandom(5 * MiB)  # > one 4 MiB chunk, and above the presign threshold on read
    fetched.sync("/data/big.bin", big)
    read_back = fetched.sync("/data/big.bin")
    assert read_back is not None and hashlib.sha256(read_back).digest() == hashlib.sha256(big).digest()

    result = fetched.run("cat hello.txt")
    assert result.exit_code == 0 and result.stdout == small.decode()

    fs = sdk.create_filesystem(name="sdk-datasets")
    mount = fetched.create_mount(filesystem_id=fs.filesystem_id, path="/mnt/datasets")
    assert mount.state == "attaching"
    deadline = time.monotonic() + 5
    while fetched.list_mounts().mounts[0].state != "mounted":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert [f.name for f in sdk.list_filesystems(name_prefix="sdk-").filesystems] == ["sdk-datasets"]
    fetched.delete_mount(mount.mount_id)
    sdk.delete_filesystem(fs.filesystem_id)

    for i in range(4):
        sdk.fork(source_vm_name="ubuntu-small", name=f"page-{i}")
    names: list[str | None] = []
    cursor = None
    while True:
        page = sdk.list_vms(limit=2, cursor=cursor)
        names += [item.name for item in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert names[-5:] == ["sdk-vm", "page-0", "page-1", "page-2", "page-3"]

    assert fetched.delete().deleted is True
    with pytest.raises(ArkerError) as gone:
        sdk.get_vm(vm.id)
    assert gone.value.code == "not_found"


def test_sdk_sees_typed_errors(sdk: Arker) -> None:
    with pytest.raises(ArkerError) as refused:
        sdk.fork(source_vm_name="ubuntu-docker", resources={"vcpu": 1})
    assert refused.value.code == "insufficient_resources"
    with pytest.raises(ArkerError) as immutable:
        sdk.get_vm("ubuntu").update(description="nope")
    assert immutable.value.code == "invalid_state"


def test_a_dropped_connection_still_did_the_work(checker: ConformanceChecker) -> None:
    """The client sees "server disconnected without a response", yet the fork happened."""
    settings = make_settings(ambiguous_rate=0.5, seed=1)
    with (
        running(settings) as url,
        _client(url, checker) as c,
    ):
        dropped: list[str] = []
        for i in range(12):
            try:
                c.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": f"maybe-{i}"})
            except httpx.RemoteProtocolError:
                dropped.append(f"maybe-{i}")
        assert dropped
        for name in dropped:
            for _ in range(20):  # the GET itself may be dropped too
                try:
                    response = c.get(f"/v1/vms/{name}")
                except httpx.RemoteProtocolError:
                    continue
                assert response.status_code == 200
                break
            else:
                pytest.fail("every GET was dropped")
        stats = c.get("/_emulator/stats").json()
    assert stats["operations"]["fork"]["dropped"] == len(dropped)


def _spawn(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    assert "listening on" in first, first
    return process, first.split("listening on ")[1].strip()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_on_a_free_port_and_stops_cleanly(
    tmp_path: Path, sig: signal.Signals, checker: ConformanceChecker
) -> None:
    db = tmp_path / "state.db"
    process, url = _spawn(["--port", "0", "--db", str(db), "--api-key", "cli-key:clients"], tmp_path)
    try:
        assert not url.endswith(":0/api")
        with _client(url, checker, key="cli-key") as client:
            assert client.get("/v1/whoami").json()["org_name"] == "clients"
            created = client.post("/v1/fork", json={"source_vm_name": "ubuntu", "name": "kept"})
            assert created.status_code == 200
        process.send_signal(sig)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "stopped" in output
    assert "cli-key" not in output  # a key given on the command line is never printed
    assert db.exists()

    again, url = _spawn(["--port", "0", "--db", str(db), "--api-key", "cli-key:clients"], tmp_path)
    try:
        with _client(url, checker, key="cli-key") as client:
            assert client.get("/v1/vms/kept").status_code == 200
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=15)


def test_cli_prints_a_generated_demo_key_that_works(tmp_path: Path, checker: ConformanceChecker) -> None:
    process, url = _spawn(["--port", "0"], tmp_path)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        key = next(line.split("ARKER_API_KEY=")[1].split()[0] for line in lines if "ARKER_API_KEY=" in line)
        with _client(url, checker, key=key) as client:
            assert client.get("/v1/whoami").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    assert process.returncode == 0


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    for args, message in (
        (["--latency-op", "nosuchop=5"], "unknown operation"),
        (["--latency-op", "fork"], "OP=MS"),
        (["--fail-rate", "1.5"], "fail_rate"),
        (["--api-key", "key:"], "ORG"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "reconciler.cli", "emulator", "--port", "0", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=30,
        )
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)


def test_keep_alive_requests_do_not_stall(
    server: tuple[str, EmulatorSettings], checker: ConformanceChecker
) -> None:
    """Nagle must be off on accepted sockets, or each keep-alive response waits ~40 ms for an ACK."""
    url, _ = server
    with _client(url, checker) as client:
        client.get("/v1/whoami")
        started = time.perf_counter()
        for _ in range(30):
            assert client.get("/v1/whoami").status_code == 200
        assert time.perf_counter() - started < 0.6
