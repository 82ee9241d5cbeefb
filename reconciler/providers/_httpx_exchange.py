"""The :class:`~reconciler.providers._exchange.Exchange` over an ``httpx.AsyncClient``: used with an injected
httpx transport (tests, the demo) and when the environment names a proxy."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import httpx

from reconciler.providers._exchange import (
    ExchangeConnectError,
    ExchangeError,
    ExchangeLost,
    ExchangeTimeout,
    ExchangeTooLarge,
    Params,
    RawReply,
)

__all__ = ["HttpxExchange"]


def _describe(exc: BaseException) -> str:
    if not isinstance(exc, httpx.HTTPError):
        # A transport (an ASGI app, a custom transport) failing outside httpx's own types: the type is
        # kept so a bug there stays diagnosable; its text could be anything, so it is left out.
        return f"transport failed: {type(exc).__name__}"
    detail = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {detail}" if detail else name


class HttpxExchange:
    """Requests through an ``httpx.AsyncClient`` (its transport, its proxies)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        params: Params | None,
        headers: Mapping[str, str],
        content: bytes | None,
        cap: int,
    ) -> RawReply:
        client = self.client
        try:
            request = client.build_request(method, url, params=params, content=content, headers=headers)
            response = await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ExchangeConnectError(_describe(exc)) from None
        except httpx.TimeoutException as exc:
            raise ExchangeTimeout(_describe(exc)) from None
        except Exception as exc:
            raise ExchangeLost(_describe(exc)) from None
        try:
            body = await self._read(response, cap)
        except ExchangeError:
            raise
        except httpx.TimeoutException as exc:
            raise ExchangeTimeout(_describe(exc)) from None
        except Exception as exc:
            raise ExchangeLost(_describe(exc)) from None
        finally:
            # Closing a stream that already broke can raise again; the first failure is the one reported.
            with contextlib.suppress(Exception):
                await response.aclose()
        return RawReply(response.status_code, response.headers, body)

    @staticmethod
    async def _read(response: httpx.Response, cap: int) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ExchangeTooLarge(
                f"response declares {int(declared)} bytes, above the {cap}-byte cap", response.status_code
            )
        buffer = bytearray()
        # aiter_bytes yields decoded content: a compressed bomb is bounded by what it inflates to.
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) > cap:
                raise ExchangeTooLarge(f"response body exceeds the {cap}-byte cap", response.status_code)
        return bytes(buffer)

    def warm(self, url: str, connections: int) -> None:
        """Nothing: httpx's pool opens its connections as requests need them."""

    async def aclose(self) -> None:
        await self.client.aclose()
