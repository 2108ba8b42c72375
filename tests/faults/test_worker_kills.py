"""kill -9 of workers, on both databases: a job survives ten kills in a row, and a job that
kills every worker that claims it fails as worker_lost while the pool serves the rest."""

import random
import time

import pytest

from tests.faults.conftest import (
    FAST_QUEUE,
    SMALL_JOB,
    assert_continuous,
    checkpoint_of,
    kill,
    long_job,
    models_of,
    report,
    seconds,
    wait_for,
    wait_for_terminal,
    worker_pid,
)
from tests.service.factories import add_dataset, add_job, get_job
from tests.service.live import service_env

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # timing-sensitive: run alone

LEASE = FAST_QUEUE["lease_seconds"]
SWEEP = FAST_QUEUE["sweep_seconds"]
# Beyond lease + sweep: the poll (0.1 s on SQLite), the new process's start (about 1 s, which
# overlaps the lease) and the test's own 20 ms polling.
RECOVERY_SLACK = 1.0

KILLS = 10
EPOCHS = 720  # 12 stretches of 60 epochs: attempt k is killed once it checkpointed stretch k


@pytest.mark.timeout(150)
def test_job_survives_ten_worker_kills_with_continuous_history(database, database_url, processes):
    dataset_id = add_dataset(database, rows=20_000, features=20)
    job_id = add_job(database, dataset_id, **long_job(EPOCHS), max_attempts=KILLS + 2)
    env = service_env(database_url, **FAST_QUEUE)
    chance = random.Random(5)
    worker = processes.worker(env)
    recoveries, after_expiry, killed_at_epoch = [], [], []

    for attempt in range(1, KILLS + 1):
        # Kill only once this attempt stored a checkpoint past its stretch: the job advances.
        target = attempt * EPOCHS // (KILLS + 2)
        wait_for(
            lambda at=(attempt, target): (checkpoint_of(database, job_id) or (0, 0)) >= at,
            timeout=30,
            what=f"attempt {attempt} to checkpoint epoch {target}",
        )
        time.sleep(chance.uniform(0.0, 0.15))  # anywhere in the flush / checkpoint cycle
        running = get_job(database, job_id)
        assert (running.status, running.attempt) == ("running", attempt)
        assert worker_pid(running) == worker.pid

        kill(worker)
        killed = time.monotonic()
        lease_end = get_job(database, job_id).lease_expires_at  # final: its worker is dead
        killed_at_epoch.append(get_job(database, job_id).epoch)
        worker = processes.worker(env)  # a fresh worker, started after the kill

        claimed = wait_for(
            lambda next_attempt=attempt + 1: (
                (job := get_job(database, job_id)).attempt == next_attempt and job
            ),
            timeout=LEASE + SWEEP + 10,
            what=f"claim {attempt + 1}",
        )
        recoveries.append(time.monotonic() - killed)
        after_expiry.append((claimed.heartbeat_at - lease_end).total_seconds())
        assert claimed.status == "running"
        assert worker_pid(claimed) == worker.pid

    job = wait_for_terminal(database, [job_id], timeout=60)[0]
    report(
        f"kill -9 x{KILLS} [{database.engine.dialect.name}]",
        lease_seconds=LEASE,
        sweep_seconds=SWEEP,
        kill_to_next_claim_seconds=seconds(recoveries),
        lease_expiry_to_claim_seconds=seconds(after_expiry),
        epoch_at_each_kill=killed_at_epoch,
    )
    assert (job.status, job.stop_reason, job.attempt, job.epoch) == (
        "succeeded",
        "max_epochs",
        KILLS + 1,
        EPOCHS,
    )
    by_attempt = assert_continuous(database, job_id, EPOCHS)
    assert sorted(by_attempt) == list(range(1, KILLS + 2))  # each attempt kept some epochs
    assert models_of(database, job_id) == 1
    assert max(recoveries) < LEASE + SWEEP + RECOVERY_SLACK


@pytest.mark.timeout(90)
def test_job_that_kills_its_worker_fails_worker_lost_and_the_pool_serves_other_jobs(
    database, database_url, processes
):
    # No hook in the product: the test plays the job's fatal bug. Whenever a worker claims
    # the deadly job (a new attempt shows in the database), the test kill -9s that worker;
    # like `backprop serve`, it starts a new worker in place of each one that died.
    max_attempts = 3
    dataset_id = add_dataset(database, rows=20_000, features=20)
    deadly = add_job(database, dataset_id, **long_job(2_000), max_attempts=max_attempts)
    small = add_dataset(database, rows=200, features=4, seed=1)
    others = [add_job(database, small, **SMALL_JOB) for _ in range(6)]
    env = service_env(database_url, **FAST_QUEUE)
    pool = [processes.worker(env), processes.worker(env)]
    kills: list[tuple[int, float]] = []  # (attempt, seconds since the test began)
    began = time.monotonic()
    deadline = began + 60

    while (job := get_job(database, deadly)).status not in {"failed", "succeeded"}:
        assert time.monotonic() < deadline, f"the deadly job is still {job.status}"
        if job.status == "running" and job.attempt > len(kills):
            victim = next(p for p in pool if p.pid == worker_pid(job))
            kill(victim)
            kills.append((job.attempt, round(time.monotonic() - began, 3)))
        for slot, process in enumerate(pool):
            if process.poll() is not None:
                pool[slot] = processes.worker(env)
        time.sleep(0.02)
    failed_after = time.monotonic() - began

    late = [add_job(database, small, **SMALL_JOB) for _ in range(2)]  # after the failure
    served = wait_for_terminal(database, others + late, timeout=30)
    job = get_job(database, deadly)
    report(
        f"always-crashing job [{database.engine.dialect.name}]",
        max_attempts=max_attempts,
        kills=kills,
        failed_after_seconds=round(failed_after, 3),
        other_jobs_succeeded=sum(j.status == "succeeded" for j in served),
    )
    assert (job.status, job.error_code, job.attempt) == ("failed", "worker_lost", max_attempts)
    assert job.error == (
        f"the job's worker stopped renewing its lease (lease_seconds={LEASE:g}) on its last "
        f"allowed attempt (attempt {max_attempts} of {max_attempts})"
    )
    assert [attempt for attempt, _ in kills] == list(range(1, max_attempts + 1))
    assert models_of(database, deadly) == 0
    assert {(j.status, j.attempt) for j in served} == {("succeeded", 1)}
    assert all(process.poll() is None for process in pool)
