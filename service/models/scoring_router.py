"""/v1/models/{id}/batch-predictions and /v1/models/{id}/evaluations: a model scoring a
stored dataset (service.models.scoring; the workers' side: service.queue.scoring)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse

from service.core.deps import DatabaseDep, IdPath, SessionDep, SettingsDep
from service.core.schemas import json_answer, problem_responses
from service.models import scoring, scoring_results
from service.models.scoring_schemas import (
    EXAMPLE_BATCH_DONE,
    EXAMPLE_BATCH_QUEUED,
    EXAMPLE_DATASET_EVALUATION,
    EXAMPLE_DATASET_ID,
    EXAMPLE_EVALUATION_DONE,
    EXAMPLE_EVALUATION_QUEUED,
    EXAMPLE_MODEL_ID,
    EXAMPLE_TASK_ID,
    BatchPredictionCreate,
    BatchPredictionPublic,
    DatasetEvaluation,
    EvaluationCreate,
    EvaluationTaskPublic,
)
from service.models.service import ModelCache
from service.queue.scoring_claims import BATCH_PREDICTION, EVALUATION

router = APIRouter(prefix="/v1/models", tags=["models"])


async def get_model_cache(request: Request) -> ModelCache:
    """The application's model cache (the one the models router uses: app.state.model_cache)."""
    state = request.app.state
    cache = getattr(state, "model_cache", None)
    if cache is None:
        cache = state.model_cache = ModelCache()
    return cache


ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]

MODEL_NOT_FOUND = f"model {EXAMPLE_MODEL_ID!r} does not exist"
DATASET_PROBLEM = (
    f"dataset_id: dataset {EXAMPLE_DATASET_ID!r} lacks the model's features ['mean radius']"
)
BATCH_PROBLEMS = {404: MODEL_NOT_FOUND, 422: DATASET_PROBLEM}
EVALUATION_PROBLEMS = {
    404: MODEL_NOT_FOUND,
    422: f"dataset_id: dataset {EXAMPLE_DATASET_ID!r} has labels the model does not know: "
    "['virginica'] (the model's classes: ['setosa', 'versicolor'])",
}
LOCATION = {"Location": {"description": "where to poll", "schema": {"type": "string"}}}


@router.post(
    "/{model_id}/batch-predictions",
    status_code=202,
    response_model=BatchPredictionPublic,
    summary="Score every row of a stored dataset in a worker",
    responses={
        202: json_answer(EXAMPLE_BATCH_QUEUED, "Queued; poll Location", headers=LOCATION),
        **problem_responses(404, 422, 503, details=BATCH_PROBLEMS),
    },
)
def create_batch_prediction(
    model_id: IdPath,
    batch_in: Annotated[BatchPredictionCreate, Body()],
    database: DatabaseDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Queue the scoring of the dataset; 202 with Location to poll."""
    task = scoring.create_batch_prediction(
        database=database,
        cache=cache,
        model_id=model_id,
        dataset_id=batch_in.dataset_id,
        settings=settings,
    )
    return JSONResponse(
        jsonable_encoder(task), status_code=202, headers={"Location": task.links.self}
    )


@router.get(
    "/{model_id}/batch-predictions/{batch_id}",
    summary="A batch prediction: status and progress",
    responses={
        200: json_answer(EXAMPLE_BATCH_DONE, "The batch prediction"),
        **problem_responses(
            404, 503, details={404: f"batch prediction {EXAMPLE_TASK_ID!r} does not exist"}
        ),
    },
)
def get_batch_prediction(
    model_id: IdPath, batch_id: IdPath, session: SessionDep
) -> BatchPredictionPublic:
    """Status, rows_done of rows_total, and the times it was created, started and finished."""
    task = scoring.get_task(
        session=session, model_id=model_id, task_id=batch_id, kind=BATCH_PREDICTION
    )
    return scoring.public_batch(task)


RESULT_CSV = "row,label,p_0,p_1\n0,0,0.9981,0.0019\n1,1,0.0312,0.9688\n"


@router.get(
    "/{model_id}/batch-predictions/{batch_id}/result",
    summary="A batch prediction's result, streamed as CSV or Parquet",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "row (the dataset's 0-based row), label (predicted), p_<class> "
            "for each class; empty cells (nulls) where the model's output overflowed",
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": RESULT_CSV},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "PAR1... (one row group per block of rows)",
                },
            },
        },
        **problem_responses(
            404,
            409,
            422,
            503,
            details={
                404: f"batch prediction {EXAMPLE_TASK_ID!r} does not exist",
                409: f"batch prediction {EXAMPLE_TASK_ID!r} is running (65536 of 1000000 rows "
                "scored): its result downloads once it has succeeded",
                422: "query.format: Input should be 'csv' or 'parquet'",
            },
        ),
    },
)
def download_batch_prediction_result(
    model_id: IdPath,
    batch_id: IdPath,
    database: DatabaseDep,
    cache: ModelCacheDep,
    file_format: Annotated[
        Literal["csv", "parquet"], Query(alias="format", description="csv or parquet")
    ] = "csv",
) -> StreamingResponse:
    """The result, a stored block at a time (the API never holds it whole)."""
    chunks = scoring_results.result_chunks(
        database=database,
        cache=cache,
        model_id=model_id,
        batch_id=batch_id,
        file_format=file_format,
    )
    media_type = "text/csv" if file_format == "csv" else "application/vnd.apache.parquet"
    filename = f"batch-prediction-{batch_id}.{file_format}"
    return StreamingResponse(  # a plain iterator: Starlette runs it in the threadpool
        chunks,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post(
    "/{model_id}/evaluations",
    response_model=None,
    summary="Evaluate the model on a stored, labelled dataset",
    description="At most BACKPROP_INLINE_EVALUATION_ROWS rows: 200 with the metrics. More: "
    "202 with Location, where a worker's evaluation shows `status`, then the metrics. The "
    "metrics are scikit-learn's (accuracy, log_loss, roc_auc, per_class, "
    "confusion_matrix...), as in a model's own `evaluation`, on every row of the dataset.",
    responses={
        200: {"model": DatasetEvaluation, **json_answer(EXAMPLE_DATASET_EVALUATION, "The metrics")},
        202: {
            "model": EvaluationTaskPublic,
            **json_answer(
                EXAMPLE_EVALUATION_QUEUED, "Queued for a worker; poll Location", headers=LOCATION
            ),
        },
        **problem_responses(404, 422, 503, details=EVALUATION_PROBLEMS),
    },
)
def create_evaluation(
    model_id: IdPath,
    evaluation_in: Annotated[EvaluationCreate, Body()],
    database: DatabaseDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
) -> JSONResponse:
    """The model's metrics on the dataset: at once, or queued for a worker (202)."""
    answer = scoring.create_evaluation(
        database=database,
        cache=cache,
        model_id=model_id,
        dataset_id=evaluation_in.dataset_id,
        settings=settings,
    )
    if isinstance(answer, DatasetEvaluation):
        return JSONResponse(jsonable_encoder(answer, by_alias=True))
    return JSONResponse(
        jsonable_encoder(answer, by_alias=True),
        status_code=202,
        headers={"Location": answer.links.self},
    )


@router.get(
    "/{model_id}/evaluations/{evaluation_id}",
    summary="An evaluation scored by a worker: status, then the metrics",
    responses={
        200: json_answer(EXAMPLE_EVALUATION_DONE, "The evaluation"),
        **problem_responses(
            404, 503, details={404: f"evaluation {EXAMPLE_TASK_ID!r} does not exist"}
        ),
    },
)
def get_evaluation(
    model_id: IdPath, evaluation_id: IdPath, session: SessionDep
) -> EvaluationTaskPublic:
    """Status and progress; `evaluation` holds the metrics once it has succeeded."""
    task = scoring.get_task(
        session=session, model_id=model_id, task_id=evaluation_id, kind=EVALUATION
    )
    return scoring.public_evaluation(task)
