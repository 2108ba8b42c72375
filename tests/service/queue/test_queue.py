"""The job queue on both databases: claim order, exclusive claims, fencing, sweeps, history."""

import threading
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from engine import EpochMetrics, FitResult, ModelSpec, TrainingSpec, fit
from service.core.database import Database
from service.core.tables import Checkpoint, Job, JobHistory, Model, utcnow
from service.queue.claims import claim_job, heartbeat, record_progress, store_checkpoint
from service.queue.outcomes import complete_job, fail_job, release_job, sweep_expired_leases
from tests.service.factories import add_dataset, add_job, get_job, history_epochs, set_job

# -- rows for the tests, written with the ORM (as the API would) ----------------------------


def expire_lease(database: Database, job_id: str) -> None:
    set_job(database, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))


def metrics(epochs: range, train_loss: float = 0.5) -> list[EpochMetrics]:
    return [EpochMetrics(e, train_loss, 0.6, 0.8, 0.7, 0.1, 0.01) for e in epochs]


def count(database: Database, table: type) -> int:
    with database.reads() as session:
        return session.scalar(select(func.count()).select_from(table))


@pytest.fixture
def dataset_id(database) -> str:
    return add_dataset(database)


# -- claiming -------------------------------------------------------------------------------


def test_claim_takes_oldest_queued_job_first(database, settings, dataset_id):
    t0 = utcnow()
    newest = add_job(database, dataset_id, created_at=t0 + timedelta(seconds=2))
    oldest = add_job(database, dataset_id, created_at=t0)
    middle = add_job(database, dataset_id, created_at=t0 + timedelta(seconds=1))
    add_job(database, dataset_id, created_at=t0 - timedelta(seconds=5), status="succeeded")

    claimed = [claim_job(database=database, worker_id="w", settings=settings) for _ in range(4)]

    assert [c.job_id for c in claimed[:3]] == [oldest, middle, newest]
    assert claimed[3] is None


def test_claim_breaks_created_at_ties_by_id(database, settings, dataset_id):
    t0 = utcnow()
    ids = [add_job(database, dataset_id, created_at=t0) for _ in range(5)]

    claimed = [claim_job(database=database, worker_id="w", settings=settings) for _ in ids]

    assert [c.job_id for c in claimed] == sorted(ids)


def test_claim_marks_job_running_with_lease(database, settings, dataset_id):
    job_id = add_job(database, dataset_id, training=TrainingSpec(epochs=7, seed=3))
    before = utcnow()

    claim = claim_job(database=database, worker_id="worker-1", settings=settings)

    job = get_job(database, job_id)
    assert (job.status, job.attempt, job.worker) == ("running", 1, "worker-1")
    assert before <= job.started_at == job.heartbeat_at
    assert job.lease_expires_at == job.heartbeat_at + timedelta(seconds=settings.lease_seconds)
    assert claim.job_id == job_id
    assert claim.attempt == 1
    assert claim.dataset_id == dataset_id
    assert claim.model_spec == asdict(ModelSpec())
    assert TrainingSpec.from_dict(claim.training_spec) == TrainingSpec(epochs=7, seed=3)
    assert (claim.checkpoint, claim.checkpoint_epoch) == (None, None)


def test_claimed_job_is_not_claimed_again(database, settings, dataset_id):
    add_job(database, dataset_id)

    first = claim_job(database=database, worker_id="a", settings=settings)
    second = claim_job(database=database, worker_id="b", settings=settings)

    assert first is not None
    assert second is None
    assert get_job(database, first.job_id).worker == "a"


def test_concurrent_claims_take_each_job_exactly_once(database, settings, dataset_id):
    t0 = utcnow()
    job_ids = {
        add_job(database, dataset_id, created_at=t0 + timedelta(milliseconds=i)) for i in range(30)
    }
    claimed: dict[str, list[str]] = {f"w{i}": [] for i in range(4)}
    start = threading.Barrier(4)

    def drain(worker_id: str) -> None:
        start.wait()
        while claim := claim_job(database=database, worker_id=worker_id, settings=settings):
            claimed[worker_id].append(claim.job_id)

    threads = [threading.Thread(target=drain, args=(w,)) for w in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every_claim = [job_id for ids in claimed.values() for job_id in ids]
    assert sorted(every_claim) == sorted(job_ids)  # each job once, none twice
    with database.reads() as session:
        rows = session.execute(select(Job.id, Job.attempt, Job.worker, Job.status)).all()
    assert {(r.attempt, r.status) for r in rows} == {(1, "running")}
    assert {r.id: r.worker for r in rows} == {j: w for w, ids in claimed.items() for j in ids}


def test_second_claim_keeps_started_at(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim_job(database=database, worker_id="a", settings=settings)
    started = get_job(database, job_id).started_at
    expire_lease(database, job_id)
    sweep_expired_leases(database=database, settings=settings)

    claim = claim_job(database=database, worker_id="b", settings=settings)

    job = get_job(database, job_id)
    assert (claim.attempt, job.attempt, job.worker) == (2, 2, "b")
    assert job.started_at == started


# -- while a job runs -----------------------------------------------------------------------


def test_heartbeat_renews_lease_and_reports_cancelling(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    first_lease = get_job(database, job_id).lease_expires_at

    status = heartbeat(database=database, job_id=job_id, attempt=claim.attempt, settings=settings)

    assert status == "running"
    assert get_job(database, job_id).lease_expires_at > first_lease
    set_job(database, job_id, status="cancelling")  # as POST /v1/jobs/{id}/cancel does
    status = heartbeat(database=database, job_id=job_id, attempt=claim.attempt, settings=settings)
    assert status == "cancelling"


def test_record_progress_writes_history_and_progress_fields(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    epochs = [*metrics(range(1, 3)), EpochMetrics(3, float("nan"), None, 0.5, None, 2.0, 0.02)]

    status = record_progress(
        database=database,
        job_id=job_id,
        attempt=claim.attempt,
        epochs=epochs,
        best_epoch=2,
        elapsed_seconds=0.04,
        settings=settings,
    )

    assert status == "running"
    job = get_job(database, job_id)
    assert (job.epoch, job.train_loss, job.val_loss, job.best_epoch) == (3, None, None, 2)
    assert job.elapsed_seconds == pytest.approx(0.04)
    with database.reads() as session:
        rows = session.scalars(select(JobHistory).order_by(JobHistory.epoch)).all()
    assert [(r.epoch, r.attempt, r.train_loss, r.val_loss) for r in rows] == [
        (1, 1, 0.5, 0.6),
        (2, 1, 0.5, 0.6),
        (3, 1, None, None),  # NaN is stored as NULL
    ]


def test_store_checkpoint_keeps_one_row_per_job(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    fence = {"database": database, "job_id": job_id, "attempt": claim.attempt}

    assert store_checkpoint(**fence, epoch=3, data=b"first")
    assert store_checkpoint(**fence, epoch=6, data=b"second")

    with database.reads() as session:
        rows = session.scalars(select(Checkpoint)).all()
    assert [(r.job_id, r.attempt, r.epoch, r.data) for r in rows] == [(job_id, 1, 6, b"second")]


# -- fencing --------------------------------------------------------------------------------


def test_old_attempt_is_fenced_out_after_requeue_and_reclaim(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    old = claim_job(database=database, worker_id="stalled", settings=settings)
    expire_lease(database, job_id)
    assert sweep_expired_leases(database=database, settings=settings) == 1
    new = claim_job(database=database, worker_id="fresh", settings=settings)
    assert (old.attempt, new.attempt) == (1, 2)
    stale = {"database": database, "job_id": job_id, "attempt": old.attempt}
    result = small_fit()

    assert heartbeat(**stale, settings=settings) is None
    assert (
        record_progress(
            **stale,
            epochs=metrics(range(1, 4)),
            best_epoch=1,
            elapsed_seconds=9.0,
            settings=settings,
        )
        is None
    )
    assert store_checkpoint(**stale, epoch=3, data=b"stale") is False
    assert complete_job(**stale, result=result) is False
    assert fail_job(**stale, error="stale", code="training_error") is False
    assert release_job(**stale) is False

    job = get_job(database, job_id)
    assert (job.status, job.attempt, job.worker, job.epoch) == ("running", 2, "fresh", 0)
    assert (job.error, job.elapsed_seconds, job.finished_at) == (None, 0.0, None)
    assert history_epochs(database, job_id) == []
    assert count(database, Checkpoint) == 0
    assert count(database, Model) == 0
    # The new attempt's writes go through.
    assert heartbeat(database=database, job_id=job_id, attempt=2, settings=settings) == "running"
    assert complete_job(database=database, job_id=job_id, attempt=2, result=result) is True
    assert get_job(database, job_id).status == "succeeded"


# -- sweeping expired leases ----------------------------------------------------------------


def test_sweep_requeues_expired_running_job(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    live_id = add_job(database, dataset_id)
    claim_job(database=database, worker_id="dead", settings=settings)
    claim_job(database=database, worker_id="alive", settings=settings)
    expire_lease(database, job_id)

    assert sweep_expired_leases(database=database, settings=settings) == 1

    job = get_job(database, job_id)
    assert (job.status, job.attempt, job.worker, job.lease_expires_at) == ("queued", 1, None, None)
    assert get_job(database, live_id).status == "running"  # its lease has not expired


def test_sweep_fails_expired_job_at_max_attempts_as_worker_lost(database, settings, dataset_id):
    job_id = add_job(database, dataset_id, max_attempts=2)
    for worker in ("first", "second"):
        claim_job(database=database, worker_id=worker, settings=settings)
        expire_lease(database, job_id)
        assert sweep_expired_leases(database=database, settings=settings) == 1

    job = get_job(database, job_id)
    assert (job.status, job.error_code, job.attempt) == ("failed", "worker_lost", 2)
    assert job.error == (
        "the job's worker stopped renewing its lease (lease_seconds=3) "
        "on its last allowed attempt (attempt 2 of 2)"
    )
    assert job.finished_at is not None
    assert claim_job(database=database, worker_id="third", settings=settings) is None


def test_sweep_cancels_expired_cancelling_job(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim_job(database=database, worker_id="dead", settings=settings)
    set_job(database, job_id, status="cancelling")
    expire_lease(database, job_id)

    assert sweep_expired_leases(database=database, settings=settings) == 1

    job = get_job(database, job_id)
    assert (job.status, job.stop_reason, job.worker) == ("cancelled", "cancelled", "dead")
    assert job.lease_expires_at is None
    assert job.finished_at is not None


def test_concurrent_sweeps_settle_each_job_once(database, settings, dataset_id):
    job_ids = [add_job(database, dataset_id) for _ in range(10)]
    for _ in job_ids:
        claim_job(database=database, worker_id="dead", settings=settings)
    for job_id in job_ids:
        expire_lease(database, job_id)
    changed: list[int] = []
    start = threading.Barrier(4)

    def sweep() -> None:
        start.wait()
        changed.append(sweep_expired_leases(database=database, settings=settings))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(changed) == 10
    assert {get_job(database, j).status for j in job_ids} == {"queued"}


# -- releasing and ending -------------------------------------------------------------------


def test_release_job_requeues_and_keeps_checkpoint(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    fence = {"database": database, "job_id": job_id, "attempt": claim.attempt}
    record_progress(
        **fence, epochs=metrics(range(1, 5)), best_epoch=4, elapsed_seconds=1.0, settings=settings
    )
    store_checkpoint(**fence, epoch=4, data=b"state after 4")

    assert release_job(**fence) is True

    job = get_job(database, job_id)
    assert (job.status, job.worker, job.lease_expires_at, job.attempt) == ("queued", None, None, 1)
    again = claim_job(database=database, worker_id="b", settings=settings)
    assert (again.attempt, again.checkpoint, again.checkpoint_epoch) == (2, b"state after 4", 4)
    assert history_epochs(database, job_id) == [(e, 1) for e in range(1, 5)]


def test_release_of_cancelling_job_cancels_it(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    set_job(database, job_id, status="cancelling")

    assert release_job(database=database, job_id=job_id, attempt=claim.attempt) is True

    job = get_job(database, job_id)
    assert (job.status, job.stop_reason) == ("cancelled", "cancelled")
    assert job.finished_at is not None


def small_fit(**training: Any) -> FitResult:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return fit(X, (X[:, 0] > 0).astype(int), ModelSpec(), TrainingSpec(epochs=5, **training))


def test_complete_job_stores_model_of_succeeded_job(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    result = small_fit()

    assert complete_job(database=database, job_id=job_id, attempt=claim.attempt, result=result)

    job = get_job(database, job_id)
    assert (job.status, job.stop_reason, job.epoch, job.worker) == (
        "succeeded",
        "max_epochs",
        5,
        "a",  # the worker that ran the last attempt stays named
    )
    assert job.lease_expires_at is None
    assert job.train_loss == pytest.approx(result.history[-1].train_loss)
    assert job.finished_at is not None
    with database.reads() as session:
        model = session.scalars(select(Model)).one()
    assert (model.job_id, model.dataset_id, model.model_type) == (
        job_id,
        dataset_id,
        "logistic_regression",
    )
    assert model.metrics["stop_reason"] == "max_epochs"
    assert model.artifact.startswith(b"PK")  # the engine's .npz


def test_complete_job_of_diverged_run_fails_without_model(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    result = small_fit(optimizer="gd", learning_rate=1e300)
    assert result.stop_reason == "diverged"

    assert complete_job(database=database, job_id=job_id, attempt=claim.attempt, result=result)

    job = get_job(database, job_id)
    assert (job.status, job.stop_reason, job.error_code) == ("failed", "diverged", "diverged")
    assert job.error == result.message
    assert job.train_loss is None  # the diverged epoch's NaN
    assert count(database, Model) == 0


def test_complete_job_of_cancelling_job_ends_cancelled_and_keeps_its_model(
    database, settings, dataset_id
):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    set_job(database, job_id, status="cancelling")

    assert complete_job(database=database, job_id=job_id, attempt=claim.attempt, result=small_fit())

    job = get_job(database, job_id)
    assert (job.status, job.stop_reason) == ("cancelled", "cancelled")
    with database.reads() as session:
        models = session.scalars(select(Model).where(Model.job_id == job_id)).all()
    assert [model.metrics["stop_reason"] for model in models] == ["cancelled"]


def test_fail_job_records_message_and_code(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)

    assert fail_job(
        database=database,
        job_id=job_id,
        attempt=claim.attempt,
        error="need at least 2 classes to train a classifier, got [1]",
        code="training_error",
    )

    job = get_job(database, job_id)
    assert (job.status, job.error_code) == ("failed", "training_error")
    assert job.error == "need at least 2 classes to train a classifier, got [1]"


@pytest.mark.parametrize("terminal", ["succeeded", "failed", "cancelled"])
def test_terminal_states_stay_terminal(database, settings, dataset_id, terminal):
    job_id = add_job(database, dataset_id)
    claim = claim_job(database=database, worker_id="a", settings=settings)
    set_job(database, job_id, status=terminal, lease_expires_at=utcnow() - timedelta(seconds=1))
    fence = {"database": database, "job_id": job_id, "attempt": claim.attempt}

    assert complete_job(**fence, result=small_fit()) is False
    assert fail_job(**fence, error="late", code="training_error") is False
    assert release_job(**fence) is False
    assert heartbeat(**fence, settings=settings) is None
    assert (
        record_progress(
            **fence,
            epochs=metrics(range(1, 2)),
            best_epoch=1,
            elapsed_seconds=1.0,
            settings=settings,
        )
        is None
    )
    assert sweep_expired_leases(database=database, settings=settings) == 0
    assert claim_job(database=database, worker_id="b", settings=settings) is None

    job = get_job(database, job_id)
    assert (job.status, job.error, job.attempt) == (terminal, None, 1)
    assert history_epochs(database, job_id) == []
    assert count(database, Model) == 0


# -- history continuity ---------------------------------------------------------------------


def test_claim_after_checkpoint_drops_history_past_its_epoch(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    first = claim_job(database=database, worker_id="a", settings=settings)
    fence = {"database": database, "job_id": job_id, "attempt": first.attempt}
    record_progress(
        **fence, epochs=metrics(range(1, 7)), best_epoch=6, elapsed_seconds=0.6, settings=settings
    )
    store_checkpoint(**fence, epoch=6, data=b"state after 6")
    record_progress(
        **fence, epochs=metrics(range(7, 11)), best_epoch=9, elapsed_seconds=1.0, settings=settings
    )
    expire_lease(database, job_id)  # the worker died after epoch 10
    sweep_expired_leases(database=database, settings=settings)

    second = claim_job(database=database, worker_id="b", settings=settings)

    assert (second.attempt, second.checkpoint_epoch, second.checkpoint) == (2, 6, b"state after 6")
    assert history_epochs(database, job_id) == [(e, 1) for e in range(1, 7)]
    assert get_job(database, job_id).epoch == 6  # progress follows the history back
    record_progress(
        database=database,
        job_id=job_id,
        attempt=2,
        epochs=metrics(range(7, 13)),
        best_epoch=12,
        elapsed_seconds=1.2,
        settings=settings,
    )
    assert history_epochs(database, job_id) == [(e, 1) for e in range(1, 7)] + [
        (e, 2) for e in range(7, 13)
    ]


def test_claim_without_checkpoint_drops_all_history(database, settings, dataset_id):
    job_id = add_job(database, dataset_id)
    first = claim_job(database=database, worker_id="a", settings=settings)
    record_progress(
        database=database,
        job_id=job_id,
        attempt=first.attempt,
        epochs=metrics(range(1, 4)),
        best_epoch=3,
        elapsed_seconds=0.3,
        settings=settings,
    )
    expire_lease(database, job_id)
    sweep_expired_leases(database=database, settings=settings)

    second = claim_job(database=database, worker_id="b", settings=settings)

    assert (second.attempt, second.checkpoint) == (2, None)
    assert history_epochs(database, job_id) == []
    job = get_job(database, job_id)
    assert (job.epoch, job.train_loss) == (0, None)
