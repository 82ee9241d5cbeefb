"""State: the document of what was applied, and the backends that store and lock it."""

from typing import TYPE_CHECKING, Any

from ._pg_errors import StateConnectionError
from .backend import Lock, StateBackend
from .codec import StateEncoder, decode_state, encode_state
from .errors import (
    LockCorruptError,
    LockHeldError,
    LockLostError,
    LockMismatchError,
    StateConfigurationError,
    StateConflictError,
    StateCorruptError,
    StateError,
    StateLineageError,
    StateLockError,
    StateWriteError,
)
from .local import LocalLock, LocalStateBackend
from .lockinfo import LockInfo, LockRequest
from .model import (
    STATE_FORMAT_VERSION,
    ResourceState,
    StateDocument,
    canonical_json,
    config_hash,
    secret_digest,
)
from .share import ValueSharer
from .transfer import Pushed, SerialHistory, TransferError, migrate, pull, push
from .url import DEFAULT_STATE_URL, open_backend, redact_url

if TYPE_CHECKING:
    from .postgres import HistoryEntry, PostgresBackend, PostgresLock

# Importing the PostgreSQL driver costs about a quarter of a second: only when these names are used.
_LAZY = {"HistoryEntry": "postgres", "PostgresBackend": "postgres", "PostgresLock": "postgres"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_STATE_URL",
    "STATE_FORMAT_VERSION",
    "HistoryEntry",
    "LocalLock",
    "LocalStateBackend",
    "Lock",
    "LockCorruptError",
    "LockHeldError",
    "LockInfo",
    "LockLostError",
    "LockMismatchError",
    "LockRequest",
    "PostgresBackend",
    "PostgresLock",
    "Pushed",
    "ResourceState",
    "SerialHistory",
    "StateBackend",
    "StateConfigurationError",
    "StateConflictError",
    "StateConnectionError",
    "StateCorruptError",
    "StateDocument",
    "StateEncoder",
    "StateError",
    "StateLineageError",
    "StateLockError",
    "StateWriteError",
    "TransferError",
    "ValueSharer",
    "canonical_json",
    "config_hash",
    "decode_state",
    "encode_state",
    "migrate",
    "open_backend",
    "pull",
    "push",
    "redact_url",
    "secret_digest",
]
