"""Waking idle workers when a job is queued, so none waits out a polling interval.

PostgreSQL: ``NOTIFY backprop_jobs`` inside the transaction that queues the job;
PostgreSQL delivers it when that transaction commits, to every worker that LISTENs.

SQLite has no notifications, but its workers share a machine (and a directory)
with the API. The doorbell is a named pipe (FIFO) beside the database file:
idle workers wait on it with ``select``; whoever queues a job writes one byte to
it once the transaction has committed (ringing before the commit would wake a
worker into an empty queue). The bell is only a hint: a worker that misses it
(none was listening, the pipe was full) still finds the job at its next poll
(``poll_seconds``), and a spurious ring costs one empty claim.
"""

import errno
import os
import select
import stat
import threading
import time
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

CHANNEL = "backprop_jobs"
STOP_CHECK_SECONDS = 0.1  # how often a waiting worker looks at its stop flag
RING_KEY = "backprop_doorbell"  # Session.info key: the doorbell to ring after commit


def notify_job_queued(session: Session) -> None:
    """Wake idle workers once the session's transaction commits."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
    elif (path := doorbell_path(bind.url.render_as_string(hide_password=False))) is not None:
        session.info[RING_KEY] = path


@event.listens_for(Session, "after_commit")
def _ring_after_commit(session: Session) -> None:
    path = session.info.pop(RING_KEY, None)
    if path is not None:
        ring(path)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(RING_KEY, None)  # nothing was queued


def doorbell_path(database_url: str) -> Path | None:
    """The doorbell of a SQLite database file (None for other databases and ``:memory:``)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):
        return None  # a URI filename: its path is not ours to guess
    return Path(os.path.abspath(url.database + ".doorbell"))


def ring(path: Path) -> bool:
    """Write one byte to the doorbell; False when no worker listens (or it is full)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False  # ENXIO: no reader; ENOENT: no worker ever made it; either way, no one waits
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False  # something else has the name: never write into it
        os.write(fd, b"\n")
        return True
    except BlockingIOError:
        return False  # full: the workers have a backlog of rings already
    finally:
        os.close(fd)


class Doorbell:
    """A worker's end of the SQLite doorbell: ``wait`` returns on a ring or after ``seconds``
    (with no doorbell, for ``:memory:`` or a read-only directory, it just sleeps).

    The pipe is opened read-write, so it always has a writer and never reports
    end-of-file to ``select`` (which would turn the wait into a busy loop).
    """

    def __init__(self, path: Path | None, seconds: float, stop: threading.Event):
        self.path, self.seconds, self.stop = path, seconds, stop
        self.fd: int | None = None if path is None else self._open(path)

    @staticmethod
    def _open(path: Path) -> int | None:
        try:
            os.mkfifo(path, 0o600)
        except FileExistsError:
            pass
        except OSError:
            return None  # a read-only directory: poll instead
        try:
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                return None  # something else has the name: leave it alone, poll instead
            return os.open(path, os.O_RDWR | os.O_NONBLOCK)
        except OSError:
            return None

    def wait(self) -> None:
        """Until a ring, ``seconds`` (the polling fallback) or the stop flag."""
        if self.fd is None or self.stop.is_set():
            self.stop.wait(self.seconds)
            return
        # In slices: a signal does not interrupt select (Python retries it), and SIGTERM
        # must stop an idle worker at once, not after its poll.
        deadline = time.monotonic() + self.seconds
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.fd], [], [], min(left, STOP_CHECK_SECONDS))
            if readable:
                self._drain()  # one claim serves every ring so far
                return

    def pass_on(self) -> None:
        """After a claim: ring again, for another idle worker. A ring wakes every worker
        waiting in select, but each looks at the pipe again before returning, and the
        first one has emptied it: the others sleep on. So each worker that finds a job
        wakes the next, for as long as there are jobs (a spare ring costs an empty claim)."""
        if self.fd is not None and self.path is not None:
            ring(self.path)

    def _drain(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        except OSError as error:
            if error.errno != errno.EAGAIN:
                raise

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
