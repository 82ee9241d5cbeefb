from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        (".25s", 0.25),
        ("1h2m3s4ms", 3723.004),
        (" 45s ", 45.0),
        ("90s", 90.0),
        ("0.1ms", 0.0001),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("5", "missing unit"),
        ("1m30", "missing unit"),
        ("-1s", "must not be negative"),
        ("1s1h", "from largest to smallest"),
        ("1m1m", "from largest to smallest"),
        ("1d", "unknown unit 'd'"),
        ("3sec", "unknown unit 'sec'"),
        ("abc", "expected e.g. 0s, 30s, 2m, 1h30m or 500ms"),
        ("1 s", "expected e.g."),
        ("s", "expected e.g."),
        ("\u0663s", "expected e.g."),  # non-ASCII digit
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_duration(text)
    assert repr(text) in str(info.value) or "empty" in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.0004, "0s"), (0.5, "500ms"), (90, "1m30s"), (3600, "1h"), (5400.25, "1h30m250ms")],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_format_refuses_what_is_not_a_duration(bad: float) -> None:
    with pytest.raises(ValueError):
        format_duration(bad)


@given(st.integers(min_value=0, max_value=10**12))
def test_round_trip_of_every_millisecond_count(millis: int) -> None:
    seconds = millis / 1000
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert format_duration(parse_duration(text)) == text


@given(
    st.integers(0, 1000),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
    st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_parse_sums_the_terms(hours: int, minutes: int, secs: int, millis: int, present: list[bool]) -> None:
    terms = [(hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms")]
    chosen = [(value, unit) for (value, unit), keep in zip(terms, present, strict=True) if keep] or [
        (secs, "s")
    ]
    text = "".join(f"{value}{unit}" for value, unit in chosen)
    scale = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
    expected_millis = sum(value * scale[unit] for value, unit in chosen)
    assert parse_duration(text) == expected_millis / 1000
