"""The hint of a state-database connection error follows what libpq said."""

from __future__ import annotations

import pytest

from reconciler.state._pg_errors import StateConnectionError


@pytest.mark.parametrize(
    ("reason", "hint"),
    [
        ('invalid URI query parameter: "bogus_param"', "query parameters"),
        ('invalid connection option "bogus"', "query parameters"),
        ("terminating connection due to administrator command", "stopped or restarted"),
        ("server closed the connection unexpectedly", "stopped or restarted"),
        ('connection to server at "127.0.0.1", port 1 failed: Connection refused', "the credentials"),
        ('password authentication failed for user "u"', "PGPASSWORD"),
    ],
)
def test_the_hint_names_what_to_check(reason: str, hint: str) -> None:
    message = str(StateConnectionError("postgresql://u@h/db?schema=s&stack=x", reason))
    assert message.startswith("cannot reach the state database postgresql://u@h/db?schema=s&stack=x: ")
    assert hint in message
