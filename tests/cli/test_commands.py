"""Every engine command through the CLI, against the emulator over a real socket."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.emulator import running
from reconciler.state import LockRequest, StateDocument, open_backend
from tests.workflow.harness import KEY, emulator_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(emulator_settings()) as url:
        yield url


@pytest.fixture
def stack(tmp_path: Path, base_url: str) -> Path:
    target = tmp_path / "fleet"
    shutil.copytree(ROOT / "examples" / "fleet", target)
    # One emulator serves the module: give each test its own VM and filesystem names.
    suffix = tmp_path.name.replace("_", "-").lower()[-12:].strip("-")
    for path in target.glob("*.yaml"):
        text = path.read_text()
        text = text.replace("name: base", f"name: base-{suffix}").replace(
            "source: base", f"source: base-{suffix}"
        )
        text = text.replace("name: worker\n", f"name: w-{suffix}\n").replace("vm: worker", f"vm: w-{suffix}")
        text = text.replace("name: datasets", f"name: ds-{suffix}").replace(
            "filesystem: datasets", f"filesystem: ds-{suffix}"
        )
        path.write_text(text)
    return target


def cli(base_url: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    env = {"ARKER_API_KEY": KEY, "ARKER_BASE_URL": base_url, "NO_COLOR": "1"}
    result = CliRunner().invoke(main, list(args), env=env, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _applied_state(stack: Path) -> StateDocument:
    """The stack's state, which the test knows an apply has written."""
    state = open_backend("file://.arkerctl/state.json", root=stack).read()
    assert state is not None, "no state written yet"
    return state


def api(base_url: str, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(method, base_url + path, json=body, headers={"Authorization": f"Bearer {KEY}"})


def test_plan_apply_and_a_converged_plan(base_url: str, stack: Path) -> None:
    code, out, _ = cli(base_url, "plan", str(stack), "--detailed-exitcode")
    assert code == 2 and "Plan: 6 to add, 0 to change, 0 to replace, 0 to destroy." in out
    code, out, err = cli(base_url, "apply", str(stack), "--auto-approve")
    assert code == 0, err
    assert "Apply complete! Operations: 6 created, 0 updated, 0 destroyed." in out
    code, out, _ = cli(base_url, "plan", str(stack), "--detailed-exitcode")
    assert code == 0 and "No changes." in out
    code, out, _ = cli(base_url, "state", "list", str(stack))
    assert code == 0 and len(out.splitlines()) == 6
    address = next(line.split()[0] for line in out.splitlines() if line.startswith("vm.base"))
    code, out, _ = cli(base_url, "state", "show", address, str(stack))
    assert code == 0 and address in out


def test_apply_without_a_terminal_needs_auto_approve(base_url: str, stack: Path) -> None:
    code, _, err = cli(base_url, "apply", str(stack))
    assert code == 1 and "--auto-approve" in err
    assert open_backend("file://.arkerctl/state.json", root=stack).read() is None


def test_plan_json_matches_the_schema(base_url: str, stack: Path) -> None:
    code, out, _ = cli(base_url, "plan", str(stack), "-o", "json")
    assert code == 0
    document = json.loads(out)
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    jsonschema.validate(document, schema)
    assert document["summary"] == {"add": 6, "change": 0, "replace": 0, "destroy": 0}
    code, out, _ = cli(base_url, "plan", str(stack), "-o", "markdown")
    assert code == 0 and "<details>" in out


def test_saved_plan_applies_and_a_stale_one_is_refused(base_url: str, stack: Path, tmp_path: Path) -> None:
    planfile = tmp_path / "fleet.plan"
    code, _, err = cli(base_url, "plan", str(stack), "--out", str(planfile))
    assert code == 0, err
    assert planfile.stat().st_mode & 0o777 == 0o600
    code, out, err = cli(base_url, "apply", str(planfile))
    assert code == 0, err
    assert "Applying the saved plan. Plan: 6 to add, 0 to change, 0 to replace, 0 to destroy." in out
    assert "Apply complete!" in out

    code, _, _ = cli(base_url, "plan", str(stack), "--out", str(planfile))
    assert code == 0
    # Someone changes a managed VM after the plan was made: the saved plan no longer describes reality.
    state = open_backend("file://.arkerctl/state.json", root=stack).read()
    assert state is not None
    base_id = next(r.id for a, r in state.resources.items() if a.startswith("vm.base"))
    assert api(base_url, "PATCH", f"/v1/vms/{base_id}", {"description": "meanwhile"}).status_code == 200
    serial = state.serial
    code, _, err = cli(base_url, "apply", str(planfile))
    assert code == 1 and "changed since the plan was made" in err
    assert _applied_state(stack).serial == serial


def test_drift_exit_codes(base_url: str, stack: Path) -> None:
    assert cli(base_url, "apply", str(stack), "--auto-approve")[0] == 0
    code, out, _ = cli(base_url, "drift", str(stack))
    assert code == 0 and "No drift" in out
    state = _applied_state(stack)
    base_id = next(r.id for a, r in state.resources.items() if a.startswith("vm.base"))
    assert api(base_url, "PATCH", f"/v1/vms/{base_id}", {"resources": {"vcpu": 3}}).status_code == 200
    code, out, _ = cli(base_url, "drift", str(stack), "-o", "json")
    assert code == 2
    document = json.loads(out)
    assert [c["path"] for d in document["drift"] for c in d["changes"]] == ["resources.vcpu"]


def test_lock_held_names_the_holder_and_force_unlock_clears_it(base_url: str, stack: Path) -> None:
    backend = open_backend("file://.arkerctl/state.json", root=stack)
    lock = backend.lock(LockRequest(operation="apply", stack="sandbox-fleet", who="ci-job-42"), timeout=0)
    try:
        code, _, err = cli(base_url, "apply", str(stack), "--auto-approve", "--lock-timeout", "0s")
        assert code == 1
        assert "ci-job-42" in err and lock.id in err
        code, _, err = cli(base_url, "force-unlock", lock.id, str(stack))
        assert code == 1 and "--force" in err  # no terminal: confirmation impossible
        code, out, _ = cli(base_url, "force-unlock", lock.id, str(stack), "--force")
        assert code == 0 and lock.id in out
        assert backend.current_lock() is None
    finally:
        lock.release()


def test_import_then_state_rm(base_url: str, stack: Path) -> None:
    vms_yaml = (stack / "vms.yaml").read_text()
    base = vms_yaml.split("name: ", 1)[1].split("\n", 1)[0]
    made = api(base_url, "POST", "/v1/fork", {"source_vm_name": "ubuntu", "name": base})
    assert made.status_code in (200, 201), made.text
    code, out, _ = cli(base_url, "plan", str(stack))
    assert code == 1 and f"arkerctl import vm.{base} {made.json()['vm_id']}" in out
    code, out, err = cli(base_url, "import", f"vm.{base}", made.json()["vm_id"], str(stack))
    assert code == 0, err
    code, out, _ = cli(base_url, "plan", str(stack))
    assert code == 0 and f"vm.{base} will be updated in-place" in out
    code, out, _ = cli(base_url, "state", "rm", f"vm.{base}", str(stack))
    assert code == 0 and "not touched" in out
    assert api(base_url, "GET", f"/v1/vms/{made.json()['vm_id']}").status_code == 200
    code, _, err = cli(base_url, "import", "vm.nope", "x", str(stack))
    assert code == 1 and "not declared" in err


def test_destroy_needs_confirmation_and_removes_everything(base_url: str, stack: Path) -> None:
    vms = stack / "vms.yaml"
    vms.write_text(vms.read_text().replace("prevent_destroy: true", "prevent_destroy: false"))
    assert cli(base_url, "apply", str(stack), "--auto-approve")[0] == 0
    code, _, err = cli(base_url, "destroy", str(stack))
    assert code == 1 and "--auto-approve" in err
    code, out, err = cli(base_url, "destroy", str(stack), "--auto-approve")
    assert code == 0, err
    assert "Destroy complete! Operations: 6 destroyed." in out
    assert _applied_state(stack).resources == {}


def test_missing_api_key_is_one_clear_line(stack: Path) -> None:
    result = CliRunner().invoke(main, ["plan", str(stack)], env={"ARKER_API_KEY": "", "ARKER_BASE_URL": ""})
    assert result.exit_code == 1
    assert "ARKER_API_KEY" in result.stderr and "Traceback" not in result.stderr


def test_fastvm_emulator_refuses_a_database() -> None:
    result = CliRunner().invoke(main, ["emulator", "--platform", "fastvm", "--db", "x.db"])
    assert result.exit_code == 1 and "in memory only" in result.stderr
    result = CliRunner().invoke(main, ["emulator", "--platform", "gcp"])
    assert result.exit_code == 1 and "gcp" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["plan", ".", "-o", "yaml"],
        ["plan", ".", "--parallelism", "0"],
        ["plan", ".", "--no-such-option"],
        ["apply", ".", "--lock-timeout", "5x"],
        ["no-such-command"],
    ],
)
def test_a_usage_error_exits_1_not_the_exit_code_of_pending_changes(args: list[str]) -> None:
    # Exit 2 means "changes or drift present" (plan --detailed-exitcode, drift): a typo must not read as it.
    result = CliRunner().invoke(main, args, env={"ARKER_API_KEY": "k"})
    assert result.exit_code == 1, result.output
    assert "Error" in result.stderr and "Traceback" not in result.stderr


def test_help_and_version_still_exit_0() -> None:
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["plan", "--help"]).exit_code == 0
    version = CliRunner().invoke(main, ["--version"])
    assert version.exit_code == 0 and "arkerctl" in version.stdout


def test_target_names_every_replica_of_a_replicated_vm(base_url: str, stack: Path) -> None:
    group = next(
        line.split("name: ", 1)[1]
        for line in (stack / "vms.yaml").read_text().splitlines()
        if "name: w-" in line
    )
    code, out, err = cli(base_url, "plan", str(stack), "--target", f"vm.{group}", "--detailed-exitcode")
    assert code == 2, err
    assert f"vm.{group}-0 will be created" in out and f"vm.{group}-1 will be created" in out
    code, _, err = cli(base_url, "plan", str(stack), "--target", "vm.nothing-like-it")
    assert code == 1 and "vm.nothing-like-it: no such resource" in err


def test_a_converged_apply_stores_the_ids_a_crashed_run_left_pending(base_url: str, stack: Path) -> None:
    assert cli(base_url, "apply", str(stack), "--auto-approve")[0] == 0
    backend = open_backend("file://.arkerctl/state.json", root=stack)
    state = _applied_state(stack)
    address = next(a for a in state.resources if a.startswith("vm.base"))
    entry = state.resources[address]
    # What a run killed between its fork and its record leaves: the intent, without the id.
    pending = entry.model_copy(
        update={"id": "", "values": {**entry.values, "__pending__": {"name": entry.name}}}
    )
    backend.write(state.with_resource(pending), expected_serial=state.serial)
    code, out, err = cli(base_url, "apply", str(stack), "--auto-approve")
    assert code == 0, err
    assert "No changes." in out
    settled = _applied_state(stack).resources[address]
    assert settled.id == entry.id and "__pending__" not in settled.values
    code, out, _ = cli(base_url, "state", "show", address, str(stack))
    assert code == 0 and entry.id in out
    serial = _applied_state(stack).serial
    assert cli(base_url, "apply", str(stack), "--auto-approve")[0] == 0
    assert _applied_state(stack).serial == serial  # nothing left to settle: nothing written


def test_apply_of_a_file_that_is_no_saved_plan_says_so(tmp_path: Path) -> None:
    garbage = tmp_path / "plan.bin"
    garbage.write_bytes(b"\x00garbage")
    result = CliRunner().invoke(main, ["apply", str(garbage)], env={"ARKER_API_KEY": "k"})
    assert result.exit_code == 1
    assert "not a saved plan" in result.stderr and "Traceback" not in result.stderr


def test_plan_warns_about_a_var_nothing_uses(base_url: str, stack: Path) -> None:
    code, _, err = cli(base_url, "plan", str(stack), "--var", "wokers=5")
    assert code == 0, err
    assert "warning: --var wokers is not declared in the Stack's vars and no manifest uses it" in err
    assert "did you mean 'workers'?" in err


def test_a_manifest_error_in_plan_ends_with_its_count_as_validate_does(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: a}\n"
        'spec: {source: ubuntu, description: "${env:ARKERCTL_TEST_UNSET_X}"}\n'
    )
    result = CliRunner().invoke(main, ["plan", str(tmp_path)], env={"ARKER_API_KEY": "k"})
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "environment variable 'ARKERCTL_TEST_UNSET_X' is not set" in lines[0] and lines[-1] == "1 error"
