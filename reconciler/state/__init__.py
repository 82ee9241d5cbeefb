"""State: the document of what was applied, and the backends that store and lock it."""

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
from .url import DEFAULT_STATE_URL, open_backend, redact_url

__all__ = [
    "DEFAULT_STATE_URL",
    "STATE_FORMAT_VERSION",
    "LocalLock",
    "LocalStateBackend",
    "Lock",
    "LockCorruptError",
    "LockHeldError",
    "LockInfo",
    "LockLostError",
    "LockMismatchError",
    "LockRequest",
    "ResourceState",
    "StateBackend",
    "StateConfigurationError",
    "StateConflictError",
    "StateCorruptError",
    "StateDocument",
    "StateEncoder",
    "StateError",
    "StateLineageError",
    "StateLockError",
    "StateWriteError",
    "canonical_json",
    "config_hash",
    "decode_state",
    "encode_state",
    "open_backend",
    "redact_url",
    "secret_digest",
]
