"""Guarantee 5 (input side): arbitrary manifests through ``arkerctl validate`` and ``arkerctl plan`` end in
a clear message and exit 0/1/2, never a traceback and never a state write; YAML alias bombs and oversized
files are refused before they cost memory or time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.cli import main
from reconciler.emulator import running
from reconciler.manifest import MAX_MANIFEST_BYTES

from .helpers import KEY_A, emulator_settings

KINDS = ["Stack", "VM", "Filesystem", "Sync", "EgressPolicy", "SSHKey", "Bogus"]
VM_KEYS = ["source", "replicas", "resources", "disk", "public", "ssh_keys", "egress", "inbound", "files"]
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["base", "ubuntu", "x", "", "a-b"])
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([*VM_KEYS, "vm", "path"]), inner)
    ),
    max_leaves=12,
)
documents = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["arkerctl/v1", "v2"]),
        "kind": st.sampled_from(KINDS),
        "metadata": st.fixed_dictionaries({"name": st.sampled_from(["base", "w", "Bad_Name", "", "a" * 70])}),
        "spec": st.dictionaries(st.sampled_from([*VM_KEYS, "vm", "filesystem", "path", "allow"]), values),
    }
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with running(emulator_settings()) as url:
        yield url


def _invoke(args: list[str], url: str) -> tuple[int, str]:
    env = {"ARKER_API_KEY": KEY_A, "ARKER_BASE_URL": url, "NO_COLOR": "1"}
    result = CliRunner().invoke(main, args, env=env)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.lists(documents, min_size=1, max_size=4))
def test_random_manifests_never_crash_validate_or_plan(
    tmp_path_factory: pytest.TempPathFactory, emulator: str, docs: list[dict[str, object]]
) -> None:
    root = tmp_path_factory.mktemp("m")
    (root / "stack.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs))
    for command in ("validate", "plan"):
        code, output = _invoke([command, str(root)], emulator)
        assert code in (0, 1, 2), output
        assert output.strip()
    assert not any(p.name.startswith("state.json") for p in root.rglob("*"))  # plan never writes state


def _bomb(levels: int = 12) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nbomb: *a{levels - 1}\n"


@pytest.mark.parametrize("case", ["alias-bomb", "oversized"])
def test_bombs_and_huge_files_are_refused(tmp_path: Path, emulator: str, case: str) -> None:
    if case == "alias-bomb":
        text = "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: base}\nspec:\n  source: ubuntu\n"
        text += "  description: hello\n" + "\n".join("  " + line for line in _bomb().splitlines())
    else:
        text = "apiVersion: arkerctl/v1\nkind: Filesystem\nmetadata: {name: big}\nspec: {}\n"
        text += "# " + "x" * MAX_MANIFEST_BYTES + "\n"
    (tmp_path / "stack.yaml").write_text(text)
    for command in ("validate", "plan"):
        code, output = _invoke([command, str(tmp_path)], emulator)
        assert code == 1, output
        assert (
            ("alias" in output.lower()) if case == "alias-bomb" else ("larger" in output or "bytes" in output)
        )
