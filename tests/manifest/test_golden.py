"""Golden tests of error output: every folder under ``cases/`` is a broken stack with the exact expected text.

Regenerate with ``UPDATE_GOLDEN=1 pytest tests/manifest/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.manifest import ManifestError, load_stack

CASES = Path(__file__).parent / "cases"
# A "secret" in the environment: no case may ever print it.
ENVIRON = {"CASE_SECRET": "hunter2!", "HOME": "/home/case"}
MAX_LINES = 30  # one screen


def _cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", _cases())
def test_error_output(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CASES / case
    monkeypatch.chdir(folder)
    with pytest.raises(ManifestError) as caught:
        load_stack([Path(".")], environ=ENVIRON)
    text = str(caught.value) + "\n"
    expected_file = folder / "expected.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(text, encoding="utf-8")
    assert text == expected_file.read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert len(text.splitlines()) <= MAX_LINES
    assert "Traceback" not in text


def test_every_case_has_expected_output() -> None:
    missing = [case for case in _cases() if not (CASES / case / "expected.txt").is_file()]
    assert not missing
