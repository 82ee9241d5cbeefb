"""Time and identifier helpers shared by the Arker handlers."""

from __future__ import annotations

import functools
import re
import secrets
import time
import uuid
from datetime import datetime, timezone

__all__ = [
    "VM_ID_PATTERN",
    "from_epoch",
    "looks_like_vm_id",
    "new_id",
    "new_vm_id",
    "now_epoch",
    "now_rfc3339",
    "parse_rfc3339",
]

# VM ids are UUIDs; the contract promises names never have the shape of a VM id.
VM_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
)


def now_epoch() -> float:
    return time.time()


@functools.lru_cache(maxsize=16384)  # records' timestamps are rendered on every read of them
def from_epoch(epoch: float) -> str:
    """RFC 3339 UTC with millisecond precision and a ``Z`` suffix."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_rfc3339() -> str:
    return from_epoch(now_epoch())


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp that carries an explicit offset; ValueError otherwise."""
    found = _RFC3339.match(value)
    if not found:
        raise ValueError("must be an RFC 3339 timestamp with an explicit UTC offset")
    fraction, offset = found.group(1) or "", found.group(2)
    # Python 3.10's fromisoformat takes only 3 or 6 fraction digits: normalise to 6.
    micros = (fraction[1:] + "000000")[:6] if fraction else "000000"
    head = value[:19].replace("t", "T").replace(" ", "T")
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{head}.{micros}{zone}")
    except ValueError as exc:
        raise ValueError("must be a valid RFC 3339 timestamp") from exc


def new_vm_id() -> str:
    return str(uuid.uuid4())


def looks_like_vm_id(value: str) -> bool:
    return bool(VM_ID_PATTERN.match(value))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
