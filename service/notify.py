"""Waking idle workers: PostgreSQL NOTIFY on the channel workers LISTEN to.

On SQLite there is no such channel; workers poll every ``poll_seconds``.
"""

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "backprop_jobs"


def notify_job_queued(session: Session) -> None:
    """Queue a NOTIFY that PostgreSQL delivers when the session's transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
