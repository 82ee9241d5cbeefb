"""The machine-readable plan (SPEC §4): a pydantic model of the document, and builders from a ``Plan``.

The model is the single source of the JSON Schema in ``schemas/plan.schema.json`` (``make schemas``), so
the schema and what ``plan_json`` writes cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from reconciler.engine import Action, Change, Plan

from .wording import has_drift

__all__ = [
    "FORMAT_VERSION",
    "PlanDocument",
    "drift_document",
    "drift_json",
    "plan_document",
    "plan_json",
]

FORMAT_VERSION = "1"

_DOC = ConfigDict(frozen=True, extra="forbid")

# The six spellings of SPEC §4; a list of strings in Python, an enum of whole lists in the schema.
Actions = Annotated[
    tuple[str, ...],
    WithJsonSchema(
        {
            "description": "What happens to the object; replacements list their two steps in order.",
            "enum": [
                ["create"],
                ["update"],
                ["delete", "create"],
                ["create", "delete"],
                ["delete"],
                ["no-op"],
            ],
        }
    ),
]
Value = Annotated[Any, WithJsonSchema({"description": 'A JSON value; "(sensitive)" where masked.'})]
Count = Annotated[int, Field(ge=0)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class ChangeEntry(BaseModel):
    """One field that differs between the live object and the manifests."""

    model_config = _DOC

    path: str
    before: Value
    after: Value
    forces_replacement: bool
    sensitive: bool


class ResourceChangeEntry(BaseModel):
    model_config = _DOC

    address: str
    kind: str
    name: str
    actions: Actions
    reason: str | None
    changes: tuple[ChangeEntry, ...]


class DriftChangeEntry(BaseModel):
    """One field changed outside arkerctl: `before` as last applied, `after` as it is live now."""

    model_config = _DOC

    path: str
    before: Value
    after: Value
    sensitive: bool


class DriftEntry(BaseModel):
    model_config = _DOC

    address: str
    changes: tuple[DriftChangeEntry, ...]
    deleted: bool


class ConflictEntry(BaseModel):
    model_config = _DOC

    address: str
    kind: str
    name: str
    live_id: str
    message: str


class SummaryEntry(BaseModel):
    """Counts of actions; a replacement counts once, as `replace`."""

    model_config = _DOC

    add: Count
    change: Count
    replace: Count
    destroy: Count


class OptionsEntry(BaseModel):
    model_config = _DOC

    destroy: bool
    refresh_only: bool
    targets: tuple[str, ...]
    replace: tuple[str, ...]


class PlanDocument(BaseModel):
    """What `arkerctl plan -o json` writes (SPEC §4); `arkerctl drift -o json` writes it plus `drifted`."""

    model_config = _DOC

    format_version: Literal["1"]
    stack: str
    state_lineage: str | None
    state_serial: Count | None
    resource_changes: tuple[ResourceChangeEntry, ...]
    drift: tuple[DriftEntry, ...]
    conflicts: tuple[ConflictEntry, ...]
    summary: SummaryEntry
    errors: tuple[str, ...]
    options: OptionsEntry
    applyable: bool = Field(description="False while conflicts or errors block apply.")
    # Absent from plan documents (dropped when None), so the schema states only the boolean.
    drifted: Annotated[
        bool | None,
        WithJsonSchema(
            {
                "type": "boolean",
                "description": "Only in drift documents: drift, conflicts or pending changes.",
            }
        ),
    ] = Field(default=None, json_schema_extra=_no_default)


def _change(change: Change) -> ChangeEntry:
    return ChangeEntry(
        path=change.path,
        before=change.before,
        after=change.after,
        forces_replacement=change.forces_replacement,
        sensitive=change.sensitive,
    )


def _document(plan: Plan, stack: str, *, include_noop: bool) -> PlanDocument:
    return PlanDocument(
        format_version=FORMAT_VERSION,
        stack=stack,
        state_lineage=plan.state_lineage,
        state_serial=plan.state_serial,
        resource_changes=tuple(
            ResourceChangeEntry(
                address=rc.address,
                kind=rc.kind,
                name=rc.name,
                actions=tuple(rc.action.json_actions),
                reason=rc.reason,
                changes=tuple(_change(c) for c in sorted(rc.changes, key=lambda c: c.path)),
            )
            for rc in sorted(plan.resource_changes, key=lambda r: r.address)
            if include_noop or rc.action is not Action.NOOP
        ),
        drift=tuple(
            DriftEntry(
                address=d.address,
                changes=tuple(
                    DriftChangeEntry(path=c.path, before=c.before, after=c.after, sensitive=c.sensitive)
                    for c in sorted(d.changes, key=lambda c: c.path)
                ),
                deleted=d.deleted,
            )
            for d in sorted(plan.drift, key=lambda d: d.address)
        ),
        conflicts=tuple(
            ConflictEntry(address=c.address, kind=c.kind, name=c.name, live_id=c.live_id, message=c.message)
            for c in sorted(plan.conflicts, key=lambda c: c.address)
        ),
        summary=SummaryEntry(**plan.summary.model_dump()),
        errors=plan.errors,
        options=OptionsEntry(**plan.options.model_dump()),
        applyable=plan.is_applyable,
    )


def _dump(document: PlanDocument) -> dict[str, Any]:
    data = document.model_dump(mode="json")
    if data["drifted"] is None:
        del data["drifted"]  # a plan document has no such field; only drift documents set it
    return data


def plan_document(plan: Plan, *, stack: str) -> dict[str, Any]:
    """The SPEC §4 document as plain data: every resource change (no-ops included), drift, conflicts,
    summary, plus ``errors``, ``options`` and ``applyable``. Values are already masked by the engine.
    """
    return _dump(_document(plan, stack, include_noop=True))


def drift_document(plan: Plan, *, stack: str) -> dict[str, Any]:
    """The drift view in the plan document's shape (same schema): ``resource_changes`` holds only the
    pending changes that are not no-ops, and ``drifted`` says whether anything differs at all.
    """
    document = _document(plan, stack, include_noop=False)
    return _dump(document.model_copy(update={"drifted": has_drift(plan)}))


def _text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def plan_json(plan: Plan, *, stack: str) -> str:
    """``plan_document`` as JSON text: sorted keys, two-space indent, trailing newline."""
    return _text(plan_document(plan, stack=stack))


def drift_json(plan: Plan, *, stack: str) -> str:
    """``drift_document`` as JSON text (the plan document's shape; see ``drift_document``)."""
    return _text(drift_document(plan, stack=stack))
