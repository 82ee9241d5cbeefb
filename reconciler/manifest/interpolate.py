"""``${var:NAME}`` / ``${env:NAME}`` interpolation of string scalars; ``$${`` is a literal ``${``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

__all__ = ["Interpolated", "InterpolationError", "Interpolator"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class InterpolationError(ValueError):
    """A bad or unresolvable ``${...}`` expression; ``hint`` is shown in parentheses."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Interpolated(NamedTuple):
    text: str
    used_env: bool  # the text holds ${env:...} values, which may be secret: never echo it
    missing_env: tuple[str, ...] = ()  # unset variables, when they are tolerated (missing_env="warn")


@dataclass(frozen=True)
class Interpolator:
    """Substitutes expressions in one string.

    ``variables`` is None where ``${var:..}`` is not available (inside the Stack document, which defines the
    vars). An unset environment variable is an error, or with ``missing_env="warn"`` (``validate`` and
    ``graph``, which must work without the secrets) an empty value reported in ``missing_env``.
    """

    variables: Mapping[str, str] | None
    environ: Mapping[str, str]
    missing_env: Literal["error", "warn"] = "error"
    # The var names looked up so far (the loader warns about a --var nothing uses).
    used_vars: set[str] = field(default_factory=set, compare=False)

    def __call__(self, text: str) -> Interpolated:
        if "$" not in text:  # the common case: no work at all
            return Interpolated(text, False)
        out: list[str] = []
        used_env = False
        missing: list[str] = []
        pos = 0
        while True:
            start = text.find("$", pos)
            if start < 0:
                out.append(text[pos:])
                break
            out.append(text[pos:start])
            if text.startswith("$${", start):
                out.append("${")
                pos = start + 3
            elif text.startswith("${", start):
                end = text.find("}", start + 2)
                if end < 0:
                    raise InterpolationError("unterminated '${' in string", "write '$${' for a literal '${'")
                value, is_env = self._expand(text[start + 2 : end], missing)
                used_env = used_env or is_env
                out.append(value)
                pos = end + 1
            else:
                out.append("$")
                pos = start + 1
        return Interpolated("".join(out), used_env, tuple(missing))

    def _expand(self, expression: str, missing: list[str]) -> tuple[str, bool]:
        source, sep, name = expression.partition(":")
        if not sep or source not in ("var", "env") or not _NAME.match(name):
            raise InterpolationError(
                f"bad interpolation '${{{expression}}}': expected ${{var:NAME}} or ${{env:NAME}}",
                "write '$${' for a literal '${'",
            )
        if source == "env":
            if name not in self.environ:
                if self.missing_env == "warn":
                    missing.append(name)
                    return "", True
                raise InterpolationError(
                    f"environment variable '{name}' is not set (used as ${{env:{name}}})"
                )
            return self.environ[name], True
        if self.variables is None:
            raise InterpolationError(
                f"${{var:{name}}} cannot be used in the Stack document", "the Stack document defines the vars"
            )
        self.used_vars.add(name)
        if name not in self.variables:
            close = difflib.get_close_matches(name, list(self.variables), n=1)
            hint = (
                f"did you mean '{close[0]}'?" if close else "define it in the Stack's spec.vars or pass --var"
            )
            raise InterpolationError(f"var '{name}' is not defined (used as ${{var:{name}}})", hint)
        return self.variables[name], False
