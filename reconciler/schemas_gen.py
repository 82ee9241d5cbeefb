"""Generate the JSON Schemas in ``schemas/`` from our models: ``make schemas`` runs this module.

To add a schema, append a ``(filename, generator)`` pair to ``SCHEMAS``; the freshness test in
``tests/manifest/test_schemas.py`` then checks the checked-in file against the generator.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

__all__ = ["SCHEMAS", "SCHEMA_DIR", "manifest_schema", "plan_schema", "render", "write_all"]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

Generator = Callable[[], dict[str, Any]]


class _Untitled(GenerateJsonSchema):
    # pydantic titles every field after its name ("Memory Mib"): noise in editors' hover text.
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def manifest_schema() -> dict[str, Any]:
    """One schema for any manifest document: a union discriminated by ``kind``."""
    from .manifest import API_VERSION, ManifestDocument

    body = TypeAdapter(ManifestDocument).json_schema(by_alias=True, schema_generator=_Untitled)
    return {
        "$schema": _DRAFT,
        "$id": "https://arkerctl.dev/schemas/manifest.schema.json",
        "title": f"arkerctl manifest document ({API_VERSION})",
        "description": "One YAML document of an arkerctl stack: "
        "Stack, VM, Filesystem, Sync, EgressPolicy or SSHKey.",
        **body,
    }


def plan_schema() -> dict[str, Any]:
    """The ``arkerctl plan -o json`` document (SPEC §4), also the shape of ``arkerctl drift -o json``."""
    from .render import FORMAT_VERSION, PlanDocument

    body = TypeAdapter(PlanDocument).json_schema(schema_generator=_Untitled)
    return {
        "$schema": _DRAFT,
        "$id": "https://arkerctl.dev/schemas/plan.schema.json",
        **body,
        "title": f"arkerctl plan document (format_version {FORMAT_VERSION})",
    }


SCHEMAS: list[tuple[str, Generator]] = [
    ("manifest.schema.json", manifest_schema),
    ("plan.schema.json", plan_schema),
]


def render(generator: Generator) -> str:
    """The exact text written for one schema (stable key order, trailing newline)."""
    return json.dumps(generator(), indent=2, sort_keys=True) + "\n"


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, generator in SCHEMAS:
        target = directory / filename
        target.write_text(render(generator), encoding="utf-8")
        written.append(target)
    return written


def main() -> int:
    for path in write_all():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
