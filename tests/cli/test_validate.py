from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
VM = "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: %s}\nspec: {source: %s}\n"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_examples_are_valid_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_DEPLOY_TOKEN", raising=False)
    monkeypatch.delenv("CI_REGISTRY_PASSWORD", raising=False)
    monkeypatch.chdir(ROOT)
    code, out, err = run("validate", "examples/")
    assert code == 0
    assert out.splitlines() == [
        "examples/ci-sandbox: ok (stack 'ci-sandbox', 1 resource)",
        "examples/fastvm: ok (stack 'fastvm-demo', 4 resources)",
        "examples/fleet: ok (stack 'sandbox-fleet', 6 resources)",
        "examples/minimal: ok (stack 'minimal', 1 resource)",
    ]
    # Unset secrets are warnings here: validate checks the manifests, plan and apply need the values.
    assert "warning: environment variable 'CI_DEPLOY_TOKEN' is not set" in err
    assert "error" not in err


def test_errors_exit_1_with_every_problem(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VM % ("web", "{vm: nope}"))
    (tmp_path / "b.yaml").write_text(VM % ("Bad", "ubuntu"))
    code, out, err = run("validate", str(tmp_path))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{tmp_path / 'a.yaml'}:4:21: error: unknown VM 'nope'"
    assert lines[1].startswith(f"{tmp_path / 'b.yaml'}:3:18: error: invalid name 'Bad'")
    assert lines[-1] == "2 errors"
    assert "Traceback" not in err


def test_each_stack_is_validated_separately(tmp_path: Path) -> None:
    stack = "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: %s}\n---\n"
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "good" / "s.yaml").write_text(stack % "good" + VM % ("web", "ubuntu"))
    (tmp_path / "bad" / "s.yaml").write_text(stack % "bad" + VM % ("web", "{vm: nope}"))
    code, out, err = run("validate", str(tmp_path))
    assert code == 1
    assert out == f"{tmp_path / 'good'}: ok (stack 'good', 1 resource)\n"
    assert err.splitlines()[-1] == "1 error"


def test_var_overrides(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VM % ("web", "ubuntu, replicas: '${var:n}'"))
    code, out, _ = run("validate", str(tmp_path), "--var", "n=3")
    assert code == 0 and "3 resources" in out
    code, _, err = run("validate", str(tmp_path))
    assert code == 1 and "var 'n' is not defined" in err
    code, _, err = run("validate", str(tmp_path), "--var", "oops")
    assert code == 1 and "--var expects NAME=VALUE" in err


def test_missing_path(tmp_path: Path) -> None:
    code, _, err = run("validate", str(tmp_path / "nope"))
    assert code == 1 and "no such file or directory" in err


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_random_input_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "m.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        result = CliRunner().invoke(main, ["validate", folder])
    assert result.exit_code in (0, 1)
    assert result.exception is None or isinstance(result.exception, SystemExit)
