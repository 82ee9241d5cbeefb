"""``make demo``: the main job end to end against the embedded emulator, no Arker account needed.

Starts the emulator on a free loopback port, copies ``examples/`` to a scratch folder (so the repository
stays clean), then runs the real CLI: validate, plan, apply every example, change things out of band,
``drift`` (exit 2), converge with ``apply``, and a final ``plan --detailed-exitcode`` that finds nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx
from pydantic import SecretStr

from .cli import main as cli_main
from .emulator import ApiKeyGrant, EmulatorSettings, running

__all__ = ["main"]

_KEY = "demo-key-0123456789"
_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# Demo values for the CI example's ${env:...} secrets; they never appear in any output below.
_SECRETS = {"CI_DEPLOY_TOKEN": "demo-deploy-token-b7f3", "CI_REGISTRY_PASSWORD": "demo-registry-pw-91c2"}


def _banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def _run(*args: str, expect: Sequence[int] = (0,)) -> int:
    print(f"$ arkerctl {' '.join(args)}", flush=True)
    try:
        cli_main.main(list(args), prog_name="arkerctl", standalone_mode=False)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    print(f"(exit {code})", flush=True)
    if code not in expect:
        raise SystemExit(
            f"demo step failed: arkerctl {' '.join(args)} exited {code}, expected {list(expect)}"
        )
    return code


def main() -> int:
    settings = EmulatorSettings(
        api_keys=(ApiKeyGrant(key=SecretStr(_KEY), org="demo"),), mount_delay_seconds=0.2
    )
    with running(settings) as base_url, tempfile.TemporaryDirectory(prefix="arkerctl-demo-") as scratch:
        work = Path(scratch) / "examples"
        shutil.copytree(_EXAMPLES, work, ignore=shutil.ignore_patterns(".arkerctl"))
        os.environ.update({"ARKER_API_KEY": _KEY, "ARKER_BASE_URL": base_url, **_SECRETS})
        os.chdir(work)
        print(f"Arker emulator on {base_url} (API key from ARKER_API_KEY); examples copied to {work}")

        _banner("1. Validate the manifests (no network)")
        _run("validate", ".")
        _banner("2. Plan the sandbox fleet: desired vs live vs state")
        _run("plan", "fleet", "--detailed-exitcode", expect=(2,))
        _banner("3. Apply every example (dependency order, in parallel)")
        for stack in ("minimal", "fleet", "ci-sandbox"):
            _run("apply", stack, "--auto-approve")
        _run("state", "list", "fleet")

        _banner("4. Someone changes the fleet by hand, outside arkerctl")
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {_KEY}"}) as api:
            api.patch(
                "/v1/vms/base",
                json={
                    "description": "tuned by hand",
                    "resources": {"vcpu": 4},
                    "ssh_public_keys": {"bob": None},
                },
            ).raise_for_status()
            api.delete("/v1/vms/worker-1").raise_for_status()
        print("PATCH vm base: description, vcpu 2 -> 4, SSH key bob removed; DELETE vm worker-1")

        _banner("5. Drift detection (exit 2 = drift found), as the cron job would run it")
        _run("drift", "fleet", expect=(2,))
        _banner("6. Converge again")
        _run("apply", "fleet", "--auto-approve")
        _banner("7. Nothing left to do")
        for stack in ("minimal", "fleet", "ci-sandbox"):
            _run("plan", stack, "--detailed-exitcode")
        with httpx.Client(base_url=base_url) as api:
            stats = api.get("/_emulator/stats").json()
        print(f"\nDemo complete: {stats['totals']['requests']} API requests served by the emulator.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
