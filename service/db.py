"""Database engines and sessions; SQLite is tuned for many processes sharing one file."""

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
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
        if not foreign_keys:
            event.listen(engine, "connect", _foreign_keys_off)
        event.listen(engine, "begin", _begin_immediate)
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

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def dispose(self) -> None:
        self.engine.dispose()


def get_session(request: Request) -> Iterator[Session]:
    """A read session per request (GET routes)."""
    with request.app.state.database.reads() as session:
        yield session


def get_write_session(request: Request) -> Iterator[Session]:
    """A write session per request (routes that change rows)."""
    with request.app.state.database.writes() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]
