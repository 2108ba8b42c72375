"""A database outage seen by a worker: retried with backoff, logged once, never the job's fault.

The database going away (a restart, a network cut) is not the job's failure. Every
part of the worker retries with backoff (RETRY_FIRST_SECONDS doubling up to
RETRY_MAX_SECONDS) and logs one warning when an outage starts and one line when it
ends (``Outage``), not a traceback per try. Training goes on meanwhile, its epochs
kept in memory until a flush gets through; the writes that end an attempt (and the
dataset's load) are retried for up to ``lease_seconds``, after which the job is left
to its lease: the sweeper re-queues it once the database is back, and fencing
refuses whatever this attempt still sends.
"""

import logging
import time
from typing import TypeVar

import psycopg
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

RETRY_FIRST_SECONDS = 0.1  # after a failed database call, the first retry waits this long,


RETRY_MAX_SECONDS = 2.0  # then twice as long each time, up to this


T = TypeVar("T")


class DatabaseAway(Exception):
    """The database stayed unreachable for as long as an attempt waits for it (lease_seconds)."""


def is_outage(error: Exception) -> bool:
    """Is this the database being away (refused, cut, shutting down, locked), rather than
    something wrong with the statement?"""
    away = (OperationalError, InterfaceError, DisconnectionError, psycopg.OperationalError)
    return isinstance(error, away) or getattr(error, "connection_invalidated", False)


def database_reason(error: Exception) -> str:
    """The first line of what the driver said: no SQL, no traceback."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0][:300] if lines else type(cause).__name__


class Outage:
    """One part of the worker losing the database: a warning when that starts, the delay
    before the next try while it lasts (doubling, capped), an info line when it ends."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter, what: str):
        self.log, self.what = logger, what
        self.began: float | None = None
        self.failures = 0

    def failed(self, error: Exception) -> float:
        """Note a failed try; returns the seconds to wait before the next one."""
        self.failures += 1
        if self.began is None:
            self.began = time.monotonic()
            # A lost connection needs no traceback; anything else may be a bug: show it.
            self.log.warning(
                "%s failed: %s; retrying until the database answers",
                self.what,
                database_reason(error),
                exc_info=None if is_outage(error) else error,
            )
        return min(RETRY_FIRST_SECONDS * 2 ** min(self.failures - 1, 10), RETRY_MAX_SECONDS)

    def succeeded(self) -> None:
        if self.began is not None:
            self.log.info(
                "%s works again after %.1f s (%d failed tries)",
                self.what,
                time.monotonic() - self.began,
                self.failures,
            )
        self.began, self.failures = None, 0
