"""Errors of the PostgreSQL state backend that callers may catch without importing the database driver."""

from __future__ import annotations

from .errors import StateError

__all__ = ["StateConnectionError"]


class StateConnectionError(StateError):
    """The state database cannot be reached (or the connection broke); nothing was changed by us."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(
            f"cannot reach the state database {location}: {reason}. Check the host, the database name and "
            "the credentials (PGPASSWORD or ~/.pgpass)."
        )
