"""The job queue as a state machine: any interleaving of workers, cancels, crashes and sweeps.

Hypothesis drives the real queue functions (service.queue.claims, service.jobs.service.cancel_job,
service.sweeps.service.cancel_sweep) on the real databases, and keeps a model of what each
job should be. Workers are handles on a claim (job, attempt); a handle whose job
was swept and re-claimed stays around and keeps trying to write, as a worker that
stalled past its lease would. After every step the database must equal the model,
and these hold:

- terminal states stay terminal (succeeded, failed, cancelled never change);
- attempt never exceeds max_attempts;
- at most one live lease per job: only the handle of the job's current attempt is
  obeyed while it holds the job; every other handle's write is refused and changes
  nothing;
- a job holds a lease exactly while it is running or cancelling;
- the history of each job is epochs 1..n with no gap and no repeat;
- a succeeded job has exactly one model; a job cancelled while its fit ended keeps one too;
  any other job has none.

A "crash" sets the job's lease_expires_at in the past, as a worker that stopped
renewing it would leave it; the sweep then settles it.
"""

import math
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select

import engine
from engine import ModelSpec, TrainingSpec
from engine.history import EpochMetrics
from service.core.database import Database
from service.core.settings import Settings
from service.core.states import (
    CANCELLED,
    CANCELLING,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
)
from service.core.tables import Job, JobHistory, Model, Sweep, utcnow
from service.jobs import service as job_service
from service.queue import claims as queue
from service.queue import outcomes
from service.sweeps import service as sweep_service
from tests.property.strategies import DETERMINISTIC
from tests.service.factories import add_job, get_job, set_job

HELD = (RUNNING, CANCELLING)
WORKERS = ("worker-a", "worker-b", "worker-c")
# Leases never run out on their own during a run: only a "crash" expires one.
QUEUE_SETTINGS = Settings(database_url="sqlite://", lease_seconds=3600.0)


@dataclass
class JobModel:
    status: str = QUEUED
    attempt: int = 0
    max_attempts: int = 3
    in_sweep: bool = False
    has_model: bool = False  # complete_job kept one (succeeded, or cancelled meanwhile)
    expired: bool = False  # its lease ran out (a crash) and nobody renewed it since
    epochs: int = 0  # history rows 1..epochs
    checkpoint: int | None = None  # the epoch of its stored checkpoint


@dataclass
class Handle:
    """A worker's claim on a job: what it believes it holds."""

    worker: str
    job_id: str
    attempt: int
    next_epoch: int


def epoch_metrics(epoch: int) -> EpochMetrics:
    loss = math.nan if epoch % 7 == 0 else 1.0 / epoch  # NaN is stored as NULL
    return EpochMetrics(epoch, loss, loss, 0.5, 0.5, 0.1, 0.01)


def fit_result() -> engine.FitResult:
    """A real FitResult to finish jobs with (complete_job stores its model)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = (X[:, 0] > 0).astype(int)
    return engine.fit(X, y, ModelSpec(), TrainingSpec(epochs=3, early_stopping=None))


class QueueMachine(RuleBasedStateMachine):
    """Set ``database`` and ``result`` on a subclass before running it."""

    database: Database
    result: engine.FitResult

    @initialize()
    def start_empty(self) -> None:
        # Jobs need no dataset here (dataset_id may be NULL): the queue never reads it.
        with self.database.writes() as session, session.begin():
            session.execute(delete(Job))  # history, checkpoints and models go with them
            session.execute(delete(Sweep))
            sweep = Sweep(dataset_id=None, model_spec={}, training_spec={}, search={})
            session.add(sweep)
            session.flush()
            self.sweep_id = sweep.id
        self.jobs: dict[str, JobModel] = {}
        self.order: list[str] = []  # creation order: claims take the oldest queued job
        self.handles: list[Handle] = []
        self.started = utcnow()

    # Helpers -----------------------------------------------------------------------------

    def live(self, handle: Handle) -> bool:
        job = self.jobs[handle.job_id]
        return job.status in HELD and job.attempt == handle.attempt

    def cancel_in_model(self, job: JobModel) -> None:
        if job.status == QUEUED:
            job.status = CANCELLED
        elif job.status == RUNNING:
            job.status = CANCELLING

    def unfinished(self) -> list[str]:
        return [job_id for job_id in self.order if self.jobs[job_id].status not in TERMINAL_STATES]

    def a_handle(self, data: st.DataObject, handles: list[Handle] | None = None) -> Handle:
        """A handle, a live one as often as not (stale ones pile up)."""
        handles = self.handles if handles is None else handles
        live = [handle for handle in handles if self.live(handle)]
        pool = data.draw(st.sampled_from([live, handles])) if live else handles
        return data.draw(st.sampled_from(pool))

    def held_jobs(self) -> list[str]:
        return [job_id for job_id in self.order if self.jobs[job_id].status in HELD]

    # Rules -------------------------------------------------------------------------------

    @precondition(lambda self: len(self.unfinished()) < 3)  # steps go to the workers instead
    @rule(max_attempts=st.integers(1, 3), in_sweep=st.booleans())
    def submit(self, max_attempts: int, in_sweep: bool) -> None:
        job_id = add_job(
            self.database,
            None,
            max_attempts=max_attempts,
            created_at=self.started + timedelta(seconds=len(self.order)),
            sweep_id=self.sweep_id if in_sweep else None,
        )
        self.jobs[job_id] = JobModel(max_attempts=max_attempts, in_sweep=in_sweep)
        self.order.append(job_id)

    @precondition(lambda self: self.order)
    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker: str) -> None:
        claim = queue.claim_job(database=self.database, worker_id=worker, settings=QUEUE_SETTINGS)
        queued = [job_id for job_id in self.order if self.jobs[job_id].status == QUEUED]
        if not queued:
            assert claim is None
            return
        assert claim is not None
        assert claim.job_id == queued[0]  # the oldest queued job
        job = self.jobs[claim.job_id]
        assert claim.attempt == job.attempt + 1
        assert claim.checkpoint_epoch == job.checkpoint
        job.status, job.attempt, job.expired = RUNNING, claim.attempt, False
        job.epochs = job.checkpoint or 0  # the epochs after the checkpoint run again
        self.handles.append(Handle(worker, claim.job_id, claim.attempt, job.epochs + 1))

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        handle = self.a_handle(data)
        status = queue.heartbeat(
            database=self.database,
            job_id=handle.job_id,
            attempt=handle.attempt,
            settings=QUEUE_SETTINGS,
        )
        if self.live(handle):
            job = self.jobs[handle.job_id]
            assert status == job.status
            job.expired = False
        else:
            assert status is None

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), count=st.integers(1, 3))
    def record_progress(self, data: st.DataObject, count: int) -> None:
        handle = self.a_handle(data)
        epochs = [epoch_metrics(handle.next_epoch + i) for i in range(count)]
        status = queue.record_progress(
            database=self.database,
            job_id=handle.job_id,
            attempt=handle.attempt,
            epochs=epochs,
            best_epoch=None,
            elapsed_seconds=0.1,
            settings=QUEUE_SETTINGS,
        )
        handle.next_epoch += count  # a stale worker moves on too, unaware
        if self.live(handle):
            job = self.jobs[handle.job_id]
            assert status == job.status
            job.epochs += count
            job.expired = False
        else:
            assert status is None

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def store_checkpoint(self, data: st.DataObject) -> None:
        handle = self.a_handle(data)
        epoch = handle.next_epoch - 1  # a worker flushes its history first
        stored = queue.store_checkpoint(
            database=self.database,
            job_id=handle.job_id,
            attempt=handle.attempt,
            epoch=epoch,
            data=b"checkpoint",
        )
        assert stored == self.live(handle)
        if stored:
            self.jobs[handle.job_id].checkpoint = epoch

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), diverged=st.booleans())
    def complete(self, data: st.DataObject, diverged: bool) -> None:
        handle = self.a_handle(data)
        result = replace(self.result, stop_reason="diverged") if diverged else self.result
        done = outcomes.complete_job(
            database=self.database, job_id=handle.job_id, attempt=handle.attempt, result=result
        )
        assert done == self.live(handle)
        if done:
            job = self.jobs[handle.job_id]
            if job.status == CANCELLING:
                job.status = CANCELLED
            else:
                job.status = FAILED if diverged else SUCCEEDED
            job.has_model = not diverged  # a cancelled job keeps its model too

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        handle = self.a_handle(data)
        failed = outcomes.fail_job(
            database=self.database,
            job_id=handle.job_id,
            attempt=handle.attempt,
            error="the dataset was deleted",
            code="dataset_missing",
        )
        assert failed == self.live(handle)
        if failed:
            self.jobs[handle.job_id].status = FAILED

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        """SIGTERM: the worker gives the job back (on its last attempt, with one more)."""
        handle = self.a_handle(data, self.handles)
        job = self.jobs[handle.job_id]
        released = outcomes.release_job(
            database=self.database, job_id=handle.job_id, attempt=handle.attempt
        )
        assert released == self.live(handle)
        if released:
            if job.status != CANCELLING:
                job.max_attempts = max(job.max_attempts, job.attempt + 1)
            job.status = CANCELLED if job.status == CANCELLING else QUEUED
            job.expired = False

    @precondition(lambda self: self.unfinished())
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        # Mostly a job that can still change; now and then one that has ended (a no-op).
        job_id = data.draw(st.sampled_from(self.unfinished()) | st.sampled_from(self.order))
        with self.database.writes() as session:
            job_service.cancel_job(session=session, job_id=job_id)
        self.cancel_in_model(self.jobs[job_id])

    @precondition(lambda self: any(self.jobs[j].in_sweep for j in self.unfinished()))
    @rule()
    def cancel_sweep(self) -> None:
        with self.database.writes() as session:
            sweep_service.cancel_sweep(session=session, sweep_id=self.sweep_id)
        for job in self.jobs.values():
            if job.in_sweep:
                self.cancel_in_model(job)

    @precondition(lambda self: self.held_jobs())
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        """The job's worker stops renewing its lease (killed, or paused)."""
        job_id = data.draw(st.sampled_from(self.held_jobs()))
        set_job(self.database, job_id, lease_expires_at=utcnow() - timedelta(seconds=1))
        self.jobs[job_id].expired = True

    @precondition(lambda self: self.held_jobs())  # with nothing held, a sweep has nothing to do
    @rule()
    def sweep(self) -> None:
        changed = outcomes.sweep_expired_leases(database=self.database, settings=QUEUE_SETTINGS)
        expected = 0
        for job in self.jobs.values():
            if not (job.expired and job.status in HELD):
                continue
            expected += 1
            if job.status == CANCELLING:
                job.status = CANCELLED
            elif job.attempt >= job.max_attempts:
                job.status = FAILED
            else:
                job.status = QUEUED
            job.expired = False
        assert changed == expected

    # Invariants --------------------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        if not hasattr(self, "jobs"):
            return
        with self.database.reads() as session:
            rows = {job.id: job for job in session.scalars(select(Job))}
            history = self.history_of(session)
            models = dict(
                session.execute(select(Model.job_id, func.count()).group_by(Model.job_id)).all()
            )
        assert set(rows) == set(self.jobs)
        for job_id, expected in self.jobs.items():
            row = rows[job_id]
            assert (row.status, row.attempt) == (expected.status, expected.attempt), job_id
            assert row.attempt <= row.max_attempts, "attempt past max_attempts"
            assert (row.lease_expires_at is not None) == (row.status in HELD)
            assert (row.finished_at is not None) == (row.status in TERMINAL_STATES)
            assert history.get(job_id, []) == list(range(1, expected.epochs + 1))
            assert models.get(job_id, 0) == (1 if expected.has_model else 0)
            assert row.status != SUCCEEDED or expected.has_model

    @staticmethod
    def history_of(session) -> dict[str, list[int]]:
        epochs: dict[str, list[int]] = {}
        statement = select(JobHistory.job_id, JobHistory.epoch).order_by(
            JobHistory.job_id, JobHistory.epoch
        )
        for job_id, epoch in session.execute(statement):
            epochs.setdefault(job_id, []).append(epoch)
        return epochs


@pytest.fixture(scope="module")
def result() -> engine.FitResult:
    return fit_result()


@pytest.mark.slow
def test_queue_keeps_its_invariants_under_any_interleaving(database, result):
    machine = type("Machine", (QueueMachine,), {"database": database, "result": result})
    run_state_machine_as_test(
        machine, settings=settings(DETERMINISTIC, max_examples=50, stateful_step_count=30)
    )


def test_a_job_released_on_its_last_attempt_is_not_claimed_past_max_attempts(database):
    job_id = add_job(database, None, max_attempts=1)
    claim = queue.claim_job(database=database, worker_id="a", settings=QUEUE_SETTINGS)
    assert claim is not None
    assert claim.attempt == 1
    assert outcomes.release_job(database=database, job_id=job_id, attempt=1)  # SIGTERM
    queue.claim_job(database=database, worker_id="b", settings=QUEUE_SETTINGS)
    job = get_job(database, job_id)
    assert job.attempt <= job.max_attempts
