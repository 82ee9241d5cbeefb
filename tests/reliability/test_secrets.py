"""Guarantee 6: secret values never reach an artifact.

A full cycle (plan in every format, a saved plan, apply of it, drift after the secret changed, apply
with JSON output, state list/show) runs as real processes; every stdout, stderr, the state file, its
backup and the saved plan are then searched for the secret file content's ``${env:TOKEN}`` value and for
the API key. The manifest language has no policy secret (inbound auth is ``arker`` or ``open``), so there
is none to test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.emulator import running

from .helpers import KEY_A, Fleet, Group, arkerctl, cli_env, emulator_settings, state_backend

TOKEN = "tok-5e6c0a9d-secret-value"
TOKEN_2 = "tok-77b1f3aa-rotated-value"
SECRET_FILE = {"path": "/home/user/.env", "content": "TOKEN=${env:TOKEN}\n", "secret": True}
FLEET = Fleet(stack="secretive", groups=(Group("app", 1, source={"name": "ubuntu"}, files=(SECRET_FILE,)),))


@pytest.mark.slow
def test_no_artifact_of_a_full_cycle_holds_a_secret(tmp_path: Path) -> None:
    root = FLEET.write(tmp_path / "stack")
    planfile = tmp_path / "saved.plan"
    outputs: list[str] = []
    with running(emulator_settings()) as url:
        env = cli_env(url, TOKEN=TOKEN)

        def run(*args: str, env: dict[str, str] = env, code: int | None = 0) -> str:
            done = arkerctl(*args, cwd=root, env=env)
            outputs.extend((done.stdout, done.stderr))
            assert code is None or done.code == code, done.output
            return done.stdout

        run("validate", ".")
        run("plan")
        json.loads(run("plan", "-o", "json"))
        run("plan", "-o", "markdown")
        run("plan", "--out", str(planfile))
        run("apply", str(planfile))
        run("drift", "-o", "json")
        rotated = cli_env(url, TOKEN=TOKEN_2)
        text = run("plan", env=rotated)
        assert "(sensitive)" in text and "app" in text  # the secret's change shows, its value does not
        run("drift", env=rotated, code=None)
        run("drift", "-o", "markdown", env=rotated, code=None)
        run("apply", "--auto-approve", "-o", "json", env=rotated)
        run("state", "list")
        run("state", "show", "vm.app")
        run("plan", "--detailed-exitcode", env=rotated)

    backend = state_backend(root)
    artifacts = {
        "state": backend.path.read_text(),
        "backup": backend.backup_path.read_text(),
        "planfile": planfile.read_text(),
        **{f"output {i}": text for i, text in enumerate(outputs)},
    }
    assert any("sha256:" in text for text in (artifacts["state"], artifacts["backup"]))
    for name, text in artifacts.items():
        for secret in (TOKEN, TOKEN_2, KEY_A, f"TOKEN={TOKEN}"):
            assert secret not in text, f"{secret!r} leaked into {name}"
