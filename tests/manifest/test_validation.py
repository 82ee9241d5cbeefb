"""How pydantic's errors become located, readable diagnostics."""

from __future__ import annotations

from pathlib import Path

from .helpers import doc, docs, errors


def test_unknown_keys_point_at_the_key_with_a_hint(tmp_path: Path) -> None:
    text = (
        "apiVersion: arkerctl/v1\nkind: VM\nmetadata: {name: web}\nspec:\n  source: ubuntu\n  resorces: {}\n"
    )
    assert errors(tmp_path, {"vm.yaml": text}) == ["6:3: unknown key 'resorces' (did you mean 'resources'?)"]


def test_unknown_keys_inside_unions_and_lists(tmp_path: Path) -> None:
    spec = "{source: {vm: a, tag: x}, egress: {alow: [x.com]}, files: [{path: /a, content: x, mode: 644}]}"
    assert errors(tmp_path, {"vm.yaml": doc("VM", "web", spec)}) == [
        "4:24: unknown key 'tag'",
        "4:42: unknown key 'alow' (did you mean 'allow'?)",
        "4:89: unknown key 'mode'",
    ]


def test_missing_key_hidden_when_a_misspelling_explains_it(tmp_path: Path) -> None:
    text = "apiVersion: arkerctl/v1\nkind: Sync\nmetadata: {name: s}\nspec: {vm: a, filesystem: b, pth: /x}\n"
    assert errors(tmp_path, {"s.yaml": text}) == ["4:30: unknown key 'pth' (did you mean 'path'?)"]


def test_missing_key_reported_at_its_mapping(tmp_path: Path) -> None:
    text = "apiVersion: arkerctl/v1\nkind: Sync\nmetadata: {name: s}\nspec:\n  vm: a\n  filesystem: b\n"
    assert errors(tmp_path, {"s.yaml": text}) == ["5:3: missing required key 'path'"]


def test_type_errors_name_expected_and_actual(tmp_path: Path) -> None:
    spec = "{source: [a], replicas: 1.5, disk: 'maybe', resources: {vcpu: 300}, inbound: [{port: '80x'}]}"
    assert errors(tmp_path, {"vm.yaml": doc("VM", "web", spec)}) == [
        "4:16: expected a string, got a list",
        "4:31: expected an integer, got a number",
        "4:42: expected true or false, got a string",
        "4:69: must be <= 255, got 300",
        "4:92: expected an integer, got a string",
    ]


def test_invalid_items_do_not_also_report_an_empty_list(tmp_path: Path) -> None:
    problems = errors(tmp_path, {"p.yaml": doc("EgressPolicy", "p", "{allow: ['*.x.com']}")})
    assert problems == [
        "4:16: wildcard host '*.x.com' is not needed: a host entry already matches its subdomains "
        "(did you mean 'x.com'?)"
    ]


def test_values_from_the_environment_are_never_echoed(tmp_path: Path) -> None:
    files = {
        "vm.yaml": doc(
            "VM",
            "web",
            "{source: ubuntu, egress: {allow: ['${env:S}']}, "
            "inbound: [{port: 1, auth: '${env:S}'}], resources: {vcpu: '${env:N}'}}",
        )
    }
    problems = errors(tmp_path, files, environ={"S": "Pa55:word!", "N": "999"})
    assert problems == [
        "4:41: egress entry '<hidden>' has a port: hosts take no port (value from ${env:...} not shown)",
        "4:81: expected 'arker' or 'open', got a string",
        "4:113: must be <= 255, got a value",
    ]
    assert not any("Pa55" in p or "999" in p for p in problems)


def test_schema_errors_of_one_document_do_not_hide_others(tmp_path: Path) -> None:
    files = {"a.yaml": docs(doc("VM", "a", "{source: 1}"), doc("VM", "b", "{source: x, replicas: -1}"))}
    assert errors(tmp_path, files) == [
        "4:16: expected a string, got an integer",
        "9:29: must be >= 0, got -1",
    ]


def test_references_to_invalid_documents_stay_quiet(tmp_path: Path) -> None:
    # `base` is invalid: its own error is enough, `worker`'s reference to it is not reported again.
    files = {
        "a.yaml": docs(
            doc("VM", "base", "{source: ubuntu, replicas: x}"), doc("VM", "worker", "{source: {vm: base}}")
        )
    }
    assert errors(tmp_path, files) == ["4:34: expected an integer, got a string"]
