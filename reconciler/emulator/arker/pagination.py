"""Opaque cursors over creation order: a cursor is the sequence number of the last item returned."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from .errors import ApiError

__all__ = ["decode_cursor", "encode_cursor", "take_page"]

T = TypeVar("T")
_PREFIX = "c1:"


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(params: Mapping[str, str]) -> int:
    raw = params.get("cursor")
    if not raw:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if not text.startswith(_PREFIX):
            raise ValueError(text)
        seq = int(text[len(_PREFIX) :])
    except (ValueError, UnicodeDecodeError):
        raise ApiError.field("cursor", "is not a cursor this API returned") from None
    if seq < 0:
        raise ApiError.field("cursor", "is not a cursor this API returned")
    return seq


def take_page(items: Iterable[T], limit: int, seq_of: Callable[[T], int]) -> tuple[list[T], str | None]:
    """Up to ``limit`` items, and the cursor of the next page when at least one more item exists."""
    page: list[T] = []
    for item in items:
        if len(page) == limit:
            return page, encode_cursor(seq_of(page[-1]))
        page.append(item)
    return page, None
