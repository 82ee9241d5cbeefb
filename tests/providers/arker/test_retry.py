"""RetryPolicy arithmetic, Retry-After parsing and the replay decision table, as pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from reconciler.providers.arker import errors
from reconciler.providers.arker.retry import Replay, RetryPolicy, parse_retry_after, should_retry


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    draws = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0])
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, random=lambda: next(draws))
    assert [policy.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.backoff(1) == 0.5  # half the 1.0 ceiling
    assert policy.backoff(9) == 0.0  # full jitter reaches zero


def test_backoff_survives_huge_retry_numbers() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, random=lambda: 1.0)
    assert policy.backoff(10_000) == 10.0


def test_server_hint_replaces_backoff_and_is_bounded() -> None:
    policy = RetryPolicy(max_retry_after=30.0, random=lambda: 1.0)
    assert policy.delay(0, 7.0) == 7.0
    assert policy.delay(3, 3600.0) == 30.0
    assert policy.delay(0, None) == policy.backoff(0)


def test_policy_is_frozen_and_validated() -> None:
    policy = RetryPolicy()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        policy.max_attempts = 9  # type: ignore[misc]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        ("12", 12.0),
        (" 5 ", 5.0),
        ("-3", None),
        ("soon", None),
        ("1.5", None),
        ("²", None),
        (None, None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, now=now) == 90.0
    past = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def _api(
    cls: type[errors.ArkerAPIError],
    status: int,
    *,
    recovery: Mapping[str, str] | None = None,
    file_path: str | None = None,
) -> errors.ArkerAPIError:
    return cls("x", status=status, recovery=recovery, file_path=file_path)


# (error, retried when SAFE, retried when UNSAFE) — the table in retry.py's docstring.
TABLE = [
    (errors.ArkerConnectError("refused"), True, True),
    (errors.ArkerTimeoutError("read timeout"), True, False),
    (errors.ArkerConnectionLost("dropped"), True, False),
    (_api(errors.RateLimited, 429), True, True),
    (_api(errors.QuotaExceeded, 429), False, False),
    (_api(errors.CapacityUnavailable, 503), True, True),
    (_api(errors.Unavailable, 503), True, False),
    (_api(errors.Unavailable, 503, recovery={"work": "not_started"}), True, True),
    (_api(errors.Unavailable, 503, recovery={"work": "unknown"}), True, False),
    (_api(errors.GatewayTimeout, 504), True, False),
    (_api(errors.UnknownTransientAPIError, 502), True, False),
    (_api(errors.UnknownTransientAPIError, 429), True, True),
    (_api(errors.ResourceBusy, 409), False, False),
    (_api(errors.Internal, 500), False, False),
    (_api(errors.NotFound, 404), False, False),
    (_api(errors.Conflict, 409), False, False),
    (_api(errors.Unavailable, 200, file_path="/a"), False, False),
    (errors.ArkerProtocolError("bad json"), False, False),
]


@pytest.mark.parametrize(("error", "safe", "unsafe"), TABLE, ids=lambda v: getattr(v, "code", repr(v))[:40])
def test_decision_table(error: errors.ArkerError, safe: bool, unsafe: bool) -> None:
    assert should_retry(error, Replay.SAFE) is safe
    assert should_retry(error, Replay.UNSAFE) is unsafe
