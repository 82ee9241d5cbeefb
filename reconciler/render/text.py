"""Terraform-like text views of a plan and of drift, optionally coloured with ANSI escapes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.engine import Action, Change, Plan, ResourceChange

from .values import format_value
from .wording import (
    change_marker,
    conflict_hint,
    drift_summary,
    header,
    not_applyable,
    pending,
    summary_line,
)

__all__ = ["color_enabled", "drift_text", "plan_text"]

_RESET = "\x1b[0m"
_BOLD = "1"
_COLOURS = {"+": "32", "~": "33", "-": "31", "-/+": "35", "+/-": "35", "!": "31"}
_FIELD_INDENT = "      "  # fields sit under the address, Terraform style


def color_enabled(*, isatty: bool, environ: Mapping[str, str]) -> bool:
    """SPEC §3: colour only on a terminal, never when ``NO_COLOR`` is set (non-empty, per no-color.org)
    or the terminal is ``dumb``. The CLI passes ``stream.isatty()`` and ``os.environ``."""
    return isatty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}{_RESET}" if self.color and code and text else text

    def symbol(self, symbol: str) -> str:
        return self.paint(symbol, _COLOURS.get(symbol, ""))

    def bold(self, text: str) -> str:
        return self.paint(text, _BOLD)


def _field(change: Change, marker: str, style: _Style) -> str:
    indent = _FIELD_INDENT + "  "
    if marker == "+":
        value = format_value(change.after, indent)
    elif marker == "-":
        value = format_value(change.before, indent)
    else:
        value = f"{format_value(change.before, indent)} -> {format_value(change.after, indent)}"
    note = " # forces replacement" if change.forces_replacement else ""
    return f"{_FIELD_INDENT}{style.symbol(marker)} {change.path}: {value}{note}"


def _block(symbol: str, address: str, lines: list[str], style: _Style) -> list[str]:
    opening = f"{' ' * (3 - len(symbol))}{style.symbol(symbol)} {address}"
    if not lines:
        return [opening]
    return [opening + " {", *lines, "    }"]


def _resource(rc: ResourceChange, style: _Style) -> list[str]:
    out = [style.bold(f"  # {header(rc)}")]
    if rc.reason:
        out.append(f"  # ({rc.reason})")
    fields = [_field(c, change_marker(c, rc.action), style) for c in sorted(rc.changes, key=lambda c: c.path)]
    return [*out, *_block(rc.action.symbol, rc.address, fields, style)]


def _section(title: str, body: Iterable[list[str]], style: _Style) -> list[str]:
    lines = [style.bold(title), ""]
    for chunk in body:
        lines += [*chunk, ""]
    return lines


def _drift(plan: Plan, style: _Style) -> list[str]:
    if not plan.drift:
        return []
    chunks = []
    for drift in sorted(plan.drift, key=lambda d: d.address):
        if drift.deleted:
            chunks.append(
                [style.bold(f"  # {drift.address} has been deleted"), *_block("-", drift.address, [], style)]
            )
            continue
        fields = [
            _field(c, change_marker(c, Action.UPDATE), style)
            for c in sorted(drift.changes, key=lambda c: c.path)
        ]
        chunks.append(
            [style.bold(f"  # {drift.address} has changed"), *_block("~", drift.address, fields, style)]
        )
    return _section("Objects changed outside arkerctl (live values vs last applied):", chunks, style)


def _problems(plan: Plan, style: _Style) -> list[str]:
    lines: list[str] = []
    if plan.conflicts:
        chunks = []
        for conflict in sorted(plan.conflicts, key=lambda c: c.address):
            chunk = [f"  {style.symbol('!')} {conflict.address}: {conflict.message}"]
            hint = conflict_hint(conflict)
            if hint not in conflict.message:
                chunk.append(f"    to manage it: {hint}")
            chunks.append(chunk)
        lines += _section("Conflicts (live objects arkerctl does not manage):", chunks, style)
    if plan.errors:
        lines += _section("Errors:", ([f"  {style.symbol('!')} {e}"] for e in plan.errors), style)
    return lines


def _changes(plan: Plan, style: _Style, title: str) -> list[str]:
    changes = pending(plan)
    if not changes:
        return []
    return _section(title, (_resource(rc, style) for rc in changes), style)


def _notes(plan: Plan) -> list[str]:
    notes = []
    if plan.options.destroy:
        notes.append("Mode: destroy (every managed object in scope is destroyed).")
    if plan.options.refresh_only:
        notes.append("Mode: refresh-only (no object is changed; drift is recorded into the state).")
    if plan.options.targets:
        notes.append(f"Targeted: {', '.join(plan.options.targets)} (other addresses are not planned).")
    return notes


def _join(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def plan_text(plan: Plan, *, stack: str, color: bool = False) -> str:
    """The plan as a terminal would show it: drift, conflicts, errors, actions, then the summary line.

    Colour codes appear only with ``color=True`` (the caller decides from TTY / ``NO_COLOR``).
    """
    style = _Style(color)
    lines = [f"Stack: {stack}", *_notes(plan), ""]
    lines += _drift(plan, style)
    lines += _problems(plan, style)
    lines += _changes(plan, style, "arkerctl will perform the following actions:")
    lines.append(style.bold(summary_line(plan)))
    blocked = not_applyable(plan)
    if blocked:
        lines.append(style.paint(blocked, _COLOURS["!"]))
    return _join(lines)


def drift_text(plan: Plan, *, stack: str, color: bool = False) -> str:
    """``arkerctl drift``: changes made outside arkerctl (live vs last applied), conflicts, and the pending
    changes (live vs manifests) that an apply would make; "No drift." when there is none of these.
    """
    style = _Style(color)
    lines = [f"Stack: {stack}", ""]
    lines += _drift(plan, style)
    lines += _problems(plan, style)
    lines += _changes(plan, style, "Pending changes (live objects vs manifests):")
    lines.append(style.bold(drift_summary(plan)))
    return _join(lines)
