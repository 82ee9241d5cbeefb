"""One HTTP request and its complete (capped) response: the seam between the provider clients and the wire.

Two implementations:

- :class:`~reconciler.providers._h1.H1Exchange`, the default: HTTP/1.1 keep-alive connections straight on
  asyncio. An API call costs ~0.1 ms of client CPU there against ~1.5 ms through httpx's client and
  httpcore's pool (measured; docs/performance.md), and the engine makes thousands of calls per plan.
- :class:`~reconciler.providers._httpx_exchange.HttpxExchange`, over an ``httpx.AsyncClient``: for
  injected httpx transports (tests, the demo: ``MockTransport``/``ASGITransport``) and whenever the
  environment names a proxy, which httpx honours.

``reconciler.providers._http_core.open_exchange`` picks one. Either raises only the failures below (the
platform's HTTP core maps them into its typed tree)::

    ExchangeError
    ├── ExchangeConnectError   nothing was sent: refused, DNS, TLS, connect or pool timeout
    ├── ExchangeTimeout        sent; no complete answer in time
    ├── ExchangeLost           sent; the answer was lost or malformed
    └── ExchangeTooLarge       the body is over the cap
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Exchange",
    "ExchangeConnectError",
    "ExchangeError",
    "ExchangeLost",
    "ExchangeTimeout",
    "ExchangeTooLarge",
    "Params",
    "RawReply",
]

# Query parameters: a mapping, or pairs (a name may repeat).
Params = Mapping[str, str] | tuple[tuple[str, str], ...]


class ExchangeError(Exception):
    """A request that got no usable answer. The message never holds request headers or bodies."""


class ExchangeConnectError(ExchangeError):
    """No connection (or no free slot in the pool): the request was not sent."""


class ExchangeTimeout(ExchangeError):
    """The request was sent; the answer did not complete in time."""


class ExchangeLost(ExchangeError):
    """The request was sent; the answer was lost (connection closed, malformed response)."""


class ExchangeTooLarge(ExchangeError):
    """The response body is larger than the cap."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RawReply:
    """Status, headers (look names up in lower case) and the whole body."""

    status: int
    headers: Mapping[str, str]
    content: bytes


class Exchange(Protocol):
    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Params | None,
        headers: Mapping[str, str],
        content: bytes | None,
        cap: int,
    ) -> RawReply: ...

    def warm(self, url: str, connections: int) -> None:
        """Open up to ``connections`` to ``url``'s origin ahead of a burst of requests (in the background;
        best effort: failures are left to the requests)."""

    async def aclose(self) -> None: ...
