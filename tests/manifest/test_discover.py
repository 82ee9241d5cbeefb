from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifest import discover_stacks, load_stack

from .helpers import doc, write

STACK = "apiVersion: arkerctl/v1\nkind: Stack\nmetadata: {name: %s}\n"


def test_each_folder_with_a_stack_document_is_a_stack(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "one/stack.yaml": STACK % "one",
            "one/vm.yaml": doc("VM", "a", "{source: ubuntu}"),
            "one/nested/more.yaml": doc("VM", "b", "{source: ubuntu}"),
            "two/all.yml": STACK % "two" + "---\n" + doc("VM", "a", "{source: ubuntu}"),
            "two/inner/stack.yaml": "# comment\nkind: 'Stack'   # quoted\napiVersion: arkerctl/v1\n",
            "loose.yaml": doc("Filesystem", "data", None),
        },
    )
    stacks = discover_stacks([tmp_path])
    found = {
        s.root.relative_to(tmp_path).as_posix(): [f.relative_to(tmp_path).as_posix() for f in s.files]
        for s in stacks
    }
    assert found == {
        ".": ["loose.yaml"],
        "one": ["one/nested/more.yaml", "one/stack.yaml", "one/vm.yaml"],
        "two": ["two/all.yml"],
        "two/inner": ["two/inner/stack.yaml"],
    }
    states = [load_stack(s.files, root=s.root, environ={}) for s in stacks]
    assert [s.stack.name for s in states] == [tmp_path.name.lower().replace("_", "-"), "one", "two", "inner"]
    assert states[1].addresses == ("vm.a", "vm.b")


def test_a_single_stack_stays_whole(tmp_path: Path) -> None:
    write(tmp_path, {"stack.yaml": STACK % "s", "sub/vm.yaml": doc("VM", "a", "{source: ubuntu}")})
    (only,) = discover_stacks([tmp_path])
    assert only.root == tmp_path and len(only.files) == 2


def test_missing_paths_and_empty_folders_are_left_to_loading(tmp_path: Path) -> None:
    (stack,) = discover_stacks([tmp_path / "nope"])
    assert stack.files == (tmp_path / "nope",)
    (stack,) = discover_stacks([tmp_path])
    assert stack.root == tmp_path and stack.files == (tmp_path,)


def test_loading_several_stacks_as_one_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"a/stack.yaml": STACK % "a", "b/stack.yaml": STACK % "b"})
    with pytest.raises(Exception, match="more than one Stack document"):
        load_stack([tmp_path], environ={})
