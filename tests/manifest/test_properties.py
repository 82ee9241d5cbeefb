"""Property tests: whatever the input, loading ends in a DesiredState or a ManifestError, not a traceback."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifest import DesiredState, ManifestError, load_stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ENVIRON = {"CI_DEPLOY_TOKEN": "t", "CI_REGISTRY_PASSWORD": "p", "E": "value"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words of the language, so random documents get past the first checks and reach the deep ones.
WORDS = [
    "apiVersion",
    "arkerctl/v1",
    "kind",
    "VM",
    "Stack",
    "Sync",
    "Filesystem",
    "SSHKey",
    "EgressPolicy",
    "metadata",
    "name",
    "spec",
    "source",
    "vm",
    "id",
    "image",
    "replicas",
    "description",
    "resources",
    "vcpu",
    "memory_mib",
    "disk_mib",
    "disk",
    "durable",
    "public",
    "ssh_keys",
    "egress",
    "mode",
    "open",
    "blocked",
    "allow",
    "block",
    "ports",
    "inbound",
    "port",
    "auth",
    "arker",
    "files",
    "path",
    "content",
    "secret",
    "lifecycle",
    "prevent_destroy",
    "ignore_changes",
    "depends_on",
    "filesystem",
    "state",
    "vars",
    "public_key",
    "public_key_file",
    "expires_at",
    "base",
    "worker",
    "vm.base",
    "/mnt/x",
    "../x",
    "/etc/passwd",
    "${var:x}",
    "${env:E}",
    "${env:NOPE}",
    "$${",
    "github.com",
    "10.0.0.0/8",
    "*.x",
    "-1",
    "0",
    "65536",
    "a\x00b",
]
scalars = st.one_of(
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.integers(-5, 70000),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=25,
)
documents = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["arkerctl/v1", "v2"]), "kind": st.sampled_from(WORDS[3:9])},
    optional={
        "metadata": st.fixed_dictionaries({}, optional={"name": st.sampled_from([*WORDS, "web"])}),
        "spec": values,
    },
)


def _load(folder: Path) -> None:
    try:
        result = load_stack([folder], environ=ENVIRON)
    except ManifestError as exc:
        assert exc.diagnostics
        assert all(d.line >= 1 and d.column >= 1 and d.message for d in exc.diagnostics)
        assert "Traceback" not in str(exc)
    else:
        assert isinstance(result, DesiredState)


@SETTINGS
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "m.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        _load(Path(folder))


@SETTINGS
@given(st.lists(st.one_of(documents, values), min_size=1, max_size=4))
def test_random_documents(docs: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "m.yaml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
        _load(Path(folder))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutate(value: Any, path: tuple[Any, ...], action: str, new: Any) -> Any:
    if not path:
        return new if action != "wrap" else [value]
    head, rest = path[0], path[1:]
    if not rest and action == "delete":
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != head}
        return [v for i, v in enumerate(value) if i != head]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _mutate(value[head], rest, action, new)
    return copy


EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.yaml"))


@SETTINGS
@given(st.data())
def test_mutated_examples(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(EXAMPLE_FILES))
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    index = data.draw(st.integers(0, len(docs) - 1))
    target = data.draw(st.sampled_from(_paths(docs[index])))
    action = data.draw(st.sampled_from(["replace", "delete", "wrap"]))
    docs[index] = _mutate(docs[index], target, action, data.draw(values))
    with tempfile.TemporaryDirectory() as folder:
        stack = Path(folder) / "stack"
        shutil.copytree(path.parent, stack)
        (stack / path.name).write_text(yaml.safe_dump_all(docs), encoding="utf-8")
        _load(stack)
