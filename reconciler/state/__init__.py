"""State: the document of what was applied, and the backends that store and lock it."""

from .model import (
    STATE_FORMAT_VERSION,
    ResourceState,
    StateDocument,
    canonical_json,
    config_hash,
    secret_digest,
)

__all__ = [
    "STATE_FORMAT_VERSION",
    "ResourceState",
    "StateDocument",
    "canonical_json",
    "config_hash",
    "secret_digest",
]
