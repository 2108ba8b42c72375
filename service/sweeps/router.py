"""/v1/sweeps: create a grid or random search, list sweeps, read one's leaderboard, cancel."""

import itertools
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from service.core.deps import IdPath, PageDep, SessionDep, SettingsDep, WriteSessionDep
from service.core.schemas import LIMIT_PROBLEM, problem_responses
from service.core.states import CANCELLED, QUEUED
from service.sweeps import service as sweeps
from service.sweeps.schemas import (
    CREATE_EXAMPLES,
    EXAMPLE_SWEEP_ID,
    SWEEP_EXAMPLE,
    SWEEP_SUMMARY_EXAMPLE,
    SweepCreate,
    SweepPublic,
    SweepsPublic,
)
from service.sweeps.space import MAX_TRIALS

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


# The error examples' details, as the service words them.
SWEEP_NOT_FOUND = {404: f"sweep {EXAMPLE_SWEEP_ID!r} does not exist"}
CREATE_PROBLEMS = {
    422: "search.space.activation[1]: Input should be 'sigmoid', 'tanh', 'relu' or 'leaky_relu'",
}
LIST_PROBLEMS = {422: LIMIT_PROBLEM}


def _json_example(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


QUEUED_SWEEP_EXAMPLE: dict[str, Any] = {
    **SWEEP_EXAMPLE,
    "status": QUEUED,
    "counts": {**SWEEP_EXAMPLE["counts"], "queued": 6, "running": 0, "succeeded": 0},
    # Nothing trained yet: every trial ties, in trial order.
    "leaderboard": [
        {
            "rank": rank,
            "job_id": f"{rank:x}" * 32,
            "status": QUEUED,
            "trial": {"learning_rate": learning_rate, "activation": activation},
            "best_val_loss": None,
            "best_epoch": None,
            "final_train_loss": None,
            "model_id": None,
        }
        for rank, (learning_rate, activation) in enumerate(
            itertools.product([0.01, 0.1, 0.5], ["tanh", "relu"]), start=1
        )
    ],
}

CANCELLED_SWEEP_EXAMPLE: dict[str, Any] = {
    **SWEEP_EXAMPLE,
    "status": CANCELLED,
    "counts": {**SWEEP_EXAMPLE["counts"], "queued": 0, "running": 0, "cancelled": 3},
    "leaderboard": [
        {**entry, "status": entry["status"] if entry["status"] == "succeeded" else CANCELLED}
        for entry in SWEEP_EXAMPLE["leaderboard"]
    ],
}


@router.post(
    "",
    status_code=202,
    response_model=SweepPublic,
    summary="Start a sweep: one queued job per trial of a grid or random search",
    description=(
        "`model` and `training` are the base job, checked as POST /v1/jobs checks a job; "
        "`search.space` names the dimensions to vary (learning_rate, hidden_units, "
        "activation, l2, init, optimizer) and their values. A `grid` runs the Cartesian "
        "product of the lists, in that order of dimensions, the last varying fastest; "
        "`random` search draws `n_trials` trials from lists (uniformly, with replacement) "
        "and, for learning_rate and l2, ranges `{low, high, log}` with numpy's Generator "
        "seeded by `seed` (default 0): the same request makes the same trials. Every trial "
        "is checked before anything is written; an error names the value at fault, e.g. "
        "`search.space.activation[1]`, with the message POST /v1/jobs would give. At most "
        f"{MAX_TRIALS} trials per sweep. The sweep and its jobs are recorded together; "
        "workers train the jobs like any other, oldest trial first."
    ),
    responses={
        202: {
            **_json_example(QUEUED_SWEEP_EXAMPLE, "Queued: every trial is a queued job"),
            "headers": {
                "Location": {"description": "/v1/sweeps/{id}", "schema": {"type": "string"}}
            },
        },
        **problem_responses(422, 503, details=CREATE_PROBLEMS),
    },
)
def create_sweep(
    sweep_in: Annotated[SweepCreate, Body(openapi_examples=CREATE_EXAMPLES)],
    session: WriteSessionDep,
    settings: SettingsDep,
    response: Response,
) -> SweepPublic:
    """Check every trial as POST /v1/jobs checks a job, then queue them all at once."""
    sweep = sweeps.create_sweep(session=session, sweep_in=sweep_in, settings=settings)
    response.headers["Location"] = f"/v1/sweeps/{sweep.id}"
    return sweeps.sweep_public(session=session, sweep=sweep)


@router.get(
    "",
    summary="List sweeps, newest first",
    responses={
        200: _json_example(
            {"data": [SWEEP_SUMMARY_EXAMPLE], "next_cursor": "WyIyMDI1LTA1LTAxVDA5OjMw"},
            "A page of sweeps, each with its status and counts (GET one for its leaderboard)",
        ),
        **problem_responses(422, 503, details=LIST_PROBLEMS),
    },
)
def list_sweeps(session: SessionDep, page: PageDep) -> SweepsPublic:
    """One page of sweeps with their status and trial counts."""
    rows, next_cursor = sweeps.list_sweeps(session=session, limit=page.limit, cursor=page.cursor)
    return SweepsPublic(
        data=sweeps.sweep_summaries(session=session, sweeps=rows), next_cursor=next_cursor
    )


@router.get(
    "/{sweep_id}",
    summary="A sweep and its leaderboard",
    responses={
        200: _json_example(SWEEP_EXAMPLE, "The sweep, its counts and every trial ranked"),
        **problem_responses(404, 503, details=SWEEP_NOT_FOUND),
    },
)
def get_sweep(sweep_id: IdPath, session: SessionDep) -> SweepPublic:
    """The sweep with its trials ranked by best validation loss (trials without one last)."""
    sweep = sweeps.get_sweep(session=session, sweep_id=sweep_id)
    return sweeps.sweep_public(session=session, sweep=sweep)


@router.post(
    "/{sweep_id}/cancel",
    summary="Cancel every trial of a sweep (idempotent)",
    responses={
        200: _json_example(
            CANCELLED_SWEEP_EXAMPLE,
            "No trial is running any more: queued ones are cancelled, finished ones kept",
        ),
        202: _json_example(
            {
                **CANCELLED_SWEEP_EXAMPLE,
                "status": "running",
                "counts": {**CANCELLED_SWEEP_EXAMPLE["counts"], "cancelling": 1, "cancelled": 2},
            },
            "Some trials were running: they stop at their next epoch (status cancelling)",
        ),
        **problem_responses(404, 503, details=SWEEP_NOT_FOUND),
    },
)
def cancel_sweep(sweep_id: IdPath, session: WriteSessionDep, response: Response) -> SweepPublic:
    """Cancel the queued trials at once and the running ones at their next epoch."""
    sweep = sweeps.cancel_sweep(session=session, sweep_id=sweep_id)
    public = sweeps.sweep_public(session=session, sweep=sweep)
    response.status_code = 202 if public.counts.cancelling else 200
    return public
