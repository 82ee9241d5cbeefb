"""The JSON plan document: SPEC §4 shape, the checked-in schema, drift documents, stable text."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from reconciler import schemas_gen
from reconciler.engine import Plan
from reconciler.render import PlanDocument, drift_document, drift_json, plan_document, plan_json

from . import plans

SPEC_KEYS = {"format_version", "stack", "state_lineage", "state_serial", "resource_changes", "drift"}
SPEC_KEYS |= {"conflicts", "summary"}
PLANS = {
    "representative": plans.representative,
    "converged": plans.converged,
    "refresh-only": plans.refresh_only,
    "destroy": plans.destroy,
    "empty": Plan,
}


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((schemas_gen.SCHEMA_DIR / "plan.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _by_address(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rc["address"]: rc for rc in document["resource_changes"]}


def test_plan_schema_is_registered() -> None:
    assert ("plan.schema.json", schemas_gen.plan_schema) in schemas_gen.SCHEMAS


@pytest.mark.parametrize("name", sorted(PLANS))
def test_rendered_documents_validate(name: str) -> None:
    plan = PLANS[name]()
    validator = _validator()
    for text in (plan_json(plan, stack="s"), drift_json(plan, stack="s")):
        document = json.loads(text)
        assert [e.message for e in validator.iter_errors(document)] == []
        assert PlanDocument.model_validate(document)  # the model reads back what it wrote


def test_schema_rejects_what_spec_forbids() -> None:
    validator = _validator()
    good = plan_document(plans.representative(), stack="s")
    bad_action = json.loads(json.dumps(good))
    bad_action["resource_changes"][0]["actions"] = ["replace"]
    extra_key = {**good, "surprise": 1}
    missing = {k: v for k, v in good.items() if k != "summary"}
    wrong_version = {**good, "format_version": "2"}
    for document in (bad_action, extra_key, missing, wrong_version):
        assert list(validator.iter_errors(document))


def test_spec_shape_of_the_representative_plan() -> None:
    plan = plans.representative()
    document = plan_document(plan, stack="sandbox-fleet")
    assert set(document) >= SPEC_KEYS
    assert document["format_version"] == "1"
    assert document["stack"] == "sandbox-fleet"
    assert document["state_lineage"] == "lineage-1" and document["state_serial"] == 3
    assert document["summary"] == {"add": 2, "change": 1, "replace": 3, "destroy": 1}
    assert document["applyable"] is False
    assert "drifted" not in document
    changes = _by_address(document)
    assert [rc["address"] for rc in document["resource_changes"]] == sorted(changes)
    assert changes["filesystem.models"]["actions"] == ["create"]
    assert changes["vm.base"]["actions"] == ["update"]
    assert changes["vm.worker"]["actions"] == ["delete", "create"]
    assert changes["vm.cache"]["actions"] == ["create", "delete"]
    assert changes["vm.old"]["actions"] == ["delete"]
    assert changes["filesystem.datasets"]["actions"] == ["no-op"]
    assert changes["vm.worker"]["reason"] == "source.name, source.vm force replacement"
    assert changes["filesystem.models"]["reason"] is None
    vcpu = next(c for c in changes["vm.base"]["changes"] if c["path"] == "resources.vcpu")
    assert vcpu == {
        "path": "resources.vcpu",
        "before": 2,
        "after": 4,
        "forces_replacement": False,
        "sensitive": False,
    }
    secret = next(c for c in changes["vm.base"]["changes"] if c["sensitive"])
    assert secret["before"] == secret["after"] == "(sensitive)"
    public = changes["vm.cache"]["changes"][0]
    assert public["path"] == "public" and public["forces_replacement"] is True
    drift = {d["address"]: d for d in document["drift"]}
    assert drift["filesystem.scratch"] == {"address": "filesystem.scratch", "changes": [], "deleted": True}
    assert drift["vm.base"]["changes"][0]["after"] == plans.LONG_HOSTS
    [conflict] = document["conflicts"]
    assert conflict["address"] == "vm.web" and conflict["live_id"] == "vm-7f3a" and conflict["kind"] == "VM"


def test_drift_document_drops_noops_and_says_whether_anything_drifted() -> None:
    drifted = drift_document(plans.representative(), stack="s")
    assert drifted["drifted"] is True
    assert all(rc["actions"] != ["no-op"] for rc in drifted["resource_changes"])
    assert len(drifted["resource_changes"]) == 7
    clean = drift_document(plans.converged(), stack="s")
    assert clean["drifted"] is False and clean["resource_changes"] == [] and clean["drift"] == []


def test_json_text_is_stable_and_sorted() -> None:
    first = plan_json(plans.representative(), stack="s")
    second = plan_json(plans.representative(), stack="s")
    assert first == second
    assert first.endswith("}\n")
    assert first == json.dumps(json.loads(first), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_a_planfile_round_trip_renders_the_same() -> None:
    plan = plans.representative()
    again = Plan.model_validate_json(plan.model_dump_json())
    assert plan_json(again, stack="s") == plan_json(plan, stack="s")
