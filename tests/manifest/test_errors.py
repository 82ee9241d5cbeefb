from __future__ import annotations

import pytest
from pydantic import ValidationError

from reconciler.manifest import Diagnostic, ManifestError, SourceLocation


def test_diagnostic_text_with_and_without_hint() -> None:
    plain = Diagnostic(file="a.yaml", line=3, column=7, message="unknown key 'x'")
    hinted = Diagnostic(file="a.yaml", line=3, column=7, message="unknown key 'x'", hint="did you mean 'y'?")
    assert str(plain) == "a.yaml:3:7: error: unknown key 'x'"
    assert str(hinted) == "a.yaml:3:7: error: unknown key 'x' (did you mean 'y'?)"


def test_warning_severity_is_shown() -> None:
    where = SourceLocation(file="b.yaml", line=1, column=2)
    assert str(Diagnostic.at(where, "env unset", severity="warning")) == "b.yaml:1:2: warning: env unset"


def test_diagnostic_is_frozen() -> None:
    diagnostic = Diagnostic(file="a.yaml", line=1, column=1, message="m")
    with pytest.raises(ValidationError):
        diagnostic.line = 2  # type: ignore[misc]


def test_manifest_error_sorts_dedupes_and_counts() -> None:
    second = Diagnostic(file="b.yaml", line=1, column=1, message="later file")
    first = Diagnostic(file="a.yaml", line=9, column=1, message="late line")
    earliest = Diagnostic(file="a.yaml", line=2, column=5, message="early")
    error = ManifestError([second, first, earliest, first])
    assert error.diagnostics == (earliest, first, second)
    assert str(error).splitlines() == [str(earliest), str(first), str(second), "3 errors"]
    assert str(ManifestError([earliest])).endswith("\n1 error")


def test_location_text() -> None:
    assert str(SourceLocation(file="x/y.yaml", line=4, column=2)) == "x/y.yaml:4:2"
