"""Error markers shared by the engine and the providers.

The executor decides what to do with a failed operation by its type, not by parsing messages::

    OperationError
     ├── TransientError   worth trying again later (rate limited, unavailable, busy, dropped connection)
     └── PermanentError   retrying cannot help (bad request, conflict, not found, quota, ...)

Provider error trees inherit from these markers (a provider's ``RateLimited`` is a ``TransientError``),
so the engine stays ignorant of any platform while still telling the two apart.
"""

from __future__ import annotations

__all__ = ["OperationError", "PermanentError", "TransientError"]


class OperationError(Exception):
    """An operation on a platform object failed."""


class TransientError(OperationError):
    """The same operation may succeed if tried again later."""


class PermanentError(OperationError):
    """The operation will fail again unless something changes first."""
