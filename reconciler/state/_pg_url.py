"""Parsing a ``postgresql://`` state URL into libpq connection text plus arkerctl's own settings.

``postgresql://USER@HOST:PORT/DB?schema=arkerctl&stack=default&history=20&lease=30s[&sslmode=...]``

``schema``, ``stack``, ``history`` and ``lease`` are ours; every other query parameter goes to libpq as is
(``sslmode``, ``connect_timeout``, ``host=/run/postgresql`` for a unix socket, ...). Passwords are refused:
a manifest is committed to git, so the password must come from ``PGPASSWORD`` or ``~/.pgpass``, which libpq
reads by itself. No message here ever contains more of the URL than ``redact_url`` shows.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit

from pydantic import BaseModel, ConfigDict

from ..durations import parse_duration
from .errors import StateConfigurationError
from .url import redact_url

__all__ = ["DEFAULT_HISTORY", "DEFAULT_LEASE", "DEFAULT_SCHEMA", "DEFAULT_STACK", "PostgresURL", "parse_url"]

DEFAULT_SCHEMA = "arkerctl"
DEFAULT_STACK = "default"
DEFAULT_HISTORY = 20
DEFAULT_LEASE = 30.0
_MIN_LEASE = 0.5  # the heartbeat runs three times per lease: shorter leases would mostly measure jitter
_MAX_HISTORY = 10_000
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}", re.ASCII)
_OURS = frozenset({"schema", "stack", "history", "lease"})
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


class PostgresURL(BaseModel):
    """A parsed state URL: what to hand to libpq, and where in the database the stack lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conninfo: str  # a postgresql:// URI for libpq, without our parameters (and never with a password)
    location: str  # for messages: redacted URL plus schema and stack
    schema_name: str = DEFAULT_SCHEMA
    stack: str = DEFAULT_STACK
    history: int = DEFAULT_HISTORY
    lease: float = DEFAULT_LEASE


def _fail(url: str, problem: str) -> StateConfigurationError:
    return StateConfigurationError(f"state URL {redact_url(url)}: {problem}")


def parse_url(url: str, *, default_stack: str | None = None) -> PostgresURL:
    """``url`` checked and split; ``StateConfigurationError`` (never showing a secret) when it is unusable."""
    text = url.strip()
    shown = redact_url(text)
    if "<redacted>" in shown:
        raise _fail(
            text,
            "cannot be read safely (special characters before '@'); it must not contain a password: "
            "give the password in PGPASSWORD or ~/.pgpass",
        )
    try:
        parts = urlsplit(text)
        password = parts.password
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise _fail(text, "is not a valid URL (check the host and port)") from None
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise _fail(text, "is not a postgresql:// URL")
    if password is not None:
        raise _fail(
            text,
            "must not contain a password (manifests are committed): give it in the PGPASSWORD environment "
            "variable or in ~/.pgpass",
        )
    if parts.fragment:
        raise _fail(text, "must not have a #fragment")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _fail(text, "has a malformed query string") from None
    seen: set[str] = set()
    ours: dict[str, str] = {}
    passthrough: list[tuple[str, str]] = []
    for key, value in pairs:
        if key in seen:
            raise _fail(text, f"gives the parameter {key!r} twice")
        seen.add(key)
        if key.lower() in _SECRET_PARAMS:
            raise _fail(
                text,
                f"must not contain a {key} parameter: give the password in PGPASSWORD or ~/.pgpass",
            )
        if key in _OURS:
            ours[key] = value
        else:
            passthrough.append((key, value))

    schema_name = ours.get("schema", DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.fullmatch(schema_name):
        raise _fail(
            text,
            f"schema {schema_name[:70]!r} is not a plain SQL name (letters, digits, '_', at most 63, "
            "not starting with a digit)",
        )
    stack = ours.get("stack", default_stack or DEFAULT_STACK)
    if not stack or len(stack) > 200 or not stack.isprintable():
        raise _fail(text, "stack must be 1 to 200 printable characters")
    history = DEFAULT_HISTORY
    if "history" in ours:
        raw = ours["history"]
        if not raw.isdigit() or int(raw) > _MAX_HISTORY:
            raise _fail(text, f"history must be a whole number from 0 to {_MAX_HISTORY} (got {raw[:20]!r})")
        history = int(raw)
    lease = DEFAULT_LEASE
    if "lease" in ours:
        try:
            lease = parse_duration(ours["lease"])
        except ValueError as exc:
            raise _fail(text, f"lease: {exc}") from None
        if lease < _MIN_LEASE:
            raise _fail(text, f"lease must be at least {_MIN_LEASE:g}s")

    if not any(key == "connect_timeout" for key, _ in passthrough):
        passthrough.append(("connect_timeout", "10"))
    if not any(key == "application_name" for key, _ in passthrough):
        passthrough.append(("application_name", "arkerctl"))
    query = "&".join(f"{quote(key, safe='')}={quote(value, safe='/')}" for key, value in passthrough)
    conninfo = f"postgresql://{parts.netloc}{parts.path}?{query}"
    location = f"{shown}?schema={schema_name}&stack={quote(stack, safe='')}"
    return PostgresURL(
        conninfo=conninfo,
        location=location,
        schema_name=schema_name,
        stack=stack,
        history=history,
        lease=lease,
    )
