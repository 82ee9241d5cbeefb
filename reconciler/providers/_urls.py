"""Address checks the providers share: loopback hosts, IP networks, canonical base URLs."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult

__all__ = ["canonical_url", "is_ip_network", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``localhost`` (or a ``.localhost`` name) or a loopback IP: where plain ``http://`` is acceptable."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_ip_network(entry: str) -> bool:
    """Whether ``entry`` is an IP address or network (CIDR), rather than a host name."""
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def canonical_url(parts: SplitResult) -> str:
    """A checked URL in canonical form: scheme, host[:port] and path, without a trailing slash."""
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
