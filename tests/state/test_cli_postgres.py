"""The CLI on a PostgreSQL-backed stack: apply, state pull/push (rollback) and migrate file <-> postgres."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import main
from reconciler.emulator import running
from reconciler.state import open_backend
from tests.workflow.harness import KEY, emulator_settings

VM = "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: %s}\nspec: {source: ubuntu, description: %s}\n"


def _stack(root: Path, state: str, description: str = "one") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stack.yaml").write_text(
        "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: pgstack}\n"
        f"spec: {{state: '{state}'}}\n---\n" + VM % (f"pg-{root.name}", description)
    )
    return root


def _cli(base_url: str, *args: str) -> tuple[int, str, str]:
    env = {"ARKER_API_KEY": KEY, "ARKER_BASE_URL": base_url, "NO_COLOR": "1"}
    result = CliRunner().invoke(main, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_apply_pull_push_rollback_on_postgres(tmp_path: Path, pg_url: Callable[..., str]) -> None:
    url = pg_url()
    root = _stack(tmp_path / "a", url)
    with running(emulator_settings()) as base_url:
        code, _, err = _cli(base_url, "apply", str(root), "--auto-approve")
        assert code == 0, err
        # The row is keyed by the Stack's name when the URL does not say otherwise.
        applied = open_backend(url, root=root, stack="pgstack").read()
        assert applied is not None
        _stack(root, url, "two")
        assert _cli(base_url, "apply", str(root), "--auto-approve")[0] == 0
        code, current, _ = _cli(base_url, "state", "pull", str(root))
        assert code == 0 and '"description": "two"' in current
        code, old, _ = _cli(base_url, "state", "pull", str(root), "--serial", str(applied.serial))
        assert code == 0 and '"description": "one"' in old
        same = tmp_path / "current.json"
        same.write_text(current)
        code, out, err = _cli(base_url, "state", "push", str(same), str(root))
        assert code == 0, err
        assert "nothing written" in out  # the backend already holds that very document
        saved = tmp_path / "old.json"
        saved.write_text(old)
        code, _, err = _cli(base_url, "state", "push", str(saved), str(root))
        assert code == 1 and "refusing to push" in err and "--force" in err
        code, out, err = _cli(base_url, "state", "push", str(saved), str(root), "--force")
        assert code == 0, err
        # Rolled back: state says "one" again, so the live "two" is drift and a pending change.
        code, out, _ = _cli(base_url, "drift", str(root))
        assert code == 2 and "description" in out


def test_migrate_file_to_postgres_and_back_is_byte_equal(tmp_path: Path, pg_url: Callable[..., str]) -> None:
    url = pg_url(stack="migrated")
    root = _stack(tmp_path / "b", "file://.arkerctl/state.json")
    with running(emulator_settings()) as base_url:
        assert _cli(base_url, "apply", str(root), "--auto-approve")[0] == 0
        original = (root / ".arkerctl" / "state.json").read_bytes()
        code, out, err = _cli(base_url, "state", "migrate", str(root), "--to", url)
        assert code == 0, err
        # The whole URL, query included: without ?schema=...&stack=migrated it would name another stack.
        assert "stack=migrated" in url and f"Now set `state: {url}` in the Stack manifest." in out
        _stack(root, url)
        code, _, _ = _cli(base_url, "plan", str(root), "--detailed-exitcode")
        assert code == 0  # the migrated state describes the live VM exactly
        back = tmp_path / "back"
        code, _, err = _cli(base_url, "state", "migrate", str(root), "--to", f"file://{back}/state.json")
        assert code == 0, err
        assert (back / "state.json").read_bytes() == original
