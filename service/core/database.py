"""Database engines and sessions; SQLite is tuned for many processes sharing one file."""

import fcntl
import os
import time
from contextlib import suppress
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from service.core.point_reads import PointReads

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default: a commit past it checkpoints the WAL
# How often a writer waiting for another looks again: first after this, then twice as long
# each time, up to the cap (SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms...).
WRITER_WAIT_FIRST_SECONDS = 0.0001
WRITER_WAIT_MAX_SECONDS = 0.001
# A connection attempt to a PostgreSQL server that does not answer fails after this, rather
# than after the operating system's minutes: requests get their 503 while it is away.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 3


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_db_engine(url: str, pooled: bool = True, foreign_keys: bool = True) -> Engine:
    """An Engine for ``url``: SQLite in WAL mode with a busy timeout and foreign keys on.

    ``pooled=False`` opens a connection per use (migrations, short-lived tools).
    ``foreign_keys=False`` is for SQLite migrations only (see migrations/env.py).
    """
    pooling = {} if pooled else {"poolclass": NullPool}
    if is_sqlite(url):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **pooling
        )
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "checkin", _restore_autocheckpoint)
        if not foreign_keys:
            event.listen(engine, "connect", _foreign_keys_off)
        event.listen(engine, "begin", _begin_immediate)
        if (database := make_url(url).database) not in (None, "", ":memory:"):
            WriterTurns(f"{database}.writers").listen(engine)
        return engine
    if pooled:
        pooling = {"pool_size": 10, "max_overflow": 20}
    return create_engine(
        url, pool_pre_ping=True, connect_args=postgres_connect_args(url), **pooling
    )


def postgres_connect_args(url: str) -> dict[str, Any]:
    """libpq's connect_timeout, unless the URL sets one (``?connect_timeout=``)."""
    if "connect_timeout" in make_url(url).query:
        return {}
    return {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}


def _configure_sqlite(connection, _record) -> None:
    # pysqlite's own transaction handling is switched off so that BEGIN is ours (see below).
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable with WAL; fsync at checkpoints
    cursor.close()


def defer_checkpoint(session: Session) -> None:
    """SQLite: this session's COMMIT leaves its pages in the WAL, for ``Database.checkpoint``.

    A commit that leaves more than SQLITE_AUTOCHECKPOINT_PAGES pages in the WAL copies
    them all into the database file (and syncs it) before it returns: 0.4 s of a 200 MB
    upload's answer. Deferred, the request answers first and the copy follows it. The
    setting is the connection's; it is put back when the connection returns to the pool.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
    connection.connection.info["autocheckpoint_deferred"] = True


def _restore_autocheckpoint(dbapi_connection, record) -> None:
    if record is not None and record.info.pop("autocheckpoint_deferred", False):
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")


def _foreign_keys_off(connection, _record) -> None:
    # Must happen outside any transaction: inside one SQLite ignores the PRAGMA.
    connection.execute("PRAGMA foreign_keys=OFF")


def _begin_immediate(connection) -> None:
    # A write transaction takes the write lock when it starts: a deferred transaction that
    # reads and then writes can fail with "database is locked" at once, without waiting on
    # busy_timeout, if another writer committed in between. Reads stay deferred so they
    # never queue behind writers (WAL lets them run alongside).
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class WriterTurns:
    """Takes SQLite's writers in turn across processes, with a lock file beside the database.

    SQLite lets one writer in at a time and makes the others sleep and retry on a
    fixed schedule (1, 2, 5, 10 ms...): with a few workers and the API writing small
    transactions, most of a contended writer's wait was that sleep, not the other's
    work. Here a writer first takes an exclusive flock on ``path`` (one open file per
    connection, so threads of one process take turns too), looking again every
    0.1-1 ms, and gives it back when its connection returns to the pool, after the
    COMMIT. SQLite's own locking is untouched: after ``SQLITE_BUSY_TIMEOUT_MS`` the
    writer goes on without its turn, to SQLite's busy handler as before.
    """

    def __init__(self, path: str):
        self.path = os.path.abspath(path)

    def listen(self, engine: Engine) -> None:
        event.listen(engine, "connect", self._open)
        event.listen(engine, "close", self._close)
        event.listen(engine, "checkin", self._release)
        event.listen(engine, "begin", self._take_turn, insert=True)  # before BEGIN IMMEDIATE

    def _open(self, _dbapi_connection: Any, record: Any) -> None:
        with suppress(OSError):  # a read-only directory: SQLite's locking alone
            record.info["writer_turns"] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def _close(self, _dbapi_connection: Any, record: Any) -> None:
        fd = record.info.pop("writer_turns", None)
        if fd is not None:
            os.close(fd)  # gives back the turn too, should the connection hold it

    def _release(self, _dbapi_connection: Any, record: Any) -> None:
        fd = record.info.get("writer_turns") if record is not None else None
        if fd is not None and record.info.pop("writer_turn_held", False):
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _take_turn(self, connection: Any) -> None:
        if not connection.get_execution_options().get("sqlite_immediate", False):
            return  # reads never wait for a turn
        info = connection.connection.info  # the pool record's info, as in _open and _release
        fd = info.get("writer_turns")
        if fd is None or info.get("writer_turn_held"):
            return
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        delay = WRITER_WAIT_FIRST_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # a writer stuck with its turn: SQLite's busy timeout decides
                time.sleep(delay)
                delay = min(delay * 2, WRITER_WAIT_MAX_SECONDS)
                continue
            info["writer_turn_held"] = True
            return


class Database:
    """An engine and its two session factories: ``reads`` and ``writes``.

    On PostgreSQL both are the same; on SQLite a ``writes`` session begins with
    BEGIN IMMEDIATE.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = create_db_engine(url)
        writer = (
            self.engine.execution_options(sqlite_immediate=True) if self.is_sqlite else self.engine
        )
        self.reads = sessionmaker(self.engine, expire_on_commit=False)
        self.writes = sessionmaker(writer, expire_on_commit=False)
        # The reads every prediction makes (is the model still stored? where does the alias
        # point?), as cheap as the database allows: service.core.point_reads.
        self.point_reads = PointReads(url, self.engine)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def checkpoint(self) -> None:
        """SQLite: copy the WAL's committed pages into the database file (after a commit
        that ``defer_checkpoint`` left them to). PASSIVE: it waits for no reader or writer,
        and copies what they leave it; a later checkpoint copies the rest."""
        if not self.is_sqlite:
            return
        connection = self.engine.raw_connection()  # no BEGIN: a checkpoint runs outside one
        try:
            connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        finally:
            connection.close()

    def dispose(self) -> None:
        self.point_reads.close()
        self.engine.dispose()


# Opening the database at a command's start.


class DatabaseUnavailable(Exception):
    """The database could not be opened; str() is one line naming it and the reason."""


def shown_url(url: str) -> str:
    """The database URL without its password, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def unavailable(url: str, error: OperationalError) -> DatabaseUnavailable:
    """One line for ``error``: the database (password hidden) and its server's reason.

    libpq's reason spans lines ("Connection refused\\n\\tIs the server running ...?") and
    opens with "connection failed: "; SQLite's says only "unable to open database file",
    so the folder that does not exist, if that is why, is named.
    """
    lines = (" ".join(line.split()) for line in str(error.orig).splitlines())
    reason = "; ".join(line for line in lines if line).removeprefix("connection failed: ")
    if is_sqlite(url) and (database := make_url(url).database):
        folder = os.path.dirname(os.path.abspath(database))
        if not os.path.isdir(folder):
            reason += f" (the folder {folder} does not exist)"
    return DatabaseUnavailable(f"cannot open the database {shown_url(url)}: {reason}")


def check_database(url: str) -> None:
    """Open the database once; DatabaseUnavailable (one line) if it cannot be opened."""
    engine = create_db_engine(url, pooled=False)
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        raise unavailable(url, error) from None
    finally:
        engine.dispose()
