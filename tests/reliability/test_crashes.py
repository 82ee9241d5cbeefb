"""Guarantee 2: ``kill -9`` of ``arkerctl apply`` at random points loses nothing and duplicates nothing.

One emulator (with latency, so kills land mid-apply) serves seeded trials. Each trial starts an apply of
one of two alternating variants of a stack (creates, in-place updates, deletes, replacements) and kills it
after a random delay; the next trial's apply starts from whatever the killed one left (a crash on top of a
crash). After every kill the state file and its backup parse, and a left lock names the killed process;
the next run takes that lock over (same host, holder gone) and says so. At checkpoints an apply runs to the
end and the stack is checked: exactly one VM per address, no orphans, no pending entries, a no-op plan.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from reconciler.emulator import running
from reconciler.state import LockInfo

from .helpers import (
    Fleet,
    Group,
    Watch,
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

VARIANTS = (
    Fleet(
        stack="crashy",
        groups=(
            Group("worker", 5, mount="datasets"),
            Group("solo", 1, source={"name": "ubuntu-small"}, vcpu=1),
        ),
        filesystems=("datasets",),
    ),
    Fleet(
        stack="crashy",
        base_description="base image, second edition",
        base_files=({"path": "/etc/motd", "content": "second edition\n"},),
        groups=(
            Group("worker", 3, mount="datasets", description="worker v2", vcpu=4),
            Group("solo", 1, source={"name": "ubuntu"}, vcpu=1),  # source changed: replaced
            Group("runner", 2, files=({"path": "/home/user/r.txt", "content": "r\n"},)),
        ),
        filesystems=("datasets",),
    ),
)
TRIALS = 12
CHECKPOINTS = {3, 7}  # trials after which an apply runs to the end and the stack is verified


def _lock_path(root: Path) -> Path:
    return state_backend(root).lock_path


def _left_lock(root: Path) -> LockInfo | None:
    path = _lock_path(root)
    return LockInfo.model_validate_json(path.read_bytes()) if path.exists() else None


def _check_files_parse(root: Path) -> None:
    read_state(root)  # raises StateCorruptError on a torn write
    backup = state_backend(root).backup_path
    if backup.exists():
        json.loads(backup.read_text())


def _converge(root: Path, url: str, fleet: Fleet, left: LockInfo | None) -> None:
    run = arkerctl("apply", "--auto-approve", cwd=root, env=cli_env(url), timeout=60)
    no_traceback(run)
    assert run.code == 0, run.output
    if left is not None:
        assert f"Warning: took over a stale lock of {left.who} (pid {left.pid} on {left.host}" in run.stderr
    assert_consistent(root, live_view(url), expected_vms=fleet.vm_names)
    plan = arkerctl("plan", "--detailed-exitcode", cwd=root, env=cli_env(url))
    assert plan.code == 0, plan.output


@pytest.mark.slow
def test_kill_9_at_random_points(tmp_path: Path) -> None:
    rng = random.Random(20240505)
    root = tmp_path / "stack"
    latency = (("fork", 250.0), ("createMount", 100.0), ("patchVm", 100.0), ("deleteVm", 100.0))
    settings = emulator_settings(latency_ms=10, latency_ops=latency)
    killed_mid_apply = 0
    with running(settings) as url:
        left: LockInfo | None = None
        for trial in range(TRIALS):
            fleet = VARIANTS[trial % 2]
            fleet.write(root)
            proc = start_arkerctl("apply", "--auto-approve", "--parallelism", "4", cwd=root, env=cli_env(url))
            watch = Watch(proc)
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0.05, 0.8))  # early: start-up, refresh, lock
            else:
                assert watch.wait_for("Plan: "), watch.text()  # operations start right after the plan
                time.sleep(rng.uniform(0.05, 0.9))
            finished = proc.poll() is not None
            if not finished:
                os.kill(proc.pid, signal.SIGKILL)
            out, err = watch.join()
            assert "Traceback" not in out + err
            if left is not None and "took over a stale lock" in err:
                assert f"(pid {left.pid} on {left.host}" in err  # the report names the dead holder
            _check_files_parse(root)
            before, left = left, _left_lock(root)
            if finished:
                assert left is None and proc.returncode in (0, 1), out + err
            elif left is not None and left.pid != proc.pid:
                assert before is not None and left == before  # killed before it took the lock over
            elif left is not None:
                assert left.operation == "apply" and left.stack == "crashy"
                killed_mid_apply += any(
                    f"{verb}..." in out for verb in ("Creating", "Modifying", "Destroying")
                )
            if trial in CHECKPOINTS:
                _converge(root, url, fleet, left)
                left = None
        _converge(root, url, VARIANTS[(TRIALS - 1) % 2], left)
    assert killed_mid_apply >= TRIALS // 3  # the kills did land while operations were in flight
