from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_fleet_mermaid_shows_base_worker_sync() -> None:
    code, out, _ = run("graph", "examples/fleet", "-o", "mermaid")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  vm_base["vm.base"]' in lines
    for edge in (
        "vm_base --> vm_worker_0",
        "vm_base --> vm_worker_1",
        "vm_worker_0 --> sync_worker_datasets_0",
        "vm_worker_1 --> sync_worker_datasets_1",
        "filesystem_datasets --> sync_worker_datasets_0",
    ):
        assert f"  {edge}" in lines


def test_fleet_dot_is_the_default() -> None:
    code, out, _ = run("graph", "examples/fleet")
    assert code == 0
    assert out.startswith('digraph "sandbox-fleet" {')
    assert '  "vm.base" -> "vm.worker-0";' in out.splitlines()


def test_graph_works_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI_DEPLOY_TOKEN", raising=False)
    code, out, err = run("graph", "examples/ci-sandbox", "-o", "mermaid")
    assert code == 0 and 'vm_ci_runner["vm.ci-runner"]' in out and "warning:" in err


def test_several_stacks_are_refused() -> None:
    code, _, err = run("graph", "examples")
    assert code == 1 and "PATH holds 4 stacks" in err


def test_invalid_manifests_exit_1(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: a}\nspec: {source: a}\n"
    )
    code, out, err = run("graph", str(tmp_path))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{tmp_path / 'a.yaml'}:4:16: error: dependency cycle: vm.a -> vm.a",
        "1 error",
    ]
