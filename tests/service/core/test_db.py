"""SQLite writers take turns through a lock file, so a waiting writer is let in at once."""

import fcntl
import os
import threading
import time

import pytest
from sqlalchemy import text

from service.core.database import Database, defer_checkpoint


@pytest.fixture
def sqlite_database(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/backprop.db")
    yield database
    database.dispose()


def turn_is_free(path: str) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing gives the lock back, if it was taken
    return True


def test_a_write_transaction_holds_the_turn_until_its_connection_returns(sqlite_database):
    turns = sqlite_database.url.removeprefix("sqlite:///") + ".writers"
    with sqlite_database.writes() as session, session.begin():
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        assert not turn_is_free(turns)
    assert turn_is_free(turns)
    with sqlite_database.reads() as session:
        session.execute(text("SELECT count(*) FROM t"))
        assert turn_is_free(turns)  # reads never wait for writers (WAL)


def test_writers_of_two_threads_take_turns_in_order(sqlite_database):
    with sqlite_database.writes() as session, session.begin():
        session.execute(text("CREATE TABLE t (who TEXT, at REAL)"))
    first_in = threading.Event()
    order: list[str] = []

    def first() -> None:
        with sqlite_database.writes() as session, session.begin():
            session.execute(text("INSERT INTO t VALUES ('first', 0)"))
            first_in.set()
            time.sleep(0.3)  # the second writer arrives meanwhile and must wait
            order.append("first commits")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with sqlite_database.writes() as session, session.begin():
        session.execute(text("INSERT INTO t VALUES ('second', 1)"))  # BEGIN waits here
        order.append("second in")
    thread.join(10)
    assert order == ["first commits", "second in"]
    with sqlite_database.reads() as session:
        assert session.execute(text("SELECT who FROM t ORDER BY at")).scalars().all() == [
            "first",
            "second",
        ]


def database_file_bytes(database: Database) -> int:
    return os.path.getsize(database.url.removeprefix("sqlite:///"))


def write_pages(database: Database, *, defer: bool) -> object:
    """One transaction that leaves ~8 MB (2,000 pages, past the automatic checkpoint's
    1,000) in the WAL; the sqlite3 connection it used."""
    with database.writes() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS blobs (data BLOB)"))
        for _ in range(8):
            session.execute(text("INSERT INTO blobs VALUES (:data)"), {"data": os.urandom(2**20)})
        if defer:
            defer_checkpoint(session)
        used = session.connection().connection.dbapi_connection
        session.commit()
    return used


def test_a_deferred_checkpoint_leaves_the_pages_in_the_wal_until_checkpoint(sqlite_database):
    write_pages(sqlite_database, defer=True)
    assert database_file_bytes(sqlite_database) < 2**20  # the commit copied nothing
    sqlite_database.checkpoint()
    assert database_file_bytes(sqlite_database) > 8 * 2**20


def test_without_deferring_the_commit_itself_copies_the_pages(sqlite_database):
    # What the test above is measured against: SQLite's automatic checkpoint at COMMIT.
    write_pages(sqlite_database, defer=False)
    assert database_file_bytes(sqlite_database) > 8 * 2**20


def test_the_connection_checkpoints_automatically_again_once_back_in_the_pool(sqlite_database):
    deferred_on = write_pages(sqlite_database, defer=True)
    with sqlite_database.writes() as session:
        assert session.connection().connection.dbapi_connection is deferred_on  # pooled
        assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000
    sqlite_database.checkpoint()
    before = database_file_bytes(sqlite_database)
    write_pages(sqlite_database, defer=False)
    assert database_file_bytes(sqlite_database) > before + 7 * 2**20
