"""Reads of a few columns by primary key, made on every prediction: as cheap as each database
allows, and on the event loop where that costs no thread hop.

A cached model is served only after its row is confirmed (another API process may have
deleted it), and an alias is resolved on every request: one read per prediction, so its
cost is the prediction's. Through a pooled SQLAlchemy connection that read was three
statements on SQLite (BEGIN, the SELECT, ROLLBACK) and a ping plus the SELECT on
PostgreSQL, in a worker thread: a 1-row prediction's throughput halved. Here:

- SQLite (a file): a raw sqlite3 connection per thread, read-only and in autocommit, so
  the SELECT is the whole transaction (a few microseconds). In WAL mode a reader never
  waits for a writer, so the event loop may run it; a short busy timeout bounds the rare
  wait (a WAL recovery) and answers 503 past it.
- PostgreSQL: ``one_async`` awaits a psycopg AsyncConnection (autocommit) on the event
  loop: one round trip, during which the loop serves other requests. The sync ``one`` (used
  from worker threads) borrows the engine's pool.

Either way a lost connection is dropped and the request answers 503; the next one reconnects.
"""

import asyncio
import sqlite3
import threading
from contextlib import suppress
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from service.core.errors import Unavailable

SQLITE_READ_TIMEOUT_SECONDS = 2.0  # a reader waits only during a WAL recovery
POSTGRES_CONNECT_TIMEOUT_SECONDS = 3
UNAVAILABLE = "the database is unavailable; retry shortly"


def _unavailable() -> Unavailable:
    return Unavailable(UNAVAILABLE)


class PointReads:
    """``one(sql, params)``: the first row of a small SELECT written with ``?`` placeholders."""

    def __init__(self, url: str, engine: Engine):
        parsed = make_url(url)
        self._engine = engine
        database = parsed.database if parsed.get_backend_name() == "sqlite" else None
        self._sqlite_path = database if database not in (None, "", ":memory:") else None
        self._postgres_url = (
            parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            if parsed.get_backend_name() == "postgresql"
            else None
        )
        self._local = threading.local()
        self._async: tuple[asyncio.AbstractEventLoop, Any] | None = None

    @property
    def inline(self) -> bool:
        """Whether the event loop may call ``one`` itself (a SQLite file)."""
        return self._sqlite_path is not None

    def one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The first row, from a worker thread (or the event loop when ``inline``)."""
        if self._sqlite_path is not None:
            try:
                return self._sqlite().execute(sql, params).fetchone()
            except sqlite3.OperationalError:
                self._local.__dict__.pop("connection", None)
                raise _unavailable() from None
        statement = sql.replace("?", "%s") if self._postgres_url else sql
        with self._engine.connect() as connection:
            row = connection.exec_driver_sql(statement, params).first()
            return tuple(row) if row is not None else None

    async def one_async(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The first row, awaited on the event loop (PostgreSQL), or read inline (SQLite)."""
        if self._postgres_url is None:
            return self.one(sql, params)  # a SQLite file: microseconds, no I/O wait
        import psycopg

        try:
            connection = await self._async_connection()
            cursor = await connection.execute(sql.replace("?", "%s"), params)
            return await cursor.fetchone()
        except (psycopg.OperationalError, psycopg.InterfaceError):  # lost, or closed under us
            await self._drop_async()
            raise _unavailable() from None

    def _sqlite(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            uri = f"file:{self._sqlite_path}?mode=ro"
            connection = sqlite3.connect(
                uri, uri=True, timeout=SQLITE_READ_TIMEOUT_SECONDS, isolation_level=None
            )
            self._local.connection = connection
        return connection

    async def _async_connection(self) -> Any:
        import psycopg

        loop = asyncio.get_running_loop()
        held = self._async
        if held is not None and held[0] is loop and not held[1].closed:
            return held[1]
        if held is not None and held[0] is not loop:
            # A connection of an event loop that is gone (an app run again, as tests do):
            # it cannot be awaited from this loop, so its socket is closed as libpq's.
            self._async = None
            with suppress(Exception):
                held[1].pgconn.finish()
        connection = await psycopg.AsyncConnection.connect(
            self._postgres_url, autocommit=True, connect_timeout=POSTGRES_CONNECT_TIMEOUT_SECONDS
        )
        # Another request of this loop may have connected meanwhile: keep one, close the other.
        if self._async is not None and self._async[0] is loop and not self._async[1].closed:
            await connection.close()
            return self._async[1]
        self._async = (loop, connection)
        return connection

    async def _drop_async(self) -> None:
        held, self._async = self._async, None
        if held is not None:
            with suppress(Exception):  # already broken: nothing more to release
                await held[1].close()

    async def close_async(self) -> None:
        """Close the event loop's PostgreSQL connection (at the app's shutdown)."""
        await self._drop_async()

    def close(self) -> None:
        """Close this thread's SQLite connection (others close with their threads)."""
        connection = self._local.__dict__.pop("connection", None)
        if connection is not None:
            connection.close()
