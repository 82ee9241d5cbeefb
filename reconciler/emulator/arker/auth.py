"""Bearer API keys mapped to organizations.

An organization is known by name; its id is derived from the name (stable across restarts, so VMs in a
``--db`` file stay owned by the same org). ``ArkerHQ`` owns the golden VMs and its id is its name, as
the vendor SDK assumes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ..settings import ApiKeyGrant
from .errors import ApiError

__all__ = ["ARKER_HQ", "Org", "OrgDirectory", "org_for_name"]

_RECENT = 256  # accepted Authorization headers remembered (cleared when full)


@dataclass(frozen=True, slots=True)
class Org:
    org_id: str
    org_name: str


def org_for_name(name: str) -> Org:
    if name == "ArkerHQ":
        return Org("ArkerHQ", "ArkerHQ")
    return Org("org_" + hashlib.sha256(name.encode()).hexdigest()[:20], name)


ARKER_HQ = org_for_name("ArkerHQ")


class OrgDirectory:
    """Which key is which org."""

    def __init__(self, grants: Iterable[ApiKeyGrant]) -> None:
        self._by_key: dict[bytes, Org] = {}
        orgs = {ARKER_HQ.org_id: ARKER_HQ}
        for grant in grants:
            org = org_for_name(grant.org)
            self._by_key[hashlib.sha256(grant.key.get_secret_value().encode()).digest()] = org
            orgs[org.org_id] = org
        self._by_id = orgs
        # Recently accepted headers -> org: a client sends the same header on every request, so most
        # requests skip parsing and hashing the key (the settings hold the keys in memory anyway).
        self._recent: dict[str, Org] = {}

    def authenticate(self, authorization: str | None) -> Org:
        """The org of an ``Authorization: Bearer KEY`` header; 401 ``unauthorized`` otherwise."""
        if not authorization:
            raise ApiError.unauthorized()
        org = self._recent.get(authorization)
        if org is not None:
            return org
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError.unauthorized()
        # The directory holds keys as digests only.
        org = self._by_key.get(hashlib.sha256(token.encode()).digest())
        if org is None:
            raise ApiError.unauthorized()
        if len(self._recent) >= _RECENT:
            self._recent.clear()
        self._recent[authorization] = org
        return org

    def known(self, org_id: str) -> Org | None:
        return self._by_id.get(org_id)
