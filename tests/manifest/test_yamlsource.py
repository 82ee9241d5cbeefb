from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifest import yamlsource
from reconciler.manifest.interpolate import Interpolator
from reconciler.manifest.yamlsource import MAX_ALIAS_NODES, convert, read_documents

PLAIN = Interpolator({}, {})


def read(tmp_path: Path, text: str, name: str = "m.yaml") -> tuple[list[yamlsource.YamlDocument], list[str]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    documents, problems = read_documents(path, name)
    return documents, [str(p) for p in problems]


def value(tmp_path: Path, text: str, interpolate: Interpolator = PLAIN) -> tuple[object, list[str]]:
    documents, problems = read(tmp_path, text)
    assert not problems and len(documents) == 1
    converted = convert(documents[0], interpolate)
    return converted.value, [str(d) for d in converted.diagnostics]


def test_documents_and_empty_documents(tmp_path: Path) -> None:
    documents, problems = read(tmp_path, "---\na: 1\n---\n---\nb: 2\n...\n")
    assert problems == []
    assert [d.location.line for d in documents] == [2, 5]


def test_scalars_keep_yaml_types_but_times_stay_text(tmp_path: Path) -> None:
    got, problems = value(
        tmp_path, "i: 0x1f\nf: 1.5\nb: yes\nn: ~\ns: '1'\nt: 2030-01-01T00:00:00Z\nd: 2030-01-01\n"
    )
    assert problems == []
    assert got == {
        "i": 31,
        "f": 1.5,
        "b": True,
        "n": None,
        "s": "1",
        "t": "2030-01-01T00:00:00Z",
        "d": "2030-01-01",
    }


def test_find_and_locate_follow_paths(tmp_path: Path) -> None:
    documents, _ = read(tmp_path, "spec:\n  files:\n    - {path: /a}\n    - path: /b\n")
    document = documents[0]
    assert str(document.locate(("spec", "files", 1, "path"))) == "m.yaml:4:13"
    assert str(document.locate(("spec", "files", 1, "path"), key=True)) == "m.yaml:4:7"
    # Unknown parts (union tags, missing keys) stay at the deepest node found.
    assert str(document.locate(("spec", "files", 0, "mapping", "nope"))) == "m.yaml:3:7"
    assert document.top_level_scalar("spec") is None


def test_merge_keys(tmp_path: Path) -> None:
    text = "base: &b {x: 1, y: 2}\nother: &o {y: 9, z: 3}\nuse:\n  <<: [*b, *o]\n  x: 5\n"
    got, problems = value(tmp_path, text)
    assert problems == []
    assert isinstance(got, dict)
    assert got["use"] == {"x": 5, "y": 2, "z": 3}
    documents, _ = read(tmp_path, text)
    assert str(documents[0].locate(("use", "z"))) == "m.yaml:2:21"  # found through the merge


def test_duplicate_keys(tmp_path: Path) -> None:
    _, problems = value(tmp_path, "a: 1\nb: 2\na: 3\n")
    assert problems == ["m.yaml:3:1: error: duplicate key 'a' (first given at m.yaml:1:1)"]


def test_keys_are_their_text(tmp_path: Path) -> None:
    # YAML 1.1 would read `on` as true and `1` as a number: as keys they are names.
    got, problems = value(tmp_path, "on: 1\n1: x\nnull: y\n")
    assert problems == [] and got == {"on": 1, "1": "x", "null": "y"}
    _, problems = value(tmp_path, "? [a, b]\n: x\n")
    assert problems == ["m.yaml:1:3: error: mapping keys must be plain strings"]


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['true']\n",
        "a: !!python/name:os.system\n",
        "a: !!binary aGk=\n",
        "a: !!set {x}\n",
        "a: !custom x\n",
        "a: !!omap [{x: 1}]\n",
    ],
)
def test_only_plain_yaml(tmp_path: Path, text: str) -> None:
    _, problems = value(tmp_path, text)
    assert len(problems) == 1 and "unsupported YAML tag" in problems[0]


def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    documents, _ = read(tmp_path, "\n".join(lines) + "\n")
    converted = convert(documents[0], PLAIN)
    assert converted.fatal
    assert "aliases expand to more than" in converted.diagnostics[0].message


def test_aliases_within_budget_are_fine(tmp_path: Path) -> None:
    got, problems = value(tmp_path, "a: &a [1, 2, 3]\nb: *a\nc: *a\n")
    assert problems == []
    assert got == {"a": [1, 2, 3], "b": [1, 2, 3], "c": [1, 2, 3]}
    assert MAX_ALIAS_NODES >= 1000


def test_recursive_alias(tmp_path: Path) -> None:
    documents, _ = read(tmp_path, "a: &a [1, *a]\n")
    converted = convert(documents[0], PLAIN)
    assert converted.fatal and "recursive YAML alias" in converted.diagnostics[0].message


def test_nesting_limit(tmp_path: Path) -> None:
    depth = yamlsource.MAX_DEPTH + 5
    documents, problems = read(tmp_path, "a: " + "[" * depth + "]" * depth + "\n")
    assert problems == []
    converted = convert(documents[0], PLAIN)
    assert converted.fatal and "nests deeper" in converted.diagnostics[0].message


def test_very_deep_nesting_never_raises(tmp_path: Path) -> None:
    documents, problems = read(tmp_path, "[" * 3000 + "]" * 3000)
    assert documents or problems


def test_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_MANIFEST_BYTES", 100)
    documents, problems = read(tmp_path, "a: " + "x" * 200 + "\n")
    assert documents == []
    assert problems == ["m.yaml:1:1: error: manifest file is too large (204 bytes; the limit is 100)"]


def test_syntax_error_location(tmp_path: Path) -> None:
    _, problems = read(tmp_path, "a: 1\nb: [1, 2\nc: 3\n")
    assert len(problems) == 1 and problems[0].startswith("m.yaml:3:2: error: invalid YAML")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"a: 1\nb: \xff\xfe\n")
    documents, problems = read_documents(path, "m.yaml")
    assert documents == [] and [str(p) for p in problems] == [
        "m.yaml:2:4: error: manifest file is not valid UTF-8"
    ]


def test_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"a: 1\nb: \x07\n")
    documents, problems = read_documents(path, "m.yaml")
    assert documents == [] and "invalid YAML" in str(problems[0])


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes("\ufeffa: 1\n".encode())
    documents, problems = read_documents(path, "m.yaml")
    assert problems == [] and convert(documents[0], PLAIN).value == {"a": 1}


def test_interpolation_marks_env_nodes_and_reports_at_node(tmp_path: Path) -> None:
    interpolate = Interpolator({"v": "x"}, {"E": "secret"})
    documents, _ = read(tmp_path, "a: ${env:E}\nb: ${var:v}\nc: '${var:nope}'\nd: ${var:v}\n")
    converted = convert(documents[0], interpolate)
    assert converted.value == {"a": "secret", "b": "x", "c": "${var:nope}", "d": "x"}
    assert [str(d) for d in converted.diagnostics] == [
        "m.yaml:3:4: error: var 'nope' is not defined (used as ${var:nope}) "
        "(define it in the Stack's spec.vars or pass --var)"
    ]
    a_node, _ = documents[0].find(("a",))
    c_node, _ = documents[0].find(("c",))
    assert converted.sensitive == {id(a_node)}
    assert id(c_node) in converted.poisoned


def test_keys_are_not_interpolated(tmp_path: Path) -> None:
    got, problems = value(tmp_path, "${var:k}: 1\n", Interpolator({"k": "x"}, {}))
    assert problems == [] and got == {"${var:k}": 1}
