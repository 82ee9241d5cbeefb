"""--debug logs every API call and state step to stderr, and still never a secret or the API key."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.emulator import running
from tests.workflow.harness import KEY, emulator_settings

SECRET = "dbg-secret-7f1e9c"
MANIFEST = """
apiVersion: arkerctl/v1
kind: Stack
metadata: {name: debugging}
---
apiVersion: arkerctl/v1
kind: VM
metadata: {name: dbg-box}
spec:
  source: ubuntu
  files:
    - {path: /etc/app/token, content: "TOKEN=${env:DBG_TOKEN}\\n", secret: true}
"""


def test_debug_logs_calls_but_no_secret(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(MANIFEST)
    with running(emulator_settings()) as base_url:
        env = {"ARKER_API_KEY": KEY, "ARKER_BASE_URL": base_url, "DBG_TOKEN": SECRET, "NO_COLOR": "1"}
        runner = CliRunner()
        results = [
            runner.invoke(main, ["--debug", "apply", str(tmp_path), "--auto-approve"], env=env),
            runner.invoke(main, ["--debug", "plan", str(tmp_path), "-o", "json"], env=env),
            runner.invoke(main, ["plan", str(tmp_path), "--debug"], env=env),  # after the command, too
        ]
    for result in results:
        assert result.exit_code == 0, result.output
        assert SECRET not in result.stdout + result.stderr
        assert KEY not in result.stdout + result.stderr
    assert (
        "arker fork POST /v1/fork -> 200" in results[0].stderr
        or "arker fork POST /v1/fork -> 201" in results[0].stderr
    )
    assert "state: stored serial" in results[0].stderr
    assert "arker listVms GET /v1/vms" in results[1].stderr
    assert "arker listVms GET /v1/vms" in results[2].stderr


def test_without_debug_nothing_is_logged(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(MANIFEST)
    with running(emulator_settings()) as base_url:
        env = {"ARKER_API_KEY": KEY, "ARKER_BASE_URL": base_url, "DBG_TOKEN": SECRET}
        result = CliRunner().invoke(main, ["plan", str(tmp_path)], env=env)
    assert result.exit_code == 0
    assert "DEBUG" not in result.stderr and "arker listVms" not in result.stderr
