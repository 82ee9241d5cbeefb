"""Base of every request-body model: strict JSON types, unknown fields refused, values frozen."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["Body", "not_null"]


class Body(BaseModel):
    # strict: no "1" -> 1 or 1 -> true coercions; the contract's JSON types are exact.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def sent(self) -> dict[str, Any]:
        """The fields the client sent (explicit nulls included), as JSON values."""
        return self.model_dump(mode="json", exclude_unset=True)


def not_null(*fields: str) -> Any:
    """A validator for optional fields whose contract type is not nullable: absent is fine, null is not."""

    def check(cls: type[BaseModel], value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    return field_validator(*fields, mode="before")(check)
