"""Shared pieces of the reliability suite: stacks on disk, arkerctl as a real subprocess, a live view of the
emulator over its socket.

The emulator runs in a thread (``reconciler.emulator.running``) and every arkerctl run is a separate
process talking to it over loopback, so kills and signals hit a real process with real sockets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import SecretStr

from reconciler.emulator import ApiKeyGrant, EmulatorSettings
from reconciler.state import LocalStateBackend, StateDocument

KEY_A = "reliability-key-acme-0123456789"
KEY_B = "reliability-key-globex-9876543210"
ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
UMASK = 0o022  # the usual default: files arkerctl means to keep private must be so despite it
# Calls that change something on the emulator (``sync`` mixes reads and writes, so it is not listed).
WRITE_OPERATIONS = frozenset(
    {
        "fork",
        "patchVm",
        "deleteVm",
        "putVmPolicies",
        "createMount",
        "deleteMount",
        "createFilesystem",
        "deleteFilesystem",
        "createRun",
    }
)


def emulator_settings(**overrides: Any) -> EmulatorSettings:
    values: dict[str, Any] = {
        "api_keys": (
            ApiKeyGrant(key=SecretStr(KEY_A), org="acme"),
            ApiKeyGrant(key=SecretStr(KEY_B), org="globex"),
        ),
        "mount_delay_seconds": 0,
        "retry_after_seconds": 0,
    }
    values.update(overrides)
    return EmulatorSettings(**values)


# ── stacks ──────────────────────────────────────────────────────────────────────────────────────────────


def _doc(kind: str, name: str, spec: Mapping[str, Any]) -> str:
    return json.dumps({"apiVersion": "arkerctl/v1", "kind": kind, "metadata": {"name": name}, "spec": spec})


@dataclass(frozen=True)
class Group:
    """A replicated VM group forked from ``source`` (a managed VM name or ``{"name": golden}``)."""

    name: str
    replicas: int
    source: Any = "base"
    description: str = "worker"
    files: tuple[Mapping[str, Any], ...] = ()
    mount: str | None = None  # filesystem bound at /mnt/<filesystem> on every replica
    vcpu: int = 2


@dataclass(frozen=True)
class Fleet:
    """A stack of one base VM (from a golden) plus groups; JSON documents are valid YAML."""

    stack: str = "fleet"
    base_files: tuple[Mapping[str, Any], ...] = (
        {"path": "/home/user/app/config.toml", "source": "files/config.toml"},
        {"path": "/etc/motd", "content": "managed by arkerctl\n"},
    )
    groups: tuple[Group, ...] = ()
    filesystems: tuple[str, ...] = ()
    base_description: str = "base image"
    extra: tuple[str, ...] = field(default=())  # more documents, as text

    @property
    def vm_names(self) -> tuple[str, ...]:
        names = ["base"]
        for g in self.groups:
            names.extend(f"{g.name}-{i}" if g.replicas != 1 else g.name for i in range(g.replicas))
        return tuple(sorted(names))

    def write(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        (root / "files").mkdir(exist_ok=True)
        (root / "files" / "config.toml").write_text('[app]\nname = "fleet"\n')
        docs = [
            _doc("Stack", self.stack, {"state": "file://.arkerctl/state.json"}),
            _doc(
                "VM",
                "base",
                {
                    "source": {"name": "ubuntu"},
                    "description": self.base_description,
                    "resources": {"vcpu": 2, "memory_mib": 2048},
                    "files": list(self.base_files),
                },
            ),
        ]
        docs += [_doc("Filesystem", fs, {}) for fs in self.filesystems]
        for g in self.groups:
            spec: dict[str, Any] = {
                "source": g.source,
                "description": g.description,
                "resources": {"vcpu": g.vcpu, "memory_mib": 2048},
            }
            if g.replicas != 1:
                spec["replicas"] = g.replicas
            if g.files:
                spec["files"] = list(g.files)
            docs.append(_doc("VM", g.name, spec))
            if g.mount is not None:
                sync = {"vm": g.name, "filesystem": g.mount, "path": f"/mnt/{g.mount}"}
                docs.append(_doc("Sync", f"{g.name}-{g.mount}", sync))
        docs += list(self.extra)
        for old in root.glob("*.yaml"):
            old.unlink()
        (root / "stack.yaml").write_text("\n---\n".join(docs) + "\n")
        return root


def state_backend(root: Path) -> LocalStateBackend:
    return LocalStateBackend(root / ".arkerctl" / "state.json")


def read_state(root: Path) -> StateDocument | None:
    return state_backend(root).read()


# ── arkerctl as a subprocess ───────────────────────────────────────────────────────────────────────────


def cli_env(base_url: str, key: str = KEY_A, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKER_")}
    env.update({"ARKER_BASE_URL": base_url, "ARKER_API_KEY": key, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def cli_args(*args: str) -> list[str]:
    return [PYTHON, "-m", "reconciler.cli", *args]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def arkerctl(*args: str, cwd: Path, env: Mapping[str, str], timeout: float = 60) -> Run:
    done = subprocess.run(
        cli_args(*args),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        umask=UMASK,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def start_arkerctl(*args: str, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_args(*args),
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        umask=UMASK,
    )


class Watch:
    """Drains a running process's stdout and stderr in threads, so its output can be waited for."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._drain, args=(proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._drain, args=(proc.stderr, self.err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            into.append(line)

    def text(self) -> str:
        return "".join(self.out) + "".join(self.err)

    def wait_for(self, needle: str, *, count: int = 1, timeout: float = 30) -> bool:
        """Until ``needle`` starts ``count`` stdout lines; False when the process ended or time ran out."""
        deadline = time.monotonic() + timeout
        while sum(line.startswith(needle) for line in list(self.out)) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def join(self) -> tuple[str, str]:
        self.proc.wait(timeout=60)
        for thread in self._threads:
            thread.join(timeout=30)
        return "".join(self.out), "".join(self.err)


def no_traceback(run: Run) -> None:
    assert "Traceback" not in run.output, run.output


# ── the live view, over the socket ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Live:
    vms: tuple[Mapping[str, Any], ...]
    filesystems: tuple[Mapping[str, Any], ...]
    mounts: tuple[Mapping[str, Any], ...]

    def vm_names(self) -> list[str]:
        return sorted(str(vm.get("name")) for vm in self.vms)


def _pages(client: httpx.Client, path: str, items: str) -> Iterator[Mapping[str, Any]]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        reply = client.get(path, params=params)
        reply.raise_for_status()
        body = reply.json()
        yield from body[items]
        cursor = body.get("next_cursor")
        if not cursor:
            return


def api(base_url: str, key: str = KEY_A) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def live_view(base_url: str, key: str = KEY_A) -> Live:
    """Everything the org owns. Must be read from an emulator without injected faults."""
    with api(base_url, key) as client:
        vms = tuple(_pages(client, "/v1/vms", "vms"))
        filesystems = tuple(_pages(client, "/v1/filesystems", "filesystems"))
        mounts: list[Mapping[str, Any]] = []
        for vm in vms:
            mounts.extend(_pages(client, f"/v1/vms/{vm['vm_id']}/mounts", "mounts"))
    return Live(vms, filesystems, tuple(mounts))


def stats(base_url: str) -> dict[str, Any]:
    with httpx.Client(timeout=10) as client:
        reply = client.get(base_url + "/_emulator/stats")
        reply.raise_for_status()
        return dict(reply.json()["operations"])


def write_calls(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """Requests of write operations between two stats snapshots."""
    calls = {}
    for op in WRITE_OPERATIONS:
        delta = after.get(op, {}).get("requests", 0) - before.get(op, {}).get("requests", 0)
        if delta:
            calls[op] = delta
    return calls


def assert_consistent(
    root: Path, live: Live, *, expected_vms: tuple[str, ...] | None = None
) -> StateDocument:
    """One live VM per address, every live object recorded in state (no orphans), no pending entries."""
    doc = read_state(root)
    assert doc is not None
    names = live.vm_names()
    assert len(names) == len(set(names)), f"duplicate VM names: {names}"
    if expected_vms is not None:
        assert names == sorted(expected_vms)
    recorded = {entry.id: entry for entry in doc.resources.values()}
    assert all(entry.id for entry in doc.resources.values()), "a pending entry was left in state"
    for vm in live.vms:
        entry = recorded.get(vm["vm_id"])
        assert entry is not None, f"orphan VM {vm['name']} ({vm['vm_id']})"
        assert entry.address == f"vm.{vm['name']}"
    for fs in live.filesystems:
        entry = recorded.get(fs["filesystem_id"])
        assert entry is not None, f"orphan filesystem {fs['name']}"
    for mount in live.mounts:
        assert f"{mount['vm_id']}/{mount['mount_id']}" in recorded, f"orphan mount {mount}"
    # And the other way round: every recorded object is live.
    live_ids = {vm["vm_id"] for vm in live.vms} | {fs["filesystem_id"] for fs in live.filesystems}
    live_ids |= {f"{m['vm_id']}/{m['mount_id']}" for m in live.mounts}
    for entry in doc.resources.values():
        assert entry.id in live_ids, f"{entry.address} recorded but not live"
    return doc
