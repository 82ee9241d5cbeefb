"""The fingerprint of a plan's inputs, so a saved plan can refuse to apply over a changed world."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from reconciler.state.model import StateDocument, canonical_json

if TYPE_CHECKING:  # pragma: no cover - typing only, avoids an import cycle with model.py
    from .model import LiveResource

__all__ = ["compute_fingerprint"]


def compute_fingerprint(
    state: StateDocument | None,
    live: Mapping[str, LiveResource],
    addresses: Iterable[str],
) -> str:
    """``sha256:<hex>`` over the state's lineage and serial and the live objects at ``addresses``.

    The serial grows on every state write, so lineage+serial stands for the whole state document. Live
    objects are hashed by id and comparable values (absence counts too: an object deleted since the plan
    was made changes the fingerprint). Only the addresses the plan considered take part, so a targeted plan
    is not made stale by unrelated objects.
    """
    objects: dict[str, Any] = {}
    for address in sorted(set(addresses)):
        found = live.get(address)
        objects[address] = None if found is None else {"id": found.id, "values": found.values}
    payload = {
        "lineage": state.lineage if state is not None else None,
        "serial": state.serial if state is not None else None,
        "live": objects,
    }
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()
