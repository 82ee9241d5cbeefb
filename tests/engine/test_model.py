import pytest
from pydantic import ValidationError

from reconciler.engine import (
    LIFECYCLE_KEY,
    SENSITIVE_KEY,
    Action,
    Lifecycle,
    Plan,
    PlanOptions,
    ResourceChange,
    ResourceConfig,
    recorded_lifecycle,
    recorded_sensitive,
    state_values,
    strip_reserved,
)
from reconciler.state import config_hash

from .factory import vm


def test_invalid_paths_are_rejected_at_construction() -> None:
    with pytest.raises(ValidationError, match="invalid field path"):
        Lifecycle(ignore_changes=("resources..vcpu",))
    with pytest.raises(ValidationError, match="invalid field path"):
        ResourceConfig(address="vm.a", kind="VM", name="a", force_new=frozenset({"a["}))


def test_reserved_keys_cannot_be_config_values() -> None:
    with pytest.raises(ValidationError, match="__lifecycle__"):
        ResourceConfig(address="vm.a", kind="VM", name="a", values={LIFECYCLE_KEY: {}})


def test_config_hash_and_dependencies() -> None:
    config = vm("worker", source={"vm": "base"}, depends_on=["filesystem.data"])
    assert config.config_hash == config_hash(config.values)
    assert config.dependencies == ("filesystem.data", "vm.base")


def test_config_hash_is_cached_per_values_object_and_invisible_elsewhere() -> None:
    config = vm("worker", source={"vm": "base"})
    fresh = vm("worker", source={"vm": "base"})
    first = config.config_hash
    assert config.config_hash is first  # computed once
    # The cache is no field: equality, dumps and validation round trips do not see it.
    assert config == fresh and fresh == config
    assert config.model_dump() == fresh.model_dump()
    assert config.model_dump_json() == fresh.model_dump_json()
    assert ResourceConfig.model_validate(config.model_dump()) == config
    # A copy with other values must not inherit the hash of the old ones.
    changed = config.model_copy(update={"values": {**config.values, "description": "x"}})
    assert changed.config_hash == config_hash(changed.values) != first
    assert config.model_copy(update={"name": "other"}).config_hash == first


def test_state_values_remember_lifecycle_and_sensitive_paths() -> None:
    config = vm("base", lifecycle=Lifecycle(prevent_destroy=True, ignore_changes=("resources.vcpu",)))
    stored = state_values(config)
    assert recorded_lifecycle(stored) == config.lifecycle
    assert recorded_sensitive(stored) == config.sensitive
    assert strip_reserved(stored) == config.values
    assert SENSITIVE_KEY in stored
    assert recorded_lifecycle({}) == Lifecycle()
    assert recorded_lifecycle({LIFECYCLE_KEY: {"prevent_destroy": "not a bool"}}) == Lifecycle()


def test_config_json_is_stable_and_round_trips() -> None:
    config = vm("base")
    text = config.model_dump_json()
    assert '"force_new":["disk","durable","public","source"]' in text
    assert ResourceConfig.model_validate_json(text) == config


def test_summary_counts_each_kind_once() -> None:
    def rc(address: str, action: Action) -> ResourceChange:
        return ResourceChange(address=address, kind="VM", name=address, action=action)

    plan = Plan(
        resource_changes=(
            rc("vm.a", Action.CREATE),
            rc("vm.b", Action.UPDATE),
            rc("vm.c", Action.DELETE_CREATE),
            rc("vm.d", Action.CREATE_DELETE),
            rc("vm.e", Action.DELETE),
            rc("vm.f", Action.NOOP),
        )
    )
    assert plan.summary.model_dump() == {"add": 1, "change": 1, "replace": 2, "destroy": 1}
    assert plan.has_changes and plan.is_applyable
    assert not Plan(resource_changes=(rc("vm.f", Action.NOOP),)).has_changes
    assert not Plan(errors=("boom",)).is_applyable
    assert Plan.model_validate_json(plan.model_dump_json()) == plan
    assert plan.change_for("vm.c") == rc("vm.c", Action.DELETE_CREATE)
    assert plan.change_for("vm.zzz") is None


def test_plan_options_are_normalised() -> None:
    assert PlanOptions(targets=("vm.b", "vm.a", "vm.b")).targets == ("vm.a", "vm.b")
