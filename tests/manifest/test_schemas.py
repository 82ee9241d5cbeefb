"""The checked-in JSON Schemas match the models, are valid, and accept every example."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler import schemas_gen

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


@pytest.mark.parametrize(("filename", "generator"), schemas_gen.SCHEMAS)
def test_checked_in_schema_is_fresh(filename: str, generator: schemas_gen.Generator) -> None:
    checked_in = (schemas_gen.SCHEMA_DIR / filename).read_text(encoding="utf-8")
    assert checked_in == schemas_gen.render(generator), "stale schema: run `make schemas`"


def test_write_all_writes_every_registered_schema(tmp_path: Path) -> None:
    written = schemas_gen.write_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(name for name, _ in schemas_gen.SCHEMAS)


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((schemas_gen.SCHEMA_DIR / "manifest.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_match_schema_and_carry_the_modeline(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schemas/manifest.schema.json\n")
    assert (path.parent / "../../schemas/manifest.schema.json").resolve().is_file()
    validator = _validator()
    for document in yaml.safe_load_all(text):
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == []


@pytest.mark.parametrize(
    "document",
    [
        {"apiVersion": "arkerctl/v1", "kind": "VM", "metadata": {"name": "x"}, "spec": {"sorce": "u"}},
        {"apiVersion": "arkerctl/v1", "kind": "Vm", "metadata": {"name": "x"}, "spec": {"source": "u"}},
        {
            "apiVersion": "arkerctl/v1",
            "kind": "VM",
            "metadata": {"name": "x"},
            "spec": {"source": "u", "replicas": -1},
        },
        {
            "apiVersion": "arkerctl/v1",
            "kind": "Sync",
            "metadata": {"name": "x"},
            "spec": {"vm": "a", "filesystem": "b"},
        },
    ],
)
def test_schema_rejects_what_the_loader_rejects(document: dict[str, object]) -> None:
    assert list(_validator().iter_errors(document))


def test_schema_accepts_interpolated_numbers() -> None:
    document = {
        "apiVersion": "arkerctl/v1",
        "kind": "VM",
        "metadata": {"name": "x"},
        "spec": {"source": "u", "replicas": "${var:n}", "public": "${env:P}"},
    }
    assert list(_validator().iter_errors(document)) == []
