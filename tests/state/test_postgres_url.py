"""Parsing ``postgresql://`` state URLs (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.state import PostgresBackend, StateBackend, StateConfigurationError, open_backend
from reconciler.state._pg_url import DEFAULT_HISTORY, DEFAULT_LEASE, parse_url


def test_defaults() -> None:
    parsed = parse_url("postgresql://alice@db.internal:5432/arker")
    assert (parsed.schema_name, parsed.stack, parsed.history, parsed.lease) == (
        "arkerctl",
        "default",
        DEFAULT_HISTORY,
        DEFAULT_LEASE,
    )
    assert parsed.conninfo == (
        "postgresql://alice@db.internal:5432/arker?connect_timeout=10&application_name=arkerctl"
    )
    assert parsed.location == "postgresql://alice@db.internal:5432/arker?schema=arkerctl&stack=default"


def test_our_parameters_are_taken_out_and_libpq_ones_passed_on() -> None:
    parsed = parse_url(
        "postgres://ci@db/arker?schema=fleet_state&stack=prod%20eu&history=5&lease=1m30s"
        "&sslmode=require&host=/run/postgresql&connect_timeout=3"
    )
    assert (parsed.schema_name, parsed.stack, parsed.history, parsed.lease) == (
        "fleet_state",
        "prod eu",
        5,
        90.0,
    )
    assert parsed.conninfo == (
        "postgresql://ci@db/arker?sslmode=require&host=/run/postgresql&connect_timeout=3&application_name=arkerctl"
    )
    assert parsed.location == "postgres://ci@db/arker?schema=fleet_state&stack=prod%20eu"


def test_open_backend_builds_a_postgres_backend_without_connecting(tmp_path: Path) -> None:
    backend = open_backend("postgresql://alice@127.0.0.1:1/arker?stack=s1&history=2&lease=5s", root=tmp_path)
    assert isinstance(backend, PostgresBackend)
    assert isinstance(backend, StateBackend)
    assert (backend.stack, backend.history_limit, backend.lease) == ("s1", 2, 5.0)
    assert backend.describe() == "postgresql://alice@127.0.0.1:1/arker?schema=arkerctl&stack=s1"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://alice:s3cr3t@db/x", "must not contain a password"),
        ("postgresql://alice:@db/x", "must not contain a password"),
        ("postgresql://alice@db/x?password=s3cr3t", "must not contain a password parameter"),
        ("postgresql://alice@db/x?sslpassword=s3cr3t", "must not contain a sslpassword parameter"),
        ("postgresql://alice:s3/cr3t@db/x", "cannot be read safely"),
        ("postgresql://db/x?password=s3cr3t@b", "cannot be read safely"),
        ("postgresql://alice@db:notaport/x", "not a valid URL"),
        ("postgresql://alice@db/x?schema=1abc", "is not a plain SQL name"),
        ("postgresql://alice@db/x?schema=a;drop", "is not a plain SQL name"),
        ("postgresql://alice@db/x?schema=" + "a" * 64, "is not a plain SQL name"),
        ("postgresql://alice@db/x?stack=", "stack must be 1 to 200"),
        ("postgresql://alice@db/x?history=-1", "history must be a whole number"),
        ("postgresql://alice@db/x?history=many", "history must be a whole number"),
        ("postgresql://alice@db/x?lease=soon", "lease: invalid duration"),
        ("postgresql://alice@db/x?lease=100ms", "lease must be at least 0.5s"),
        ("postgresql://alice@db/x?stack=a&stack=b", "gives the parameter 'stack' twice"),
        ("postgresql://alice@db/x#frag", "must not have a #fragment"),
    ],
)
def test_invalid_urls_are_refused_without_showing_secrets(tmp_path: Path, url: str, problem: str) -> None:
    with pytest.raises(StateConfigurationError) as info:
        open_backend(url, root=tmp_path)
    message = str(info.value)
    assert problem in message
    assert "s3cr3t" not in message and "cr3t" not in message
    assert message.startswith("state URL postgres")


def test_password_refusal_names_the_supported_ways(tmp_path: Path) -> None:
    with pytest.raises(StateConfigurationError) as info:
        open_backend("postgresql://alice:pw@db.internal/arker?schema=s", root=tmp_path)
    message = str(info.value)
    assert message.startswith("state URL postgresql://alice@db.internal/arker: must not contain a password")
    assert "PGPASSWORD" in message and "~/.pgpass" in message
