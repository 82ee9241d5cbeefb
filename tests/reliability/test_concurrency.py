"""Guarantee 3: two applies on one stack never interleave.

Apply A runs against a slow emulator. B (``--lock-timeout 1s``) starts while A holds the lock: it waits
about a second, then fails with exit 1 naming A (who, host, pid, since, lock id) and touches nothing.
C (``--lock-timeout 60s``) waits for A to finish, then plans from A's final state and finds nothing to do.
A watcher samples the state file throughout: every sample parses, and serials only grow.
"""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pytest

from reconciler.emulator import running
from reconciler.state import LockInfo

from .helpers import (
    Fleet,
    Group,
    arkerctl,
    assert_consistent,
    cli_env,
    emulator_settings,
    live_view,
    no_traceback,
    read_state,
    start_arkerctl,
    state_backend,
)

FLEET = Fleet(stack="shared", groups=(Group("worker", 6, mount="datasets"),), filesystems=("datasets",))


class _SerialWatch(threading.Thread):
    """Reads the state file in a loop: (lineage, serial) of every sample."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.samples: list[tuple[str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            doc = read_state(self.root)  # a torn file would raise StateCorruptError and end the thread
            if doc is not None:
                self.samples.append((doc.lineage, doc.serial))
            time.sleep(0.005)


@pytest.mark.slow
def test_second_apply_waits_then_names_the_holder(tmp_path: Path) -> None:
    root = FLEET.write(tmp_path / "stack")
    lock_path = state_backend(root).lock_path
    settings = emulator_settings(latency_ms=5, latency_ops=(("fork", 500.0),))
    with running(settings) as url:
        env = cli_env(url)
        watch = _SerialWatch(root)
        watch.start()
        first = start_arkerctl("apply", "--auto-approve", "--parallelism", "1", cwd=root, env=env)
        deadline = time.monotonic() + 30
        # The lock file is created, then its holder written: wait until it reads whole.
        while not lock_path.exists() or not lock_path.read_bytes().strip():
            assert first.poll() is None and time.monotonic() < deadline, "apply A never took the lock"
            time.sleep(0.01)
        holder = LockInfo.model_validate_json(lock_path.read_bytes())
        assert holder.pid == first.pid
        assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600  # guarantee 7: the lock file is private too

        started = time.monotonic()
        blocked = arkerctl("apply", "--auto-approve", "--lock-timeout", "1s", cwd=root, env=env)
        waited = time.monotonic() - started
        assert first.poll() is None, "A finished before B gave up: the test proves nothing"
        no_traceback(blocked)
        assert blocked.code == 1
        assert waited >= 1.0
        for fact in (holder.id, str(holder.pid), holder.host, holder.who, holder.created_at):
            assert fact in blocked.stderr, (fact, blocked.stderr)
        assert "Plan:" not in blocked.stdout  # it never got as far as planning

        waiting = arkerctl("apply", "--auto-approve", "--lock-timeout", "60s", cwd=root, env=env)
        out, err = first.communicate(timeout=60)
        watch.stop.set()
        watch.join(timeout=5)
    assert first.returncode == 0, out + err
    no_traceback(waiting)
    assert waiting.code == 0, waiting.output
    assert "No changes" in waiting.stdout  # C planned from A's final state
    assert watch.is_alive() is False and watch.samples, "the watcher died: a state sample did not parse"
    lineages = {lineage for lineage, _ in watch.samples}
    serials = [serial for _, serial in watch.samples]
    assert len(lineages) == 1 and serials == sorted(serials)
    doc = read_state(root)
    assert doc is not None and doc.serial == serials[-1]


def test_blocked_run_reports_a_live_holder_and_force_unlock_clears_it(tmp_path: Path) -> None:
    """A lock whose holder still runs (here: this test process) is never taken over; ``force-unlock``
    with its id removes it, after which an apply proceeds."""
    root = FLEET.write(tmp_path / "stack")
    backend = state_backend(root)
    from reconciler.state import LockRequest

    lock = backend.lock(LockRequest(operation="apply", stack="shared", who="ci-job-7"), timeout=0)
    with running(emulator_settings()) as url:
        env = cli_env(url)
        blocked = arkerctl("apply", "--auto-approve", cwd=root, env=env)
        assert blocked.code == 1 and "ci-job-7" in blocked.stderr and lock.info.id in blocked.stderr
        wrong = arkerctl("force-unlock", "not-the-id", "--force", cwd=root, env=env)
        assert wrong.code == 1 and backend.lock_path.exists()
        unlocked = arkerctl("force-unlock", lock.info.id, "--force", cwd=root, env=env)
        assert unlocked.code == 0, unlocked.output
        assert not backend.lock_path.exists()
        done = arkerctl("apply", "--auto-approve", cwd=root, env=env)
        assert done.code == 0, done.output
        assert_consistent(root, live_view(url), expected_vms=FLEET.vm_names)
