"""Diagnostics (one problem each, located at ``file:line:column``) and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Diagnostic", "ManifestError", "SourceLocation"]


class SourceLocation(BaseModel):
    """Where a node starts in a manifest file; ``line`` and ``column`` are 1-based."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Diagnostic(BaseModel):
    """One problem, printed as ``file:line:col: error: message (hint)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"

    @classmethod
    def at(
        cls,
        location: SourceLocation,
        message: str,
        hint: str | None = None,
        *,
        severity: Literal["error", "warning"] = "error",
    ) -> Diagnostic:
        return cls(
            file=location.file,
            line=location.line,
            column=location.column,
            message=message,
            hint=hint,
            severity=severity,
        )

    @property
    def location(self) -> SourceLocation:
        return SourceLocation(file=self.file, line=self.line, column=self.column)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)

    def __str__(self) -> str:
        # Line 0: a problem with a whole path (missing, empty folder), which has no position to show.
        where = f"{self.file}:{self.line}:{self.column}" if self.line > 0 else self.file
        text = f"{where}: {self.severity}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ManifestError(Exception):
    """Every problem found in one run, sorted by file, line and column (never just the first)."""

    def __init__(self, diagnostics: Iterable[Diagnostic], warnings: Iterable[Diagnostic] = ()) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(set(diagnostics), key=Diagnostic.sort_key))
        # Not problems, so not in str(): e.g. unset ${env:...} variables while validating.
        self.warnings: tuple[Diagnostic, ...] = tuple(sorted(set(warnings), key=Diagnostic.sort_key))
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.diagnostics)
        lines = [str(d) for d in self.diagnostics]
        lines.append(f"{count} error{'' if count == 1 else 's'}")
        return "\n".join(lines)
