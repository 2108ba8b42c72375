"""The SQLite doorbell: rung after a commit that queues a job, never before, never on rollback."""

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from service.core.database import Database
from service.queue.notify import Doorbell, doorbell_path, notify_job_queued, ring


@pytest.fixture
def sqlite_database(tmp_path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/backprop.db")
    yield database
    database.dispose()


@pytest.fixture
def bell(sqlite_database):
    """A worker's doorbell on the database, with a poll long enough never to matter here."""
    doorbell = Doorbell(doorbell_path(sqlite_database.url), 60.0, threading.Event())
    yield doorbell
    doorbell.close()


def pending_rings(doorbell: Doorbell) -> bytes:
    try:
        return os.read(doorbell.fd, 1024)
    except BlockingIOError:
        return b""


def test_doorbell_lies_beside_the_database_file_and_only_for_files(tmp_path):
    assert doorbell_path(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db.doorbell"
    assert doorbell_path("sqlite://") is None
    assert doorbell_path("sqlite:///:memory:") is None
    assert doorbell_path("postgresql+psycopg://u@127.0.0.1/db") is None


def test_ring_without_a_listening_worker_is_a_quiet_no(tmp_path):
    path = tmp_path / "x.db.doorbell"
    assert ring(path) is False
    assert not path.exists()
    os.mkfifo(path)  # left by a worker that has gone: no reader now
    assert ring(path) is False


def test_commit_rings_once_after_the_transaction_and_not_before(sqlite_database, bell):
    with sqlite_database.writes() as session, session.begin():
        notify_job_queued(session)
        assert pending_rings(bell) == b""  # a worker woken now would find no job yet
    assert pending_rings(bell) == b"\n"
    assert pending_rings(bell) == b""


def test_rollback_does_not_ring_and_forgets_the_ring(sqlite_database, bell):
    with sqlite_database.writes() as session:
        session.begin()
        notify_job_queued(session)
        session.rollback()
        session.begin()
        session.commit()  # a later, empty transaction in the same session rings nothing
    assert pending_rings(bell) == b""


def test_wait_returns_on_a_ring_from_another_thread(sqlite_database, bell):
    returned = threading.Event()

    def wait() -> None:
        bell.wait()
        returned.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    with sqlite_database.writes() as session, session.begin():
        notify_job_queued(session)
    waiter.join(timeout=30)  # the bell's own poll is 60 s: only the ring ends the wait
    assert returned.is_set()
    assert pending_rings(bell) == b""  # the wait drained it


def test_a_file_already_at_the_doorbells_path_is_left_alone(tmp_path):
    path = Path(f"{tmp_path}/x.db.doorbell")
    path.write_text("not a pipe")
    stop = threading.Event()
    stop.set()
    doorbell = Doorbell(path, 0.01, stop)
    assert doorbell.fd is None
    doorbell.wait()  # sleeps its poll instead
    assert path.read_text() == "not a pipe"
    assert ring(path) is False
    assert path.read_text() == "not a pipe"


def _wait_then_claim(path: Path, index: int, woken: multiprocessing.Queue) -> None:
    bell = Doorbell(path, 60.0, threading.Event())
    woken.put(("waiting", index))
    bell.wait()
    bell.pass_on()  # claimed a job, as run_worker does
    woken.put(("woken", index))


def test_a_woken_worker_passes_the_ring_on_to_the_next(sqlite_database):
    # One ring wakes only one of several worker processes waiting in select: the first
    # empties the pipe before the others look again. Each passes it on as it claims.
    path = doorbell_path(sqlite_database.url)
    fork = multiprocessing.get_context("fork")
    woken = fork.Queue()
    workers = [fork.Process(target=_wait_then_claim, args=(path, i, woken)) for i in range(3)]
    for worker in workers:
        worker.start()
    try:
        assert sorted(woken.get(timeout=30) for _ in workers) == [("waiting", i) for i in range(3)]
        time.sleep(0.2)  # all three in select
        with sqlite_database.writes() as session, session.begin():
            notify_job_queued(session)
        # Their own poll is 60 s: only rings wake them in time.
        assert sorted(woken.get(timeout=30) for _ in workers) == [("woken", i) for i in range(3)]
    finally:
        for worker in workers:
            worker.kill()
            worker.join()


def test_the_stop_flag_ends_a_wait_without_a_ring(sqlite_database):
    stop = threading.Event()
    bell = Doorbell(doorbell_path(sqlite_database.url), 60.0, stop)
    waiter = threading.Thread(target=bell.wait)
    waiter.start()
    stop.set()  # as SIGTERM does
    waiter.join(timeout=30)  # the poll is 60 s: only the flag ends it in time
    assert not waiter.is_alive()
    bell.close()
