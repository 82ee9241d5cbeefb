"""Choosing a state backend from the Stack's ``state:`` URL.

* ``file://.arkerctl/state.json`` - relative to the stack root (the default);
* ``file:///abs/path/state.json`` or ``file://localhost/abs/path/state.json`` - absolute;
* ``postgresql://user@host/db?schema=arkerctl&stack=NAME`` (or ``postgres://``) - the PostgreSQL backend
  (``postgres.py``; the password only from PGPASSWORD or ~/.pgpass).

URLs may carry credentials (``postgresql://user:secret@host/db?password=...``): every message uses
``redact_url`` so neither the password nor the query string is ever shown.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

from .backend import StateBackend
from .errors import StateConfigurationError
from .local import LocalStateBackend

__all__ = ["DEFAULT_STATE_URL", "open_backend", "redact_url"]

DEFAULT_STATE_URL = "file://.arkerctl/state.json"
_SUPPORTED = "file://PATH (relative to the stack root, or file:///ABSOLUTE/PATH) or postgresql://USER@HOST/DB"


def redact_url(url: str) -> str:
    """``url`` without password, query or fragment: safe to show in messages and logs.

    Passwords are not always percent-encoded in practice (``user:pa/ss@host``), and then a URL cannot be
    split reliably. Rather than guess (and risk showing part of a secret), an ambiguous authority - more
    than one ``@``, or ``/?#`` before the ``@`` - is replaced by ``<redacted>`` as a whole.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        # Not a URL at all: it may still be a credential pasted in the wrong place; show only its shape.
        return "<invalid URL>" if (":" in url or "@" in url) else url
    prefix = ""
    if scheme.lower() != "file" and "@" in rest:
        userinfo, _, after = rest.partition("@")
        if "@" in after or any(mark in userinfo for mark in "/?#"):
            return f"{scheme}://<redacted>"
        user = userinfo.split(":", 1)[0]
        prefix = f"{user}@" if user else ""
        rest = after
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{prefix}{rest}"


def _local_path(url: str, rest: str, root: Path) -> Path:
    if "?" in rest or "#" in rest:
        raise StateConfigurationError(
            f"state URL {redact_url(url)} must not have a query or fragment; expected {_SUPPORTED}"
        )
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    raw = unquote(rest)
    if not raw or raw.endswith("/"):
        raise StateConfigurationError(f"state URL {redact_url(url)} must name a file; expected {_SUPPORTED}")
    path = Path(raw)
    if not path.is_absolute():
        path = Path(root) / path
    # Normalise ".." without resolving symlinks: the user's spelling of the location is what we report.
    path = Path(os.path.abspath(path))
    if path.is_dir():
        raise StateConfigurationError(f"state URL {redact_url(url)} names a directory ({path}), not a file")
    return path


def _open_postgresql(url: str, root: Path, stack: str | None = None) -> StateBackend:
    # Imported here: the driver takes a quarter of a second to import and file:// stacks never need it.
    try:
        from .postgres import PostgresBackend
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise StateConfigurationError(
            f"state {redact_url(url)} needs the PostgreSQL driver, which cannot be imported ({exc}); "
            "install arkerctl with its dependencies (psycopg)"
        ) from None
    return PostgresBackend.from_url(url, default_stack=stack)


def open_backend(url: str, *, root: Path, stack: str | None = None) -> StateBackend:
    """The backend for a Stack's ``state:`` URL; ``root`` is the stack root for relative file paths;
    ``stack`` names the stack where the backend holds several (PostgreSQL: unless the URL sets ``stack=``)."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or not scheme:
        raise StateConfigurationError(f"state {redact_url(text)!r} is not a URL; expected {_SUPPORTED}")
    if scheme == "file":
        return LocalStateBackend(_local_path(text, rest, root))
    if scheme in ("postgresql", "postgres"):
        return _open_postgresql(text, root, stack)
    raise StateConfigurationError(
        f"unsupported state backend {scheme}:// ({redact_url(text)}); expected {_SUPPORTED}"
    )
