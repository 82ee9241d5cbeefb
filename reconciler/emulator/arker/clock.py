"""Time and identifier helpers shared by the Arker handlers."""

from __future__ import annotations

import functools
import random
import re
import secrets
import time
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


# VM ids only need to be unique, not secret: a generator seeded once spares a system call per fork.
_VM_IDS = random.Random()
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def new_vm_id() -> str:
    """A random version-4 UUID, as ``str(uuid.uuid4())`` writes it."""
    h = f"{(_VM_IDS.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def looks_like_vm_id(value: str) -> bool:
    return bool(VM_ID_PATTERN.match(value))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
