"""Sweeps: a grid or random search over hyperparameters, run as one child job per trial.

POST /v1/sweeps checks the whole search before writing anything: the base job
as POST /v1/jobs checks a job, then every value of every dimension, then every
trial (the base with the trial's values; service.sweeps.trials), each with engine_specs,
so the messages are the jobs API's and the field names the value at fault
(``search.space.activation[1]``). It then records the sweep and one queued job
per trial in one transaction. Workers train the children like any other job.

A sweep's status, counts and leaderboard are read from its children (SQL
aggregates over jobs and job_history), never stored.
"""

from datetime import timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from service.core.audit import record
from service.core.auth import current_api_key_id
from service.core.errors import (
    not_found,
    unknown_reference,
)
from service.core.json_values import finite_or_none
from service.core.limits import check_work, reserve_queue_room
from service.core.pagination import page
from service.core.quotas import reserve_project_queue_room
from service.core.settings import Settings
from service.core.states import (
    CANCELLED,
    FAILED,
    JOB_STATES,
    LIVE_STATES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
)
from service.core.tables import Dataset, Job, JobHistory, Model, Sweep, utcnow
from service.core.tenancy import request_project
from service.datasets.input_columns import check_preprocessing, dataset_warnings
from service.jobs.schemas import JobCreate
from service.jobs.service import (
    cancel_jobs,
    could_be_id,
    engine_specs,
    queued_job,
    trainable_dataset,
)
from service.queue.notify import notify_job_queued
from service.sweeps.schemas import (
    SweepCounts,
    SweepCreate,
    SweepLinks,
    SweepPublic,
    SweepSummary,
    TrialPublic,
)
from service.sweeps.trials import plan_trials, trial_specs

# Checking one combination: the base with some dimensions replaced.


# The search space.


# Trials.


# Creating a sweep.


def create_sweep(*, session: Session, sweep_in: SweepCreate, settings: Settings) -> Sweep:
    """Check the search, then record the sweep and its queued jobs and wake workers; commits.

    The children are created a microsecond apart in trial order: the queue takes the
    oldest job first, so the trials run in order, and the leaderboard breaks ties so.
    As for POST /v1/jobs, each trial must fit the work budget (422), and the caller's
    key must have room for every trial among its queued jobs (429); the children
    record the key's id.
    """
    base = JobCreate(
        dataset_id=sweep_in.dataset_id, model=sweep_in.model, training=sweep_in.training
    )
    engine_specs(base, settings)  # the base must be a valid job on its own
    trials, search = plan_trials(sweep_in, settings)
    specs = [trial_specs(sweep_in, trial, settings) for trial in trials]
    dataset = trainable_dataset(session, sweep_in.dataset_id)
    for _, training_spec in specs:
        check_work(epochs=training_spec.epochs, rows=dataset.rows, settings=settings)
    check_preprocessing(dataset, specs[0][1].preprocessing, "training.preprocessing")
    api_key_id = current_api_key_id()
    reserve_queue_room(
        session=session, settings=settings, api_key_id=api_key_id, adding=len(trials)
    )
    reserve_project_queue_room(
        session, project=request_project(), settings=settings, adding=len(trials)
    )

    now = utcnow()
    sweep = Sweep(
        dataset_id=dataset.id,
        model_spec=sweep_in.model.model_dump(mode="json"),
        training_spec=sweep_in.training.model_dump(mode="json"),
        search=search.model_dump(mode="json"),
        created_at=now,
    )
    try:
        session.add(sweep)
        session.flush()  # the sweep's id, for its children
        session.add_all(
            queued_job(
                dataset_id=dataset.id,
                model_spec=model_spec,
                training_spec=training_spec,
                settings=settings,
                created_at=now + timedelta(microseconds=index),
                sweep_id=sweep.id,
                trial=trial.params,
                api_key_id=api_key_id,
                warnings=dataset_warnings(dataset),
            )
            for index, (trial, (model_spec, training_spec)) in enumerate(
                zip(trials, specs, strict=True)
            )
        )
        record(session, "sweep.create", sweep.id, {"dataset_id": dataset.id, "trials": len(trials)})
        notify_job_queued(session)
        session.commit()
    except IntegrityError:
        session.rollback()
        if session.get(Dataset, sweep_in.dataset_id) is None:  # deleted meanwhile
            raise unknown_reference("dataset_id", "dataset", sweep_in.dataset_id) from None
        raise
    return sweep


# Reading sweeps.


def get_sweep(*, session: Session, sweep_id: str) -> Sweep:
    """The sweep, or a 404 problem."""
    sweep = session.get(Sweep, sweep_id) if could_be_id(sweep_id) else None
    if sweep is None:
        raise not_found("sweep", sweep_id)
    return sweep


def list_sweeps(
    *, session: Session, limit: int, cursor: str | None = None
) -> tuple[list[Sweep], str | None]:
    """One page of sweeps, newest first."""
    return page(session, select(Sweep), Sweep, limit, cursor)


def status_counts(*, session: Session, sweep_ids: list[str]) -> dict[str, dict[str, int]]:
    """sweep id -> {job state: how many of its children are in it} (every state present)."""
    counts = {sweep_id: dict.fromkeys(JOB_STATES, 0) for sweep_id in sweep_ids}
    if sweep_ids:
        statement = (
            select(Job.sweep_id, Job.status, func.count())
            .where(Job.sweep_id.in_(sweep_ids))
            .group_by(Job.sweep_id, Job.status)
        )
        for sweep_id, status, count in session.execute(statement):
            counts[sweep_id][status] = count
    return counts


def sweep_status(counts: dict[str, int]) -> str:
    """The sweep's state from its children's (see SweepSummary.status).

    queued: every child queued. running: some child live (queued, running or
    cancelling) and some not queued. Once none is live: failed if any failed,
    else cancelled if any was cancelled, else succeeded.
    """
    total = sum(counts.values())
    if any(counts[state] for state in LIVE_STATES):
        return QUEUED if counts[QUEUED] == total else RUNNING
    if counts[FAILED]:
        return FAILED
    if counts[CANCELLED]:
        return CANCELLED
    return SUCCEEDED


def leaderboard(*, session: Session, sweep_id: str) -> list[TrialPublic]:
    """Every child, ranked by its lowest validation loss (none: last; ties: creation order).

    One statement of grouped aggregates over the children's history: MIN(val_loss) and
    MAX(epoch) per job; the best epoch is the first epoch at that minimum, the final
    training loss the one at the last epoch (a primary key lookup). Window functions
    would say the same in one pass, but SQLite sorts them some 40 times slower.
    """
    children = select(Job.id).where(Job.sweep_id == sweep_id)
    per_job = (
        select(
            JobHistory.job_id,
            func.min(JobHistory.val_loss).label("best_val_loss"),
            func.max(JobHistory.epoch).label("last_epoch"),
        )
        .where(JobHistory.job_id.in_(children))
        .group_by(JobHistory.job_id)
        .subquery()
    )
    best_epoch = (
        select(JobHistory.job_id, func.min(JobHistory.epoch).label("epoch"))
        .join(
            per_job,
            and_(
                JobHistory.job_id == per_job.c.job_id,
                JobHistory.val_loss == per_job.c.best_val_loss,
            ),
        )
        .group_by(JobHistory.job_id)
        .subquery()
    )
    last = aliased(JobHistory)
    statement = (
        select(
            Job.id,
            Job.status,
            Job.trial,
            per_job.c.best_val_loss,
            best_epoch.c.epoch,
            last.train_loss,
            Model.id,
        )
        .outerjoin(per_job, per_job.c.job_id == Job.id)
        .outerjoin(best_epoch, best_epoch.c.job_id == Job.id)
        .outerjoin(last, and_(last.job_id == Job.id, last.epoch == per_job.c.last_epoch))
        .outerjoin(Model, Model.job_id == Job.id)
        .where(Job.sweep_id == sweep_id)
        .order_by(per_job.c.best_val_loss.asc().nulls_last(), Job.created_at, Job.id)
    )
    return [
        TrialPublic(
            rank=rank,
            job_id=job_id,
            status=status,
            trial=finite_or_none(trial or {}),
            best_val_loss=finite_or_none(best_val_loss),
            best_epoch=best_epoch,
            final_train_loss=finite_or_none(final_train_loss),
            model_id=model_id,
        )
        for rank, (
            job_id,
            status,
            trial,
            best_val_loss,
            best_epoch,
            final_train_loss,
            model_id,
        ) in enumerate(session.execute(statement), start=1)
    ]


# Cancelling.


def cancel_sweep(*, session: Session, sweep_id: str) -> Sweep:
    """Cancel every child at once, idempotently; commits.

    One UPDATE makes the transition POST /v1/jobs/{id}/cancel makes for one job
    (service.jobs.service.cancel_job): queued -> cancelled (finished, stop_reason
    "cancelled"), running -> cancelling (its worker stops at the next epoch);
    cancelling and finished children stay as they are.
    """
    sweep = get_sweep(session=session, sweep_id=sweep_id)
    cancel_jobs(session, Job.sweep_id == sweep.id)
    record(session, "sweep.cancel", sweep.id)
    session.commit()
    return sweep


# What clients see.


def sweep_summary(sweep: Sweep, counts: dict[str, int]) -> SweepSummary:
    base = f"/v1/sweeps/{sweep.id}"
    return SweepSummary(
        id=sweep.id,
        status=sweep_status(counts),
        dataset_id=sweep.dataset_id,
        model=finite_or_none(sweep.model_spec),
        training=finite_or_none(sweep.training_spec),
        search=finite_or_none(sweep.search),
        counts=SweepCounts(total=sum(counts.values()), **counts),
        created_at=sweep.created_at,
        links=SweepLinks(self=base, cancel=f"{base}/cancel", jobs=f"/v1/jobs?sweep_id={sweep.id}"),
    )


def sweep_public(*, session: Session, sweep: Sweep) -> SweepPublic:
    """The sweep with its counts and leaderboard, as they are now."""
    counts = status_counts(session=session, sweep_ids=[sweep.id])[sweep.id]
    summary = sweep_summary(sweep, counts)
    return SweepPublic(
        **summary.model_dump(), leaderboard=leaderboard(session=session, sweep_id=sweep.id)
    )


def sweep_summaries(*, session: Session, sweeps: list[Sweep]) -> list[SweepSummary]:
    """Summaries of ``sweeps``, their counts from one grouped query."""
    counts = status_counts(session=session, sweep_ids=[sweep.id for sweep in sweeps])
    return [sweep_summary(sweep, counts[sweep.id]) for sweep in sweeps]
