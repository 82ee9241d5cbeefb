import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.engine.paths import (
    PathError,
    PathSet,
    covered,
    covers,
    format_path,
    parse_path,
    parse_paths,
    under,
)


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        (("resources", "vcpu"), "resources.vcpu"),
        (("files", "/home/user/.env"), 'files["/home/user/.env"]'),
        (("ssh_keys", "alice"), "ssh_keys.alice"),
        (("policy", "rules", "egress-default", "action"), 'policy.rules["egress-default"].action'),
        (("/top",), '["/top"]'),
        (("ports", 0), "ports[0]"),
        (("files", 'say "hi"'), r'files["say \"hi\""]'),
    ],
)
def test_format_and_parse_are_inverse(parts: tuple[str | int, ...], text: str) -> None:
    assert format_path(parts) == text
    assert parse_path(text) == parts


@pytest.mark.parametrize(
    "text", ["", ".a", "a.", "a..b", "a[", 'a["x"', 'a["x"b', "a b", "a[x]", "1a", 'a.["x"]']
)
def test_malformed_paths_are_rejected(text: str) -> None:
    with pytest.raises(PathError):
        parse_path(text)


_key = st.one_of(st.text(min_size=1, max_size=12), st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True))


@given(
    st.lists(st.one_of(_key, st.integers(0, 99)), min_size=1, max_size=5).filter(
        lambda p: isinstance(p[0], str)
    )
)
def test_any_path_round_trips(parts: list[str | int]) -> None:
    assert parse_path(format_path(parts)) == tuple(parts)


def test_identifier_keys_may_also_be_written_bracketed() -> None:
    # One spelling is printed, both are understood: matching works on parts, not on text.
    assert parse_path('ssh_keys["alice"]') == parse_path("ssh_keys.alice") == ("ssh_keys", "alice")
    assert parse_path('["resources"]["vcpu"]') == ("resources", "vcpu")


def test_prefix_matching() -> None:
    resources, vcpu = parse_path("resources"), parse_path("resources.vcpu")
    assert covers(resources, vcpu)
    assert covers(vcpu, vcpu)
    assert not covers(vcpu, resources)
    assert not covers(parse_path("resource"), vcpu)  # whole steps, not string prefixes
    assert covered(vcpu, [parse_path("disk"), resources])
    assert under(resources, [vcpu])
    assert not under(vcpu, [vcpu])


def test_parse_paths_sorts_and_deduplicates() -> None:
    assert parse_paths(["b", "a.c", "b", 'a["c"]']) == (("a", "c"), ("b",))


@given(
    st.lists(st.lists(st.sampled_from("abc"), min_size=1, max_size=3).map(tuple), max_size=4),
    st.lists(st.sampled_from("abc"), max_size=4).map(tuple),
)
def test_path_set_agrees_with_the_plain_functions(
    members: list[tuple[str, ...]], path: tuple[str, ...]
) -> None:
    paths = PathSet(members)
    assert paths.covers(path) == covered(path, members)
    assert paths.below(path) == under(path, members)
    assert bool(paths) == bool(members)
