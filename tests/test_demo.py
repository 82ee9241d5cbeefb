"""`make demo` keeps working: the whole main job against the embedded emulator, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_end_to_end_without_leaking_secrets() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciler.demo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "Plan: 6 to add, 0 to change, 0 to replace, 0 to destroy." in out
    assert "# vm.base has changed" in out and "# vm.worker-1 has been deleted" in out
    assert out.count("No changes. Live objects match the manifests.") == 3
    assert "demo-deploy-token-b7f3" not in out + done.stderr
    assert "Traceback" not in done.stderr
    assert not (ROOT / "examples" / "fleet" / ".arkerctl").exists()  # the repository stays clean
