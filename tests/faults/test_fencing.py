"""SIGSTOP past the lease, on both databases: the job is reclaimed and finished elsewhere, and
the paused worker, resumed with SIGCONT, has none of its late writes accepted."""

import random
import signal
import sqlite3
import subprocess
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from service.core.database import Database
from service.core.tables import Checkpoint, Model
from tests.faults.conftest import (
    FAST_QUEUE,
    SMALL_JOB,
    Processes,
    assert_continuous,
    checkpoint_of,
    history_rows,
    job_columns,
    long_job,
    report,
    wait_for,
    wait_for_terminal,
    worker_pid,
)
from tests.service.factories import add_dataset, add_job, get_job
from tests.service.live import service_env

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing-sensitive: run alone

EPOCHS = 400
LOST_LEASE = "lost the lease: another attempt owns the job; stopping"
MOVED_ON = "without writing more"  # "stopped after epoch N without writing more"


def holds_a_transaction(database: Database) -> bool:
    """Does another connection hold a transaction open (the paused worker, mid-write)?

    SQLite: the write lock is taken (BEGIN IMMEDIATE cannot start). PostgreSQL: a session
    of this database other than ours is running a statement or idle in a transaction.
    """
    if database.is_sqlite:
        connection = sqlite3.connect(make_url(database.url).database, timeout=0)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            connection.close()
    with database.engine.connect() as connection:
        busy = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
        )
    return busy > 0


def history_beyond_checkpoint(database: Database, job_id: str) -> bool:
    """Has the job's history gone past its checkpoint (rows the next claim must drop)?"""
    checkpoint = checkpoint_of(database, job_id)
    return checkpoint is not None and get_job(database, job_id).epoch > checkpoint[1]


def pause_between_checkpoints(database: Database, job_id: str, process: subprocess.Popen) -> int:
    """SIGSTOP ``process`` outside any transaction, with history written past the checkpoint;
    returns the tries it took.

    Paused inside a transaction, a worker would hold its locks (SQLite: the whole file) as
    long as it is paused, and every other writer would wait for it whatever the lease says.
    """
    chance = random.Random(7)
    for tries in range(1, 101):
        wait_for(lambda: history_beyond_checkpoint(database, job_id), 10, "history past it")
        process.send_signal(signal.SIGSTOP)
        time.sleep(0.05)  # a statement sent just before the signal settles
        if not holds_a_transaction(database) and history_beyond_checkpoint(database, job_id):
            return tries
        process.send_signal(signal.SIGCONT)
        time.sleep(chance.uniform(0.01, 0.05))
    raise AssertionError("no moment to pause the worker at in 100 tries")


def snapshot(database: Database, job_id: str) -> dict[str, object]:
    with database.reads() as session:
        models = session.execute(select(Model.__table__).where(Model.job_id == job_id)).all()
        checkpoint = session.execute(
            select(Checkpoint.__table__).where(Checkpoint.job_id == job_id)
        ).all()
    return {
        "job": job_columns(database, job_id),
        "history": history_rows(database, job_id),
        "models": [tuple(row) for row in models],
        "checkpoint": [tuple(row) for row in checkpoint],
    }


@pytest.mark.timeout(90)
def test_paused_worker_resumed_after_its_job_was_finished_elsewhere_writes_nothing(
    database, database_url, processes: Processes
):
    dataset_id = add_dataset(database, rows=20_000, features=20)
    job_id = add_job(database, dataset_id, **long_job(EPOCHS))
    env = service_env(database_url, **FAST_QUEUE)
    first = processes.worker(env)
    wait_for(
        lambda: (checkpoint_of(database, job_id) or (0, 0)) >= (1, 10),
        timeout=30,
        what="a checkpoint of the first attempt",
    )

    tries = pause_between_checkpoints(database, job_id, first)
    paused = time.monotonic()
    try:
        at_pause = get_job(database, job_id)
        assert (at_pause.attempt, worker_pid(at_pause)) == (1, first.pid)
        second = processes.worker(env)
        reclaimed = wait_for(
            lambda: (job := get_job(database, job_id)).attempt == 2 and job,
            timeout=FAST_QUEUE["lease_seconds"] + 10,
            what="the second claim",
        )
        reclaimed_after = time.monotonic() - paused
        assert worker_pid(reclaimed) == second.pid
        finished = wait_for_terminal(database, [job_id], timeout=60)[0]
        assert finished.status == "succeeded"
        before = snapshot(database, job_id)
    finally:
        first.send_signal(signal.SIGCONT)
    resumed = time.monotonic()

    wait_for(lambda: MOVED_ON in processes.log_of(first), 10, "the first worker to give up")
    gave_up_after = time.monotonic() - resumed
    time.sleep(0.5)  # room for any late write to land, were one accepted
    assert snapshot(database, job_id) == before
    log = processes.log_of(first)
    assert f"job {job_id} attempt 1: {LOST_LEASE}" in log
    assert f"job {job_id} attempt 1: stopped after epoch" in log

    # Epochs up to the checkpoint the second attempt resumed from are the first attempt's;
    # every later one is the second's.
    by_attempt = assert_continuous(database, job_id, EPOCHS)
    assert sorted(by_attempt) == [1, 2]
    resumed_from = by_attempt[1][-1]
    assert 10 <= resumed_from < at_pause.epoch  # rows past the checkpoint were run again
    assert f"claimed by {reclaimed.worker} from the checkpoint of epoch {resumed_from}" in (
        processes.log_of(second)
    )
    assert by_attempt[2] == list(range(resumed_from + 1, EPOCHS + 1))
    assert (before["job"]["attempt"], before["job"]["epoch"]) == (2, EPOCHS)
    assert len(before["models"]) == 1

    # The first worker moved on: with the second one gone, it trains the next job.
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=10) == 0
    small = add_dataset(database, rows=200, features=4, seed=1)
    next_job = wait_for_terminal(database, [add_job(database, small, **SMALL_JOB)], timeout=20)[0]
    assert (next_job.status, worker_pid(next_job)) == ("succeeded", first.pid)
    report(
        f"SIGSTOP fencing [{database.engine.dialect.name}]",
        pause_tries=tries,
        pause_to_reclaim_seconds=round(reclaimed_after, 3),
        sigcont_to_gave_up_seconds=round(gave_up_after, 3),
        first_attempt_epochs=len(by_attempt[1]),
        epoch_at_pause=at_pause.epoch,
    )
