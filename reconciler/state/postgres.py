"""State in PostgreSQL: one row per stack, compare-and-swap writes, a lock row renewed by a heartbeat.

Selected by ``state: postgresql://USER@HOST:PORT/DB?schema=arkerctl[&stack=NAME&history=N&lease=30s]``
(see ``_pg_url`` for the URL, ``_pg_schema`` for the tables, created on first use).

Writes: one transaction reads the stack row ``FOR UPDATE``, checks lineage and serial (compare-and-swap),
copies the replaced version into ``history`` (keeping the last ``history`` versions), and stores the new
document with ``serial + 1``. While this backend holds the stack's lock, the same transaction also checks,
with the lock row share-locked, that the lock is still ours: a writer whose lock was taken over gets
``LockLostError`` and never overwrites the state of the run that took it over.

Locking: the lock row is inserted with ``ON CONFLICT DO NOTHING``; a background thread (its own connection)
renews ``heartbeat_at`` three times per lease. A lock whose heartbeat is older than its lease (on the
server's clock: client clocks may disagree) is stale; the next taker replaces it in one conditional
``UPDATE`` (so exactly one of several racing takers wins), logs a warning and reports it in
``Lock.taken_over`` / ``PostgresLock.takeover_message``.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, ValidationError

from . import _pg_schema
from ._pg_errors import StateConnectionError
from ._pg_url import DEFAULT_HISTORY, DEFAULT_LEASE, DEFAULT_SCHEMA, DEFAULT_STACK, PostgresURL, parse_url
from .backend import Lock
from .codec import StateEncoder, decode_state
from .errors import (
    LockCorruptError,
    LockHeldError,
    LockLostError,
    LockMismatchError,
    StateConflictError,
    StateError,
    StateLineageError,
    StateWriteError,
)
from .lockinfo import LockInfo, LockRequest
from .model import STATE_FORMAT_VERSION, StateDocument

__all__ = ["HistoryEntry", "PostgresBackend", "PostgresLock", "StateConnectionError"]

_log = logging.getLogger(__name__)

_POLL_FIRST = 0.05
_POLL_MAX = 0.5


class HistoryEntry(BaseModel):
    """One stored version of a stack's state (the current one or a kept previous one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: int
    lineage: str
    updated_at: str  # RFC 3339, UTC
    current: bool


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _stale_message(holder: LockInfo, age: float, lease: float) -> str:
    return (
        f"took over stale state lock {holder.id} of {holder.who} (pid {holder.pid} on {holder.host}, "
        f"{holder.operation} since {holder.created_at}): no heartbeat for {age:.1f}s, lease {lease:g}s"
    )


class _Heartbeat(threading.Thread):
    """Renews the lock row's ``heartbeat_at`` every ``interval`` seconds on its own connection."""

    def __init__(self, backend: PostgresBackend, lock_id: str, interval: float) -> None:
        super().__init__(name=f"arkerctl-state-heartbeat-{lock_id[:8]}", daemon=True)
        self._backend = backend
        self._lock_id = lock_id
        self._interval = interval
        self._stop_event = threading.Event()
        self.lost = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=max(5.0, self._interval * 2))

    def run(self) -> None:
        conn: psycopg.Connection | None = None
        query = sql.SQL("UPDATE {}.locks SET heartbeat_at = now() WHERE stack = %s AND id = %s").format(
            sql.Identifier(self._backend.schema_name)
        )
        try:
            while not self._stop_event.wait(self._interval):
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = self._backend._connect()
                    renewed = conn.execute(query, (self._backend.stack, self._lock_id)).rowcount
                except (psycopg.Error, StateError) as exc:
                    # Keep trying: the lease gives a few missed beats of slack before anyone may take over.
                    _log.warning("state lock %s: heartbeat failed: %s", self._lock_id, _reason(exc))
                    if conn is not None:
                        conn.close()
                    conn = None
                    continue
                if renewed == 0 and not self._stop_event.is_set():
                    self.lost.set()
                    _log.warning(
                        "state lock %s was taken over or force-unlocked while held; this run's writes "
                        "will be refused",
                        self._lock_id,
                    )
                    return
        finally:
            if conn is not None:
                conn.close()


class PostgresLock(Lock):
    """A held lock row, renewed by a heartbeat thread until released."""

    def __init__(
        self,
        backend: PostgresBackend,
        info: LockInfo,
        *,
        taken_over: LockInfo | None,
        takeover_message: str | None,
    ) -> None:
        super().__init__(info, taken_over=taken_over)
        self._backend = backend
        self._takeover_message = takeover_message
        self._heartbeat = _Heartbeat(backend, info.id, interval=max(0.05, backend.lease / 3))
        self._heartbeat.start()

    @property
    def takeover_message(self) -> str | None:
        """The warning about the stale lock this one replaced (also logged), for the caller to show."""
        return self._takeover_message

    @property
    def lost(self) -> bool:
        """True once the heartbeat found the row gone or replaced (``verify`` asks the database)."""
        return self._heartbeat.lost.is_set()

    def _release(self) -> bool:
        self._heartbeat.stop()
        self._backend._forget_lock(self)
        try:
            removed = self._backend._delete_lock(self.info.id)
        except (psycopg.Error, StateError) as exc:
            # Never raise from release: the row stays and goes stale after its lease.
            _log.warning(
                "could not release state lock %s (%s); it expires %gs after its last heartbeat",
                self.info.id,
                _reason(exc),
                self._backend.lease,
            )
            return False
        if not removed:
            _log.warning("state lock %s was no longer ours when released (taken over?)", self.info.id)
        return removed

    def verify(self) -> None:
        current = self._backend.current_lock()
        if current is None or current.id != self.info.id:
            raise LockLostError(self.info, current)


class PostgresBackend:
    """``StateBackend`` over a PostgreSQL table (see module doc). Thread-safe; ``close()`` when done."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema_name: str = DEFAULT_SCHEMA,
        stack: str = DEFAULT_STACK,
        history: int = DEFAULT_HISTORY,
        lease: float = DEFAULT_LEASE,
        location: str | None = None,
    ) -> None:
        if history < 0:
            raise ValueError("history must not be negative")
        if lease <= 0:
            raise ValueError("lease must be positive")
        self._conninfo = conninfo
        self.schema_name = schema_name
        self.stack = stack
        self.history_limit = history
        self.lease = lease
        self._location = location or f"postgresql://?schema={schema_name}&stack={stack}"
        self._mutex = threading.RLock()  # one transaction at a time on the shared connection
        self._conn: psycopg.Connection | None = None
        self._ready = False
        self._held: PostgresLock | None = None
        self._encoder = StateEncoder()
        s = sql.Identifier(schema_name)
        self._q = {name: sql.SQL(text).format(s=s) for name, text in _QUERIES.items()}

    @classmethod
    def from_url(cls, url: str, *, default_stack: str | None = None) -> PostgresBackend:
        """``default_stack`` keys the row when the URL has no ``stack=`` (the CLI passes the Stack's name)."""
        parsed: PostgresURL = parse_url(url, default_stack=default_stack)
        return cls(
            parsed.conninfo,
            schema_name=parsed.schema_name,
            stack=parsed.stack,
            history=parsed.history,
            lease=parsed.lease,
            location=parsed.location,
        )

    def describe(self) -> str:
        return self._location

    def __repr__(self) -> str:
        return f"PostgresBackend({self._location!r})"

    # ------------------------------------------------------------------ connection

    def _connect(self) -> psycopg.Connection:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StateConnectionError(self._location, _reason(exc)) from None
        # A large document is stored compressed; lz4 makes a 10,000-resource write about a third faster
        # than the default pglz. Servers before 14 or built without lz4 refuse it: keep their default.
        try:
            conn.execute("SET default_toast_compression = 'lz4'")
        except psycopg.OperationalError as exc:
            conn.close()
            raise StateConnectionError(self._location, _reason(exc)) from None
        except psycopg.Error:
            pass
        return conn

    def _connection(self) -> psycopg.Connection:
        """The shared connection (call with ``_mutex`` held), reconnected if broken, schema ensured."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            self._conn = None
            conn = self._connect()
            self._conn = conn
        if not self._ready:
            try:
                _pg_schema.ensure_schema(conn, self.schema_name, location=self._location)
            except psycopg.OperationalError as exc:
                raise StateConnectionError(self._location, _reason(exc)) from None
            self._ready = True
        return conn

    def ensure_schema(self) -> None:
        """Create or upgrade the tables now (otherwise done by the first operation)."""
        with self._mutex:
            self._connection()

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PostgresBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def read(self) -> StateDocument | None:
        return self.read_serial(None)

    def read_serial(self, serial: int | None) -> StateDocument | None:
        """The document at ``serial`` (None: the current one), if it is current or still kept in history."""
        with self._mutex:
            try:
                conn = self._connection()
                if serial is None:
                    row = conn.execute(self._q["read"], (self.stack,)).fetchone()
                else:
                    row = conn.execute(
                        self._q["read_serial"], (self.stack, serial, self.stack, serial)
                    ).fetchone()
            except psycopg.OperationalError as exc:
                raise StateConnectionError(self._location, _reason(exc)) from None
        if row is None:
            return None
        where = self._location if serial is None else f"{self._location} (serial {serial})"
        return decode_state(row[0].encode(), where)

    def history(self) -> tuple[HistoryEntry, ...]:
        """Every stored version of this stack (kept previous ones and the current one), oldest first."""
        with self._mutex:
            try:
                rows = self._connection().execute(self._q["history"], (self.stack, self.stack)).fetchall()
            except psycopg.OperationalError as exc:
                raise StateConnectionError(self._location, _reason(exc)) from None
        return tuple(
            HistoryEntry(serial=serial, lineage=lineage, updated_at=updated, current=current)
            for serial, lineage, updated, current in rows
        )

    # ------------------------------------------------------------------ writing

    def write(self, doc: StateDocument, *, expected_serial: int | None) -> StateDocument:
        if doc.version != STATE_FORMAT_VERSION:
            raise ValueError(f"cannot write state format version {doc.version}; only {STATE_FORMAT_VERSION}")
        with self._mutex:
            try:
                conn = self._connection()
                with conn.transaction():
                    self._check_held_lock(conn)
                    row = conn.execute(self._q["header_for_update"], (self.stack,)).fetchone()
                    stored = None if row is None else (str(row[0]), int(row[1]))
                    actual = None if stored is None else stored[1]
                    if actual != expected_serial:
                        raise StateConflictError(
                            self._location, expected_serial=expected_serial, actual_serial=actual
                        )
                    if stored is not None and stored[0] != doc.lineage:
                        raise StateLineageError(
                            self._location,
                            stored_lineage=stored[0],
                            written_lineage=doc.lineage,
                            serial=stored[1],
                        )
                    base = doc.serial if stored is None else stored[1]
                    new = doc.model_copy(update={"serial": base + 1})
                    text = self._encoder.encode(new).decode()
                    if stored is None:
                        params = {
                            "stack": self.stack,
                            "lineage": new.lineage,
                            "serial": new.serial,
                            "text": text,
                        }
                        inserted = conn.execute(self._q["insert"], params).fetchone()
                        if inserted is None:  # a concurrent first write won the race
                            raise StateConflictError(
                                self._location, expected_serial=None, actual_serial=self._serial_now(conn)
                            )
                    else:
                        if self.history_limit > 0:
                            conn.execute(self._q["keep_history"], (self.stack,))
                        conn.execute(
                            self._q["update"], {"serial": new.serial, "text": text, "stack": self.stack}
                        )
                        conn.execute(
                            self._q["trim_history"], (self.stack, new.serial - 1 - self.history_limit)
                        )
            except psycopg.OperationalError as exc:
                raise StateConnectionError(self._location, _reason(exc)) from None
            except psycopg.Error as exc:
                raise StateWriteError(self._location, _reason(exc)) from None
            return new

    def _serial_now(self, conn: psycopg.Connection) -> int | None:
        row = conn.execute(self._q["header"], (self.stack,)).fetchone()
        return None if row is None else int(row[1])

    def _check_held_lock(self, conn: psycopg.Connection) -> None:
        """Inside a write: refuse unless the lock this backend holds (if any) is still the stored one."""
        held = self._held
        if held is None:
            return
        row = conn.execute(self._q["lock_for_share"], (self.stack,)).fetchone()
        if row is not None and row[0] == held.id:
            return
        current = None if row is None else self._parse_lock(row[1])
        raise LockLostError(held.info, current)

    # ------------------------------------------------------------------ locking

    def _parse_lock(self, text: str) -> LockInfo:
        try:
            return LockInfo.model_validate_json(text)
        except ValidationError:
            raise LockCorruptError(
                f"{self._location} (table {self.schema_name}.locks)", "it is not a valid lock record"
            ) from None

    def _forget_lock(self, lock: PostgresLock) -> None:
        with self._mutex:
            if self._held is lock:
                self._held = None

    def _delete_lock(self, lock_id: str) -> bool:
        with self._mutex:
            conn = self._connection()
            return conn.execute(self._q["delete_lock"], (self.stack, lock_id)).fetchone() is not None

    def lock(self, info: LockRequest, *, timeout: float) -> PostgresLock:
        if timeout < 0:
            raise ValueError("lock timeout must not be negative")
        mine = LockInfo.for_this_process(info, path=self._location)
        record = mine.model_dump_json()
        values = (self.stack, mine.id, mine.who, mine.host, mine.pid, mine.operation, self.lease, record)
        started = time.monotonic()
        deadline = started + timeout
        delay = _POLL_FIRST
        while True:
            with self._mutex:
                try:
                    conn = self._connection()
                    if conn.execute(self._q["insert_lock"], values).fetchone() is not None:
                        return self._hold(mine, None, None)
                    row = conn.execute(self._q["lock_state"], (self.stack,)).fetchone()
                    if row is None:
                        continue  # released between our attempt and the read: try again at once
                    holder = self._parse_lock(row[0])
                    stale, age, lease = bool(row[1]), float(row[2]), float(row[3])
                    if stale:
                        took = conn.execute(self._q["take_over_lock"], (*values[1:], self.stack, holder.id))
                        if took.fetchone() is not None:
                            message = _stale_message(holder, age, lease)
                            _log.warning("%s", message)
                            return self._hold(mine, holder, message)
                        continue  # another taker won or the holder beat in time: look again
                except psycopg.OperationalError as exc:
                    raise StateConnectionError(self._location, _reason(exc)) from None
            now = time.monotonic()
            if now >= deadline:
                raise LockHeldError(holder, waited=now - started if timeout > 0 else 0.0)
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, _POLL_MAX)

    def _hold(self, info: LockInfo, taken_over: LockInfo | None, message: str | None) -> PostgresLock:
        lock = PostgresLock(self, info, taken_over=taken_over, takeover_message=message)
        self._held = lock
        return lock

    def current_lock(self) -> LockInfo | None:
        with self._mutex:
            try:
                row = self._connection().execute(self._q["lock_state"], (self.stack,)).fetchone()
            except psycopg.OperationalError as exc:
                raise StateConnectionError(self._location, _reason(exc)) from None
        return None if row is None else self._parse_lock(row[0])

    def force_unlock(self, lock_id: str) -> None:
        with self._mutex:
            try:
                row = self._connection().execute(self._q["delete_lock"], (self.stack, lock_id)).fetchone()
            except psycopg.OperationalError as exc:
                raise StateConnectionError(self._location, _reason(exc)) from None
        if row is None:
            raise LockMismatchError(self._location, lock_id, self.current_lock())
        removed = self._parse_lock(row[0])
        _log.warning("force-unlocked state lock %s of %s (%s)", removed.id, removed.who, removed.operation)


# ``{s}`` is the quoted schema. Documents travel as JSON text (parsed by pydantic, not by psycopg's json
# module, which is several times slower for a large state), and are read back from ``document_text``: JSONB
# is not lossless (-0.0 becomes 0, 1e16 comes back as an integer), and a state read back must be the state
# written, byte for byte once encoded.
_QUERIES: dict[str, str] = {
    "read": "SELECT document_text FROM {s}.stacks WHERE stack = %s",
    "read_serial": (
        "SELECT document_text FROM {s}.stacks WHERE stack = %s AND serial = %s "
        "UNION ALL SELECT document_text FROM {s}.history WHERE stack = %s AND serial = %s LIMIT 1"
    ),
    "history": (
        "SELECT serial, lineage, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "current FROM (SELECT serial, lineage, updated_at, false AS current FROM {s}.history "
        "WHERE stack = %s UNION ALL SELECT serial, lineage, updated_at, true FROM {s}.stacks "
        "WHERE stack = %s) AS versions ORDER BY serial"
    ),
    "header": "SELECT lineage, serial FROM {s}.stacks WHERE stack = %s",
    "header_for_update": "SELECT lineage, serial FROM {s}.stacks WHERE stack = %s FOR UPDATE",
    # The text is sent once and stored twice: exact (what arkerctl reads back) and as JSONB (for SQL).
    "insert": (
        "INSERT INTO {s}.stacks (stack, lineage, serial, document, document_text) "
        "VALUES (%(stack)s, %(lineage)s, %(serial)s, %(text)s::text::jsonb, %(text)s::text) "
        "ON CONFLICT (stack) DO NOTHING RETURNING serial"
    ),
    "keep_history": (
        "INSERT INTO {s}.history (stack, serial, lineage, document, document_text, updated_at) "
        "SELECT stack, serial, lineage, document, document_text, updated_at FROM {s}.stacks WHERE stack = %s "
        "ON CONFLICT (stack, serial) DO UPDATE SET lineage = excluded.lineage, document = excluded.document, "
        "document_text = excluded.document_text, updated_at = excluded.updated_at"
    ),
    "update": (
        "UPDATE {s}.stacks SET serial = %(serial)s, document = %(text)s::text::jsonb, "
        "document_text = %(text)s::text, updated_at = now() WHERE stack = %(stack)s"
    ),
    "trim_history": "DELETE FROM {s}.history WHERE stack = %s AND serial <= %s",
    "lock_for_share": "SELECT id, info::text FROM {s}.locks WHERE stack = %s FOR SHARE",
    "insert_lock": (
        "INSERT INTO {s}.locks (stack, id, who, host, pid, operation, lease_seconds, info) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (stack) DO NOTHING RETURNING id"
    ),
    "lock_state": (
        "SELECT info::text, now() - heartbeat_at > lease_seconds * interval '1 second', "
        "extract(epoch FROM now() - heartbeat_at)::float8, lease_seconds FROM {s}.locks WHERE stack = %s"
    ),
    # The staleness test is repeated here so that of several racing takers exactly one replaces the row,
    # and a holder whose heartbeat landed in between keeps it.
    "take_over_lock": (
        "UPDATE {s}.locks SET id = %s, who = %s, host = %s, pid = %s, operation = %s, created_at = now(), "
        "heartbeat_at = now(), lease_seconds = %s, info = %s::jsonb "
        "WHERE stack = %s AND id = %s AND now() - heartbeat_at > lease_seconds * interval '1 second' "
        "RETURNING id"
    ),
    "delete_lock": "DELETE FROM {s}.locks WHERE stack = %s AND id = %s RETURNING info::text",
}
