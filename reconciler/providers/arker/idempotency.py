"""Deterministic ``Idempotency-Key`` values for forks.

A fork's key is derived from *what* is being created and *why*: the stack's state lineage, the resource
address and the hash of its desired configuration. A retried request, or a whole re-run of ``apply`` after
a crash, therefore sends the same key for the same intended VM and the API answers with the VM it already
forked instead of a second one. A changed configuration (a new hash) or another stack (a new lineage) gets
a new key, so a real replacement is never mistaken for a replay.

The contract limits keys to 1-64 printable ASCII characters. The inputs are hashed, so the key reveals
nothing of the configuration (which may hold secrets) and always fits.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["IDEMPOTENCY_KEY_MAX_LENGTH", "fork_idempotency_key", "valid_idempotency_key"]

IDEMPOTENCY_KEY_MAX_LENGTH = 64
_PREFIX = "arkerctl-fork-"
_VERSION = b"arkerctl/fork-key/v1"
_VALID_KEY = re.compile(rf"[ -~]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}")  # printable ASCII, space to ~


def fork_idempotency_key(
    lineage: str, address: str, config_hash: str, *, generation: int | str | None = None
) -> str:
    """``arkerctl-fork-`` + 48 hex digits of SHA-256 over the length-prefixed inputs (62 characters).

    ``generation`` distinguishes deliberate re-creations of an unchanged configuration (``--replace`` of a
    VM whose config did not change): without it, the API would hand back the VM that was just destroyed.
    """
    digest = hashlib.sha256(_VERSION)
    parts = [lineage, address, config_hash]
    if generation is not None:
        parts.append(str(generation))
    for part in parts:
        raw = part.encode("utf-8")
        # Length prefixes keep ("a", "bc") and ("ab", "c") apart.
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return _PREFIX + digest.hexdigest()[:48]


def valid_idempotency_key(key: str) -> bool:
    """The contract's shape: 1-64 characters, each printable ASCII (space to ``~``)."""
    return _VALID_KEY.fullmatch(key) is not None
