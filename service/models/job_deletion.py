"""Deleting a finished job: its history, checkpoint, idempotency keys and fitted model
(DELETE /v1/jobs/{id}, routed here: a job's deletion deletes its model under the models'
rules, and the jobs room sits below the models room, so it cannot reach them).

A queued, running or cancelling job answers 409 "cancel it first": a worker may hold it,
and deleting the row under a worker would turn its next write into an error rather than a
clean stop. Once it has ended (POST /v1/jobs/{id}/cancel, then wait), it can go. The
foreign keys do the rest (ON DELETE CASCADE from jobs); its model is deleted under the
model's rule: not while a registry alias points at one of its versions.
"""

from fastapi import APIRouter, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.core.audit import record
from service.core.deps import IdPath, WriteSessionDep
from service.core.errors import Conflict, not_found
from service.core.schemas import problem_responses
from service.core.states import LIVE_STATES
from service.core.tables import Job, Model, could_be_id
from service.jobs.schemas import EXAMPLE_JOB_ID
from service.models.deletion import check_not_aliased, commit_delete
from service.models.service import ModelCache, ModelCacheDep

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JOB_NOT_FOUND = {404: f"job {EXAMPLE_JOB_ID!r} does not exist"}


def delete_ended_job(*, session: Session, cache: ModelCache, job_id: str) -> None:
    """Delete a finished job and everything that hangs off it; commits.

    404 for an unknown job; 409 while it is queued, running or cancelling (cancel it first),
    or while an alias points at a version of its model.
    """
    job = None
    if could_be_id(job_id):
        # FOR UPDATE: a worker's claim (conditional on queued) cannot interleave with this.
        job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None:
        raise not_found("job", job_id)
    if job.status in LIVE_STATES:
        raise Conflict(
            f"job {job_id} is {job.status}: cancel it first (POST /v1/jobs/{job_id}/cancel), "
            "then delete it once it has ended",
            job_status=job.status,
        )
    model_id = session.scalar(select(Model.id).where(Model.job_id == job_id))
    if model_id is not None:
        check_not_aliased(session=session, model_id=model_id)
    session.execute(delete(Job).where(Job.id == job_id))
    record(session, "job.delete", job_id, {"model_id": model_id} if model_id else None)
    if model_id is not None:
        commit_delete(session, model_id)
        cache.discard(model_id)
    else:
        session.commit()


@router.delete(
    "/{job_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a finished job, its history, checkpoint and model",
    responses={
        204: {"description": "Deleted; its model's predictions answer 404 on every API process"},
        **problem_responses(
            404,
            409,
            503,
            details={
                **JOB_NOT_FOUND,
                409: f"job {EXAMPLE_JOB_ID} is running: cancel it first (POST "
                f"/v1/jobs/{EXAMPLE_JOB_ID}/cancel), then delete it once it has ended",
            },
        ),
    },
)
def delete_job(job_id: IdPath, session: WriteSessionDep, cache: ModelCacheDep) -> Response:
    """Delete an ended job; 409 while it is live (cancel it first) or its model is aliased."""
    delete_ended_job(session=session, cache=cache, job_id=job_id)
    return Response(status_code=204)
