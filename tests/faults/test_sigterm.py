"""SIGTERM, on both databases: a worker stops claiming at once, checkpoints and releases its
running job within the grace period, and exits 0.

tests/service/queue/test_worker.py shows that a released job resumes elsewhere with a continuous
history; this file measures the stop and shows that no claim follows the signal.
"""

import signal
import time

import pytest

from tests.faults.conftest import (
    FAST_QUEUE,
    SMALL_JOB,
    assert_continuous,
    checkpoint_of,
    long_job,
    report,
    wait_for,
)
from tests.service.factories import add_dataset, add_job, get_job
from tests.service.live import service_env

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing-sensitive: run alone

GRACE_SECONDS = 5.0  # what an orchestrator gives a stopping worker, at least (serve: 30 s)


@pytest.mark.timeout(60)
def test_sigterm_releases_running_job_within_grace_and_claims_nothing_more(
    database, database_url, processes
):
    dataset_id = add_dataset(database, rows=20_000, features=20)
    running_id = add_job(database, dataset_id, **long_job(2_000))
    small = add_dataset(database, rows=200, features=4, seed=1)
    waiting = [add_job(database, small, **SMALL_JOB) for _ in range(3)]
    worker = processes.worker(service_env(database_url, **FAST_QUEUE))
    wait_for(lambda: get_job(database, running_id).epoch >= 10, 30, "ten epochs")

    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    released = wait_for(
        lambda: (job := get_job(database, running_id)).status == "queued" and job,
        timeout=GRACE_SECONDS + 5,
        what="the job's release",
        interval=0.005,
    )
    released_after = time.monotonic() - signalled
    assert worker.wait(timeout=GRACE_SECONDS + 5) == 0
    exited_after = time.monotonic() - signalled

    report(
        f"SIGTERM with a running job [{database.engine.dialect.name}]",
        signal_to_release_seconds=round(released_after, 3),
        signal_to_exit_seconds=round(exited_after, 3),
        released_at_epoch=released.epoch,
    )
    assert released_after < GRACE_SECONDS
    assert exited_after < GRACE_SECONDS
    assert (released.attempt, released.worker, released.lease_expires_at) == (1, None, None)
    assert checkpoint_of(database, running_id) == (1, released.epoch)
    assert assert_continuous(database, running_id, released.epoch) == {
        1: list(range(1, released.epoch + 1))
    }
    for job_id in waiting:  # queued before the signal, and never claimed after it
        job = get_job(database, job_id)
        assert (job.status, job.attempt, job.worker) == ("queued", 0, None)
    assert processes.log_of(worker).count("claimed by") == 1


@pytest.mark.timeout(30)
def test_sigterm_stops_idle_worker_at_once_and_a_job_queued_after_stays_queued(
    database, database_url, processes
):
    # sweep_seconds is long: on PostgreSQL an idle worker waits on LISTEN, woken by NOTIFY.
    worker = processes.worker(service_env(database_url, **{**FAST_QUEUE, "sweep_seconds": 30}))
    wait_for(lambda: "serving" in processes.log_of(worker), 20, "the worker to start")
    time.sleep(0.5)  # idle in its wait

    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    # A claim already under way when the signal lands finishes (and would release what it
    # took); 50 ms later none is, and on PostgreSQL the worker still waits out its LISTEN
    # slice: the NOTIFY of this job reaches a stopping worker.
    time.sleep(0.05)
    job_id = add_job(database, add_dataset(database, rows=200, features=4), **SMALL_JOB)
    assert worker.wait(timeout=GRACE_SECONDS) == 0
    exited_after = time.monotonic() - signalled

    report(
        f"SIGTERM idle [{database.engine.dialect.name}]",
        signal_to_exit_seconds=round(exited_after, 3),
    )
    assert exited_after < 1.0  # one poll (0.1 s) or one LISTEN slice (0.5 s)
    job = get_job(database, job_id)
    assert (job.status, job.attempt, job.worker) == ("queued", 0, None)
