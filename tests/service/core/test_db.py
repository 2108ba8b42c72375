"""SQLite writers take turns through a lock file, so a waiting writer is let in at once."""

import fcntl
import os
import threading
import time

import pytest
from sqlalchemy import text

from service.core.database import Database


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
