"""What a plan does to one resource address."""

from __future__ import annotations

from enum import Enum

__all__ = ["Action"]


class Action(str, Enum):
    """The plan's verdict for one address; values are the JSON spellings used in plan output."""

    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    DELETE_CREATE = "delete-create"  # replace: destroy the old object, then create the new one
    CREATE_DELETE = "create-delete"  # replace: create the new object first (lifecycle.create_before_destroy)
    DELETE = "delete"

    def __str__(self) -> str:
        return self.value

    @property
    def symbol(self) -> str:
        """The marker the text plan prints in front of the address."""
        return _SYMBOLS[self]

    @property
    def is_replace(self) -> bool:
        return self in (Action.DELETE_CREATE, Action.CREATE_DELETE)

    @property
    def creates(self) -> bool:
        """A new platform object comes into existence (create or either kind of replace)."""
        return self in (Action.CREATE, Action.DELETE_CREATE, Action.CREATE_DELETE)

    @property
    def deletes(self) -> bool:
        """An existing platform object goes away (delete or either kind of replace)."""
        return self in (Action.DELETE, Action.DELETE_CREATE, Action.CREATE_DELETE)

    @property
    def json_actions(self) -> list[str]:
        """The SPEC §4 ``actions`` list (a fresh list each time, so callers may keep it)."""
        return list(_JSON_ACTIONS[self])


_SYMBOLS = {
    Action.NOOP: " ",
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE_CREATE: "-/+",
    Action.CREATE_DELETE: "+/-",
    Action.DELETE: "-",
}

_JSON_ACTIONS: dict[Action, tuple[str, ...]] = {
    Action.NOOP: ("no-op",),
    Action.CREATE: ("create",),
    Action.UPDATE: ("update",),
    Action.DELETE_CREATE: ("delete", "create"),
    Action.CREATE_DELETE: ("create", "delete"),
    Action.DELETE: ("delete",),
}
