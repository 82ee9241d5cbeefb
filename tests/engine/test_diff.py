from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.engine import MASK, Change, diff_values, mask_values
from reconciler.engine.diff import _Walk, project, without_paths
from reconciler.engine.paths import PathSet
from reconciler.state import secret_digest

from .factory import SECRET_PATH, SECRET_TEXT, live_of, vm


def paths(changes: tuple[Change, ...]) -> list[str]:
    return [c.path for c in changes]


def test_equal_values_have_no_changes() -> None:
    config = vm("base")
    assert diff_values(dict(config.values), dict(config.values)) == ()


def test_leaf_changes_inside_mappings_sorted_by_path() -> None:
    before = {"resources": {"vcpu": 2, "memory_mib": 4096}, "description": "a"}
    after = {"resources": {"vcpu": 4, "memory_mib": 8192}, "description": "b"}
    changes = diff_values(before, after)
    assert [(c.path, c.before, c.after) for c in changes] == [
        ("description", "a", "b"),
        ("resources.memory_mib", 4096, 8192),
        ("resources.vcpu", 2, 4),
    ]


def test_fields_the_desired_side_does_not_manage_are_not_differences() -> None:
    config = vm("base")
    live = live_of(config)  # adds status, created_at, resources.gpu, policy.inherited
    assert diff_values(live.values, config.values) == ()
    # ...but the other way round (drift scope = recorded side) the same extra fields are ignored too.
    assert diff_values(config.values, live.values, scope="before") == ()
    # and with the live side as scope they are differences.
    assert "status" in paths(diff_values(config.values, live.values))


def test_lists_change_as_a_whole() -> None:
    changes = diff_values({"hosts": ["a", "b"]}, {"hosts": ["a", "c"]})
    assert [(c.path, c.before, c.after) for c in changes] == [("hosts", ["a", "b"], ["a", "c"])]
    assert diff_values({"hosts": ["b", "a"]}, {"hosts": ["a", "b"]}) != ()  # order is meaningful


def test_bool_and_int_are_different_values() -> None:
    assert paths(diff_values({"disk": 1}, {"disk": True})) == ["disk"]
    assert diff_values({"n": 1}, {"n": 1.0}) == ()


def test_absent_and_null_are_the_same() -> None:
    assert diff_values({}, {"description": None}) == ()
    assert paths(diff_values({}, {"description": "x"})) == ["description"]


def test_type_change_is_reported_whole() -> None:
    changes = diff_values({"source": "base"}, {"source": {"vm": "base"}})
    assert [(c.path, c.before, c.after) for c in changes] == [("source", "base", {"vm": "base"})]


def test_ignore_changes_paths_are_not_diffed() -> None:
    before = {"resources": {"vcpu": 2, "memory_mib": 4096}, "description": "a"}
    after = {"resources": {"vcpu": 4, "memory_mib": 8192}, "description": "b"}
    assert paths(diff_values(before, after, ignore=["resources.memory_mib"])) == [
        "description",
        "resources.vcpu",
    ]
    assert paths(diff_values(before, after, ignore=["resources"])) == ["description"]


def test_exact_mappings_report_removed_keys() -> None:
    live = {"ssh_keys": {"alice": "k1", "bob": "k2"}, "labels": {"team": "a", "extra": "x"}}
    desired = {"ssh_keys": {"alice": "k1"}, "labels": {"team": "a"}}
    changes = diff_values(live, desired, exact=["ssh_keys"])
    assert [(c.path, c.before, c.after) for c in changes] == [("ssh_keys.bob", "k2", None)]
    # An empty exact mapping still owns the keys: removing every key is a change.
    assert paths(diff_values(live, {"ssh_keys": {}}, exact=["ssh_keys"])) == [
        "ssh_keys.alice",
        "ssh_keys.bob",
    ]


def test_force_new_prefixes_mark_changes() -> None:
    changes = diff_values(
        {"source": {"vm": "a"}, "description": "x"},
        {"source": {"vm": "b"}, "description": "y"},
        force_new=["source"],
    )
    assert [(c.path, c.forces_replacement) for c in changes] == [("description", False), ("source.vm", True)]
    # A whole change that contains a forcing path forces too.
    whole = diff_values({"source": "a"}, {"source": {"vm": "b"}}, force_new=["source.vm"])
    assert [c.forces_replacement for c in whole] == [True]


def test_sensitive_leaves_are_masked_in_the_change() -> None:
    secret = f'files["{SECRET_PATH}"]'
    changes = diff_values(
        {"files": {SECRET_PATH: secret_digest("old")}},
        {"files": {SECRET_PATH: secret_digest(SECRET_TEXT)}},
        sensitive=[secret],
    )
    assert changes == (Change(path=secret, before=MASK, after=MASK, sensitive=True),)


def test_sensitive_values_inside_a_whole_change_are_masked() -> None:
    secret = f'files["{SECRET_PATH}"]'
    changes = diff_values(
        {"files": "legacy"},
        {"files": {SECRET_PATH: "sha256:abc", "/etc/motd": "sha256:def"}},
        sensitive=[secret],
    )
    assert len(changes) == 1
    assert changes[0].after == {"/etc/motd": "sha256:def", SECRET_PATH: MASK}
    assert changes[0].sensitive
    # A secret below a list position hides the whole list.
    listed = diff_values({}, {"env": ["A=1", "TOKEN=x"]}, sensitive=["env[1]"])
    assert listed[0].after == MASK


def test_new_nested_mapping_is_reported_per_leaf() -> None:
    changes = diff_values(
        {}, {"resources": {"vcpu": 2, "memory_mib": 1024}, "secret": "s"}, sensitive=["secret"]
    )
    assert [(c.path, c.before, c.after) for c in changes] == [
        ("resources.memory_mib", None, 1024),
        ("resources.vcpu", None, 2),
        ("secret", None, MASK),
    ]


def test_reserved_keys_are_never_compared() -> None:
    assert diff_values({"__lifecycle__": {"a": 1}}, {"__lifecycle__": {"a": 2}}, scope="before") == ()


def test_helpers_mask_strip_and_project() -> None:
    values: dict[str, Any] = {"b": {"y": 1, "x": 2}, "a": "secret", "__lifecycle__": {}}
    masked = mask_values(values, ["a"])
    assert masked == {"a": MASK, "b": {"x": 2, "y": 1}}
    assert list(masked) == ["a", "b"] and list(masked["b"]) == ["x", "y"]
    assert mask_values(None, []) is None
    assert without_paths(values, ["b.x", "a"]) == {"b": {"y": 1}, "__lifecycle__": {}}
    live = {"b": {"x": 2, "y": 1, "z": 3}, "keys": {"k": 1, "j": 2}, "other": 1}
    assert project(live, {"b": {"x": 0}, "keys": {"k": 0}}) == {"b": {"x": 2}, "keys": {"k": 1}}
    assert project(live, {"keys": {}}, exact=["keys"]) == {"keys": {"j": 2, "k": 1}}


_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["a", "b"]))
_values = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["x", "y", "z"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_documents = st.dictionaries(st.sampled_from(["p", "q", "r", "__reserved__"]), _values, max_size=4)


def _walked(before: dict[str, Any], after: dict[str, Any], scope: Any, exact: tuple[str, ...]) -> Any:
    """The full walk, without the quick agreement check."""
    none = PathSet.parse(())
    walker = _Walk(scope, ignore=none, force_new=none, sensitive=none, exact=PathSet.parse(exact))
    walker.walk((), dict(before), dict(after))
    return tuple(sorted(walker.changes, key=lambda c: c.path))


@settings(max_examples=400)
@given(
    before=_documents,
    after=_documents,
    scope=st.sampled_from(["before", "after"]),
    exact=st.lists(st.sampled_from(["p", "q.x", "r.y.z", "absent"]), max_size=2, unique=True).map(tuple),
)
def test_the_quick_agreement_check_never_changes_the_result(
    before: dict[str, Any], after: dict[str, Any], scope: Any, exact: tuple[str, ...]
) -> None:
    assert diff_values(before, after, scope=scope, exact=exact) == _walked(before, after, scope, exact)
    assert diff_values(before, before, scope=scope, exact=exact) == ()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(["a", "b", "__lifecycle__", "c"]), _JSON, max_size=4))
def test_masking_nothing_takes_a_shortcut_with_the_same_result(values: dict[str, Any]) -> None:
    # A sensitive path that matches nothing goes the general way; no sensitive path at all, the shortcut.
    assert mask_values(values, []) == mask_values(values, ["no.such.path"])
    assert list(mask_values(values, []) or {}) == list(mask_values(values, ["no.such.path"]) or {})
