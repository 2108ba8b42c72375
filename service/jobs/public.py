"""A job as clients see it: its specs, progress, links and the model it made."""

import math

from service.core.json_values import finite_or_none
from service.core.states import (
    CANCELLING,
    SUCCEEDED,
    TERMINAL_STATES,
)
from service.core.tables import Job
from service.jobs.schemas import JobLinks, JobPublic, Progress


def job_public(job: Job, model_id: str | None = None) -> JobPublic:
    base = f"/v1/jobs/{job.id}"
    return JobPublic(
        id=job.id,
        status=job.status,
        dataset_id=job.dataset_id,
        model=finite_or_none(job.model_spec),
        training=finite_or_none(job.training_spec),
        progress=progress_of(job),
        stop_reason=job.stop_reason,
        error=job.error,
        error_code=job.error_code,
        attempts=job.attempt,
        max_attempts=job.max_attempts,
        model_id=model_id,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        sweep_id=job.sweep_id,
        trial=finite_or_none(job.trial),
        warnings=list(job.warnings or []),
        warm_start=job.warm_start,
        parent_model_id=job.parent_model_id,
        links=JobLinks(
            self=base,
            history=f"{base}/history",
            events=f"{base}/events",
            cancel=f"{base}/cancel",
            model=f"/v1/models/{model_id}" if model_id else None,
        ),
    )


def progress_of(job: Job) -> Progress:
    """Epoch counts, latest losses and a time estimate from the seconds per epoch so far."""
    epoch, epochs = job.epoch or 0, job.epochs
    elapsed = finite_or_none(float(job.elapsed_seconds or 0.0)) or 0.0
    if job.status == SUCCEEDED:
        percent = 100.0  # early stopping and convergence finish before `epochs`
    else:
        percent = round(100.0 * min(epoch, epochs) / epochs, 2) if epochs else 0.0
    return Progress(
        epoch=epoch,
        epochs=epochs,
        percent=percent,
        train_loss=finite_or_none(job.train_loss),
        val_loss=finite_or_none(job.val_loss),
        train_accuracy=finite_or_none(job.train_accuracy),
        val_accuracy=finite_or_none(job.val_accuracy),
        best_epoch=job.best_epoch,
        elapsed_seconds=elapsed,
        remaining_seconds=_remaining_seconds(job, epoch, epochs, elapsed),
    )


def _remaining_seconds(job: Job, epoch: int, epochs: int, elapsed: float) -> float | None:
    if job.status in TERMINAL_STATES:
        return 0.0
    if epoch <= 0 or elapsed <= 0.0:
        return None  # no epoch timed yet
    per_epoch = elapsed / epoch
    if job.status == CANCELLING:
        return per_epoch  # it stops at the end of the current epoch
    remaining = per_epoch * max(epochs - epoch, 0)
    time_limit = (job.training_spec or {}).get("time_limit")
    if isinstance(time_limit, int | float) and math.isfinite(time_limit):
        remaining = min(remaining, max(time_limit - elapsed, 0.0))
    return remaining
