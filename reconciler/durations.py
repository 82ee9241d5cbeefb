"""Human durations for options such as ``--lock-timeout``: ``0s``, ``30s``, ``2m``, ``1h30m``, ``500ms``.

Grammar: one or more ``<number><unit>`` terms, units ``h``, ``m``, ``s``, ``ms`` from largest to smallest,
each at most once; numbers are decimal (``1.5s``). A bare ``0`` is allowed (zero needs no unit). Sums are
exact (``Fraction``) and converted to float seconds once at the end, so ``format_duration`` and
``parse_duration`` round-trip every whole number of milliseconds.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["format_duration", "parse_duration"]

_UNITS: dict[str, Fraction] = {
    "h": Fraction(3600),
    "m": Fraction(60),
    "s": Fraction(1),
    "ms": Fraction(1, 1000),
}
_ORDER = ("h", "m", "s", "ms")
_SHAPE = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)[a-zA-Z]*)+", re.ASCII)
_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([a-zA-Z]*)", re.ASCII)
_EXAMPLES = "e.g. 0s, 30s, 2m, 1h30m or 500ms"


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ``ValueError`` with a message fit for the user on anything else."""
    source = text.strip()
    if not source:
        raise ValueError(f"empty duration; expected {_EXAMPLES}")
    if source.startswith("-"):
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    if source == "0":
        return 0.0
    if not _SHAPE.fullmatch(source):
        raise ValueError(f"invalid duration {text!r}; expected {_EXAMPLES}")
    total = Fraction(0)
    last_rank = -1
    for match in _TERM.finditer(source):
        number, unit = match.groups()
        if not unit:
            raise ValueError(f"invalid duration {text!r}: missing unit (h, m, s or ms) after {number}")
        if unit not in _UNITS:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r} (use h, m, s or ms)")
        rank = _ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {text!r}: units must go from largest to smallest (h, m, s, ms), "
                "each at most once"
            )
        last_rank = rank
        total += Fraction(number) * _UNITS[unit]
    return float(total)


def format_duration(seconds: float) -> str:
    """The shortest canonical text for ``seconds`` rounded to the millisecond (``90`` -> ``1m30s``)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format duration {seconds!r}")
    millis = round(Fraction(seconds) * 1000)
    if millis == 0:
        return "0s"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    terms = ((hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms"))
    return "".join(f"{value}{unit}" for value, unit in terms if value)
