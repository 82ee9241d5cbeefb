"""The tables of the PostgreSQL state backend, created on first use and versioned by migrations.

::

    <schema>.schema_migrations  version, description, applied_at: one row per applied migration
    <schema>.stacks             one row per stack: lineage, serial, document (JSONB, for SQL queries),
                                document_text (the exact text arkerctl wrote and reads), updated_at
    <schema>.history            previous versions of each stack's document (the last N are kept)
    <schema>.locks              one row per locked stack: the holder, its heartbeat and lease

Migrations run in one transaction under a transaction-level advisory lock keyed on the schema name, so
two processes starting at once on an empty database neither race on ``CREATE`` nor apply a step twice;
``CREATE ... IF NOT EXISTS`` is not enough for that on its own (it can still fail under concurrency).
A database already at our version is recognised with two cheap reads and no lock.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql

from .errors import StateConfigurationError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "advisory_key", "ensure_schema", "schema_version"]

# (version, description, statements); ``{s}`` is the quoted schema name. Append only: never edit a step
# that has shipped, add the next one.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "stacks, history and locks",
        (
            """CREATE TABLE {s}.stacks (
                stack       text PRIMARY KEY,
                lineage     text NOT NULL,
                serial      bigint NOT NULL,
                document    jsonb NOT NULL,
                document_text text NOT NULL,
                updated_at  timestamptz NOT NULL DEFAULT now()
            )""",
            """CREATE TABLE {s}.history (
                stack       text NOT NULL,
                serial      bigint NOT NULL,
                lineage     text NOT NULL,
                document    jsonb NOT NULL,
                document_text text NOT NULL,
                updated_at  timestamptz NOT NULL,
                PRIMARY KEY (stack, serial)
            )""",
            """CREATE TABLE {s}.locks (
                stack         text PRIMARY KEY,
                id            text NOT NULL,
                who           text NOT NULL,
                host          text NOT NULL,
                pid           integer NOT NULL,
                operation     text NOT NULL,
                created_at    timestamptz NOT NULL DEFAULT now(),
                heartbeat_at  timestamptz NOT NULL DEFAULT now(),
                lease_seconds double precision NOT NULL,
                info          jsonb NOT NULL
            )""",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def advisory_key(schema_name: str) -> int:
    """A stable signed 64-bit advisory lock key for migrating ``schema_name``."""
    digest = hashlib.sha256(f"arkerctl-state-schema:{schema_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def schema_version(conn: psycopg.Connection, schema_name: str) -> int:
    """The applied version (0: no migrations table yet)."""
    found = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, 'schema_migrations')) IS NOT NULL", (schema_name,)
    ).fetchone()
    if not found or not found[0]:
        return 0
    query = sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_migrations").format(
        sql.Identifier(schema_name)
    )
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def _newer(location: str, version: int) -> StateConfigurationError:
    return StateConfigurationError(
        f"state {location} uses database schema version {version}, newer than this arkerctl supports "
        f"(version {SCHEMA_VERSION}). Upgrade arkerctl."
    )


def ensure_schema(conn: psycopg.Connection, schema_name: str, *, location: str) -> int:
    """Create or upgrade the tables in ``schema_name``; returns the number of migrations applied.

    ``conn`` must be in autocommit mode (each call is its own transaction).
    """
    current = schema_version(conn, schema_name)
    if current == SCHEMA_VERSION:
        return 0
    if current > SCHEMA_VERSION:
        raise _newer(location, current)
    s = sql.Identifier(schema_name)
    applied = 0
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(schema_name),))
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema_name,)).fetchone()
            if not exists:  # CREATE SCHEMA needs a privilege a user of an existing schema may lack
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                    "version integer PRIMARY KEY, description text NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(s)
            )
            # Read again under the lock: another process may have migrated while we waited for it.
            current = schema_version(conn, schema_name)
            if current > SCHEMA_VERSION:
                raise _newer(location, current)
            for version, description, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(sql.SQL(statement).format(s=s))
                conn.execute(
                    sql.SQL("INSERT INTO {}.schema_migrations (version, description) VALUES (%s, %s)").format(
                        s
                    ),
                    (version, description),
                )
                applied += 1
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StateConfigurationError(
            f"cannot create the state tables of {location} in schema {schema_name}: "
            f"{_first_line(exc)}. Grant the user CREATE on the database (or on that schema), or have "
            "them created once by a user who has it."
        ) from None
    return applied


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
