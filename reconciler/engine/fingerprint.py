"""The fingerprint of a plan's inputs, so a saved plan can refuse to apply over a changed world."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from reconciler.state.model import StateDocument, canonical_json, json_string

if TYPE_CHECKING:  # pragma: no cover - typing only, avoids an import cycle with model.py
    from .model import LiveResource

__all__ = ["compute_fingerprint", "live_text"]


def live_text(found: LiveResource) -> str:
    """The canonical text one live object contributes (computed ahead by ``PlanMemo`` during refresh)."""
    return canonical_json({"id": found.id, "values": found.values})


def compute_fingerprint(
    state: StateDocument | None,
    live: Mapping[str, LiveResource],
    addresses: Iterable[str],
    *,
    known: Mapping[str, str] | None = None,
) -> str:
    """``sha256:<hex>`` over the state's lineage and serial and the live objects at ``addresses``.

    The serial grows on every state write, so lineage+serial stands for the whole state document. Live
    objects are hashed by id and comparable values (absence counts too: an object deleted since the plan
    was made changes the fingerprint). Only the addresses the plan considered take part, so a targeted plan
    is not made stale by unrelated objects. ``known``: ``live_text`` of some of the objects in ``live``,
    already computed.
    """
    # The hash of ``canonical_json({"lineage": ..., "live": {address: object}, "serial": ...})``, fed one
    # object at a time: the text of the whole live view (tens of MB at 10,000 VMs) is never built.
    digest = hashlib.sha256()
    lineage = state.lineage if state is not None else None
    serial = state.serial if state is not None else None
    digest.update(f'{{"lineage":{canonical_json(lineage)},"live":{{'.encode())
    texts = known or {}
    for index, address in enumerate(sorted(set(addresses))):
        found = live.get(address)
        text = "null" if found is None else texts.get(address) or live_text(found)
        separator = "," if index else ""
        digest.update(f"{separator}{json_string(address)}:{text}".encode())
    digest.update(f'}},"serial":{canonical_json(serial)}}}'.encode())
    return "sha256:" + digest.hexdigest()
