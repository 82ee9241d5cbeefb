"""``X-API-Key`` keys mapped to organizations (by name; the id is a UUID derived from the name)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from ..settings import ApiKeyGrant
from .errors import ApiError

__all__ = ["Org", "OrgDirectory", "org_for_name"]

_NAMESPACE = uuid.UUID("6f1e4c1a-3f0b-4c55-9a57-0c2d9f7e1b21")


@dataclass(frozen=True, slots=True)
class Org:
    org_id: str
    org_name: str


def org_for_name(name: str) -> Org:
    # Stable across restarts and emulator instances, so tests and demos can predict it.
    return Org(str(uuid.uuid5(_NAMESPACE, name)), name)


class OrgDirectory:
    def __init__(self, grants: Iterable[ApiKeyGrant]) -> None:
        # Keys are held as digests only: the key text is never kept here.
        self._by_key = {
            hashlib.sha256(grant.key.get_secret_value().encode()).digest(): org_for_name(grant.org)
            for grant in grants
        }

    def authenticate(self, api_key: str | None) -> Org:
        """The org of an ``X-API-Key`` header; 401 ``unauthorized`` otherwise."""
        org = self._by_key.get(hashlib.sha256(api_key.strip().encode()).digest()) if api_key else None
        if org is None:
            raise ApiError("unauthorized", "A valid X-API-Key header is required.")
        return org
