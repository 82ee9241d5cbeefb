"""Base-URL checks every provider's connection settings share."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult

__all__ = ["canonical_url", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``localhost`` (or a ``.localhost`` name) or a loopback IP: where plain ``http://`` is acceptable."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def canonical_url(parts: SplitResult) -> str:
    """A checked URL in canonical form: scheme, host[:port] and path, without a trailing slash."""
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
