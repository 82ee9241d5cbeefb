"""Guarantee 4: Ctrl-C (SIGINT) during apply lets operations in flight finish and records them, starts
nothing new, and exits 1 with a summary. A later apply completes the rest."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from reconciler.emulator import running

from .helpers import (
    Fleet,
    Group,
    Watch,
    arkerctl,
    assert_consistent,
    cli_env,
    emulator_settings,
    live_view,
    read_state,
    start_arkerctl,
)

FLEET = Fleet(stack="interrupted", base_files=(), groups=(Group("worker", 8, source={"name": "ubuntu"}),))


@pytest.mark.slow
def test_sigint_finishes_in_flight_operations_and_skips_the_rest(tmp_path: Path) -> None:
    root = FLEET.write(tmp_path / "stack")
    with running(emulator_settings(latency_ms=5, latency_ops=(("fork", 700.0),))) as url:
        env = cli_env(url)
        proc = start_arkerctl("apply", "--auto-approve", "--parallelism", "3", cwd=root, env=env)
        watch = Watch(proc)
        assert watch.wait_for("vm.", count=3), watch.text()  # three forks in flight (700 ms each)
        os.kill(proc.pid, signal.SIGINT)
        out, err = watch.join()
        assert proc.returncode == 1, out + err
        assert "Traceback" not in out + err
        assert "Interrupt received" in err

        started = set(re.findall(r"^(vm\.[\w-]+): Creating\.\.\.$", out, re.M))
        done = set(re.findall(r"^(vm\.[\w-]+): Created after", out, re.M))
        skipped = set(re.findall(r"^  skipped  create (vm\.[\w-]+): not started$", out, re.M))
        summary = re.search(
            r"^Apply interrupted: (\d+) operations succeeded, 0 failed, (\d+) skipped\.$", out, re.M
        )
        assert summary is not None, out
        assert 3 <= len(started) < len(FLEET.vm_names)
        assert done == started  # every operation in flight finished
        assert int(summary[1]) == len(done) and int(summary[2]) == len(skipped)
        assert skipped == {f"vm.{name}" for name in FLEET.vm_names} - started

        doc = read_state(root)
        assert doc is not None
        assert set(doc.resources) == done and all(entry.id for entry in doc.resources.values())
        live = live_view(url)
        assert sorted(f"vm.{name}" for name in live.vm_names()) == sorted(done)  # nothing skipped was made
        assert_consistent(root, live)

        rest = arkerctl("apply", "--auto-approve", cwd=root, env=env)
        assert rest.code == 0, rest.output
        assert f"Plan: {len(skipped)} to add, 0 to change, 0 to replace, 0 to destroy." in rest.stdout
        assert_consistent(root, live_view(url), expected_vms=FLEET.vm_names)
