"""Errors of the PostgreSQL state backend that callers may catch without importing the database driver."""

from __future__ import annotations

from .errors import StateError

__all__ = ["StateConnectionError"]


class StateConnectionError(StateError):
    """The state database cannot be reached (or the connection broke); nothing was changed by us."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"cannot reach the state database {location}: {reason}. {_hint(reason)}")


def _hint(reason: str) -> str:
    """What to check, by what libpq said (its messages are stable English text)."""
    text = reason.lower()
    if "invalid" in text and ("parameter" in text or "option" in text):
        return "Check the state URL's query parameters (libpq's, besides schema, stack, history and lease)."
    if "terminating connection" in text or "server closed the connection" in text:
        return "The server ended the connection (stopped or restarted?): run again once it is back."
    return "Check the host, the database name and the credentials (PGPASSWORD or ~/.pgpass)."
