"""Shared builders and a helper process that holds a state lock, for the state tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from reconciler.state import ResourceState, StateDocument, secret_digest

REPO_ROOT = Path(__file__).resolve().parents[2]


def vm(index: int, **values: Any) -> ResourceState:
    name = f"worker-{index}"
    base: dict[str, Any] = {
        "description": "CI sandbox",
        "resources": {"vcpu": 2, "memory_mib": 4096, "disk_mib": 20480},
        "ssh_keys": ["alice", "bob"],
        "files": {"/home/user/.env": secret_digest(f"TOKEN={index}")},
    }
    base.update(values)
    return ResourceState(address=f"vm.{name}", kind="VM", name=name, id=f"vm_{index:08x}", values=base)


def document(count: int, *, stack: str = "fleet") -> StateDocument:
    doc = StateDocument(stack=stack)
    resources = {f"vm.worker-{i}": vm(i) for i in range(count)}
    return doc.model_copy(update={"resources": resources})


# Takes the lock, prints its id, holds it until stdin closes (or the process is killed), then releases.
_HOLDER = """
import sys
from reconciler.state import LocalStateBackend, LockRequest
backend = LocalStateBackend(sys.argv[1])
lock = backend.lock(LockRequest(operation=sys.argv[2], stack="fleet"), timeout=10)
print(lock.id, flush=True)
sys.stdin.read()
lock.release()
"""


class Holder:
    """Another process holding the lock of ``state_path``."""

    def __init__(self, state_path: Path, operation: str = "apply") -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(state_path), operation],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line:
            self.process.kill()
            self.process.wait()
            raise AssertionError("holder process failed to take the lock")
        self.lock_id = line
        self.pid = self.process.pid

    def release(self) -> None:
        """Let the holder release the lock and exit normally."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=10) == 0

    def kill(self) -> None:
        """SIGKILL: the holder dies without releasing; reaped so its pid really disappears."""
        self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
