from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.manifest.model import EgressSpec, FileSpec, SourceRef, SSHKeySpec, StackSpec, VMSpec


def fails(model: Any, data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [str(e.get("ctx", {}).get("error", e["msg"])) for e in caught.value.errors()]


def test_text_from_interpolation_becomes_numbers_and_booleans() -> None:
    spec = VMSpec.model_validate(
        {"source": "x", "replicas": " 3 ", "public": "TRUE", "resources": {"vcpu": "2"}}
    )
    assert (
        spec.replicas == 3 and spec.public is True and spec.resources is not None and spec.resources.vcpu == 2
    )


@pytest.mark.parametrize("value", [True, 1.0, "3.0", "three", "+-3"])
def test_replicas_refuse_non_integers(value: object) -> None:
    with pytest.raises(ValidationError):
        VMSpec.model_validate({"source": "x", "replicas": value})


def test_booleans_refuse_numbers() -> None:
    with pytest.raises(ValidationError):
        VMSpec.model_validate({"source": "x", "disk": 1})


def test_exactly_one_rules() -> None:
    assert fails(SourceRef, {}) == ["give exactly one of vm, name, id or image (got none)"]
    assert fails(SourceRef, {"id": "a", "image": "b"}) == [
        "give exactly one of vm, name, id or image (got id, image)"
    ]
    assert fails(FileSpec, {"path": "/a"}) == ["give exactly one of source or content (got none)"]
    assert fails(SSHKeySpec, {}) == ["give exactly one of public_key or public_key_file (got none)"]
    assert fails(EgressSpec, {}) == ["give exactly one of mode, allow or block (got none)"]


def test_port_ranges() -> None:
    spec = EgressSpec.model_validate({"allow": ["x.com"], "ports": [1, [2, 3], ["4", "4"]]})
    assert spec.ports == (1, (2, 3), (4, 4))
    assert "port range [3, 2] is empty: start must be <= end" in fails(
        EgressSpec, {"allow": ["x"], "ports": [[3, 2]]}
    )


def test_stack_vars_become_text() -> None:
    spec = StackSpec.model_validate({"vars": {"n": 2, "f": 1.5, "b": False, "s": "x"}})
    assert spec.vars == {"n": "2", "f": "1.5", "b": "false", "s": "x"}
    with pytest.raises(ValidationError):
        StackSpec.model_validate({"vars": {"n": [1]}})


def test_models_are_frozen() -> None:
    spec = VMSpec.model_validate({"source": "x"})
    with pytest.raises(ValidationError):
        spec.replicas = 2  # type: ignore[misc]
