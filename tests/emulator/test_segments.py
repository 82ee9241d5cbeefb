"""SegmentIndex finds what a scan of the templates' regexes in order finds; the operation matchers agree
with that scan for every operation of both platforms."""

from __future__ import annotations

import re

import pytest

from reconciler.emulator._segments import SegmentIndex, parse_template
from reconciler.emulator.arker.operations import API_PREFIXES as ARKER_PREFIXES
from reconciler.emulator.arker.operations import OPERATIONS as ARKER_OPERATIONS
from reconciler.emulator.arker.operations import OperationMatcher as ArkerMatcher
from reconciler.emulator.fastvm.operations import OPERATIONS as FASTVM_OPERATIONS
from reconciler.emulator.fastvm.operations import OperationMatcher as FastVmMatcher

TEMPLATES = (
    "/v1/vms",
    "/v1/vms/{id}",
    "/v1/vms/new",  # shadowed by the template before it
    "/v1/{kind}/new",
    "/v1/vms/{id}/mounts",
    "/v1/vms/{id}/mounts/{mount_id}",
    "/{anything}",
    "/files/{token}",
    "/files/{token}",  # a duplicate: the first one wins
)

PATHS = (
    "/v1/vms",
    "/v1/vms/",
    "/v1/vms/abc",
    "/v1/vms/new",
    "/v1/fs/new",
    "/v1//new",
    "/v1/vms/abc/mounts",
    "/v1/vms//mounts",
    "/v1/vms/abc/mounts/m1",
    "/v1/vms/abc/mounts/",
    "/x",
    "/",
    "",
    "/files/t",
    "/files/t/u",
    "/nothing/at/all",
)


def _scan(templates: tuple[str, ...], path: str) -> tuple[int, dict[str, str]] | None:
    """The reference: each template as an anchored regex, tried in order."""
    for rank, template in enumerate(templates):
        pattern = re.sub(r"\{([a-z_]+)\}", r"(?P<\1>[^/]+)", template)
        found = re.fullmatch(pattern, path)
        if found:
            return rank, found.groupdict()
    return None


@pytest.mark.parametrize("path", PATHS)
def test_the_first_matching_template_wins_as_in_a_scan(path: str) -> None:
    index: SegmentIndex[str] = SegmentIndex()
    for template in TEMPLATES:
        assert index.add(template, template)
    found = index.find(path)
    expected = _scan(TEMPLATES, path)
    assert (found[0], found[2]) == expected if found is not None else expected is None
    if found is not None:
        assert found[1] == TEMPLATES[found[0]]


@pytest.mark.parametrize("template", ["/v1/{name:path}", "/v1/a{b}", "/v1/{}", "/v1/{a}{b}"])
def test_templates_it_cannot_index_are_refused(template: str) -> None:
    assert parse_template(template) is None
    assert not SegmentIndex[str]().add(template, "x")


def test_an_explicit_order_ranks_templates() -> None:
    index: SegmentIndex[str] = SegmentIndex()
    index.add("/a/{x}", "late", order=5)
    index.add("/{y}/b", "early", order=1)
    assert index.find("/a/b") == (1, "early", {"y": "a"})


def _reference_operation(specs: tuple, prefixes: tuple[str, ...], method: str, path: str) -> str | None:
    """The matchers' previous algorithm: literal paths (last wins), then the templates' regexes in order."""
    literal: dict[tuple[str, str], str] = {}
    templated = []
    for spec in specs:
        for prefix in prefixes:
            full = prefix + spec.path
            if "{" in full:
                pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", re.sub(r"\{[a-z_]+:path\}", ".+", full)) + "$"
                templated.append((spec.method, re.compile(pattern), spec.operation_id))
            else:
                literal[(spec.method, full)] = spec.operation_id
    if (method, path) in literal:
        return literal[(method, path)]
    for spec_method, regex, operation_id in templated:
        if spec_method == method and regex.match(path):
            return operation_id
    return None


def _sample_paths(specs: tuple, prefixes: tuple[str, ...]) -> list[str]:
    paths = []
    for spec in specs:
        for prefix in prefixes:
            full = prefix + spec.path
            for value in ("abc", "a/b", ""):
                paths.append(re.sub(r"\{[a-z_]+(:path)?\}", value, full))
            paths.append(full + "/")
    return sorted(set(paths))


@pytest.mark.parametrize(
    ("matcher", "specs", "prefixes"),
    [
        (ArkerMatcher(), ARKER_OPERATIONS, ARKER_PREFIXES),
        (FastVmMatcher(), FASTVM_OPERATIONS, ("",)),
    ],
    ids=["arker", "fastvm"],
)
def test_operation_matchers_agree_with_the_regex_scan(
    matcher: ArkerMatcher | FastVmMatcher, specs: tuple, prefixes: tuple
) -> None:
    methods = sorted({spec.method for spec in specs} | {"HEAD"})
    checked = 0
    for path in _sample_paths(specs, prefixes):
        for method in methods:
            expected = _reference_operation(specs, prefixes, method, path)
            assert matcher.operation_for(method, path) == expected, (method, path)
            checked += expected is not None
    assert checked > len(specs)  # the sample does reach the operations
