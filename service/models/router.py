"""/v1/models: fitted models, their download, and predictions.

Routes are plain `def`: FastAPI runs them in its threadpool, so loading a
model and the prediction arithmetic never block the event loop. One exception:
a prediction of a few rows by a cached model is computed on the event loop
(tens of microseconds of NumPy), since the hop to a thread and back costs more
than the prediction itself; its one database read (is the model still stored?
service.core.point_reads) is awaited there too. Anything else goes to the threadpool.
"""

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from service.core.deps import (
    DatabaseDep,
    IdPath,
    PageDep,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from service.core.schemas import LIMIT_PROBLEM, problem_responses
from service.models import deletion, predictions
from service.models import service as models_service
from service.models.label_column import RecordsRoute
from service.models.predictions import INLINE_PREDICTION_ROWS
from service.models.schemas import (
    EXAMPLE_MODEL,
    ModelPublic,
    ModelsPublic,
    PredictionRequest,
    PredictionResponse,
)
from service.models.service import ModelCacheDep

# RecordsRoute: a record carrying the model's label column is told so (service.models.label_column).
router = APIRouter(prefix="/v1/models", tags=["models"], route_class=RecordsRoute)

ModelType = Literal["logistic_regression", "two_layer_network"]

EXAMPLE_ID = EXAMPLE_MODEL["id"]

# The error examples' details, as the service words them.
MODEL_NOT_FOUND = {404: f"model {EXAMPLE_ID!r} does not exist"}
GET_PROBLEMS = {
    **MODEL_NOT_FOUND,
    422: "query.include_parameters: Input should be a valid boolean, unable to interpret input",
}
PREDICT_PROBLEMS = {
    **MODEL_NOT_FOUND,
    413: "rows holds 20000 rows; at most 10000 rows per request (BACKPROP_MAX_PREDICTION_ROWS): "
    "split the request, or predict a stored dataset with dataset_id",
    422: "rows.0.0: Input should be a valid number",
}
EXAMPLE_PREDICTIONS = {
    "model_id": EXAMPLE_ID,
    "classes": [0, 1],
    "predictions": [{"label": 1, "probabilities": {"0": 0.03, "1": 0.97}}],
}
EXAMPLE_CSV = "row,label,predicted,p_0,p_1\n0,0,0,0.9981,0.0019\n1,1,1,0.0312,0.9688\n"

PREDICTION_EXAMPLES = {
    "rows": {
        "summary": "Rows of numbers, in feature_names order",
        "value": {"rows": [[14.1, 19.3]]},
    },
    "records": {
        "summary": "Records keyed by feature name, in any order",
        "value": {"records": [{"mean texture": 19.3, "mean radius": 14.1}]},
    },
    "dataset": {
        "summary": "Every row of a stored dataset, answered as text/csv",
        "value": {"dataset_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
    },
}

PREDICTIONS_DESCRIPTION = """
The body holds **exactly one** of:

- `rows`: a list of rows, each a list of one finite number per feature, in the
  model's `feature_names` order;
- `records`: a list of objects keyed by feature name (any key order; every feature
  exactly once: a missing or unknown name is a 422 naming it and the record's index);
- `dataset_id`: a stored dataset whose feature columns are the model's (in any order).

`rows` and `records` answer `application/json`: one prediction per row, in order, with
the label in the dataset's own values (ints stay ints, strings stay strings) and the
probability of each class keyed by `str(class)`. At most `BACKPROP_MAX_PREDICTION_ROWS`
rows per request (413 past it, naming the `limit`).

`dataset_id` answers `text/csv`, streamed: columns `row` (0-based position in the
dataset), `label` (the dataset's true label), `predicted`, then `p_<class>` for each class.

Values must be JSON numbers and finite: strings, booleans, null, NaN and numbers beyond
the float range (e.g. `1e400`) are 422 naming the field path (`rows.<row>.<column>`,
`records.<index>.<feature>`).
"""


@router.get(
    "",
    summary="List fitted models",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "data": [{**EXAMPLE_MODEL, "parameters": None}],
                        "next_cursor": None,
                    }
                }
            }
        },
        **problem_responses(422, 503, details={422: LIMIT_PROBLEM}),
    },
)
def list_models(
    session: SessionDep,
    cache: ModelCacheDep,
    page: PageDep,
    dataset_id: Annotated[str | None, Query(description="only models of this dataset")] = None,
    job_id: Annotated[str | None, Query(description="only the model of this job")] = None,
    model_type: Annotated[ModelType | None, Query(alias="type", description="model type")] = None,
) -> ModelsPublic:
    """Models newest first, with cursor pagination; `parameters` is left out (null)."""
    entries, next_cursor = models_service.list_models(
        session=session,
        cache=cache,
        limit=page.limit,
        cursor=page.cursor,
        dataset_id=dataset_id,
        job_id=job_id,
        model_type=model_type,
    )
    data = [models_service.public_model(e, include_parameters=False, curves=False) for e in entries]
    return ModelsPublic(data=data, next_cursor=next_cursor)


@router.get(
    "/{model_id}",
    summary="A fitted model: specs, metrics, diagnostics and parameters",
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE_MODEL}}},
        **problem_responses(404, 422, 503, details=GET_PROBLEMS),
    },
)
def get_model(
    model_id: IdPath,
    session: SessionDep,
    cache: ModelCacheDep,
    include_parameters: Annotated[
        bool, Query(description="false leaves the parameter arrays out (null)")
    ] = True,
) -> ModelPublic:
    """The model with its parameters W1, b1, W2, b2 (or w, b) as nested JSON arrays."""
    entry = models_service.get_model(session=session, cache=cache, model_id=model_id)
    return models_service.public_model(entry, include_parameters=include_parameters)


@router.get(
    "/{model_id}/download",
    summary="The model as the engine's portable .npz",
    response_class=Response,
    responses={
        200: {
            "description": "The .npz file; `engine.load(path)` reads it (no pickle)",
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "PK\\x03\\x04... (zip archive: meta, mean, scale, param/W1 ...)",
                }
            },
        },
        **problem_responses(404, 503, details=MODEL_NOT_FOUND),
    },
)
def download_model(model_id: IdPath, session: SessionDep) -> Response:
    """The stored .npz, as an attachment named model-<id>.npz."""
    artifact = models_service.model_artifact(session=session, model_id=model_id)
    return Response(
        content=artifact,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="model-{model_id}.npz"'},
    )


@router.post(
    "/{model_id}/predictions",
    summary="Predict labels and probabilities for rows, records or a stored dataset",
    description=PREDICTIONS_DESCRIPTION,
    response_model=PredictionResponse,
    responses={
        200: {
            "description": "JSON predictions (rows, records) or a CSV (dataset_id)",
            "content": {
                "application/json": {"example": EXAMPLE_PREDICTIONS},
                "text/csv": {"schema": {"type": "string"}, "example": EXAMPLE_CSV},
            },
        },
        **problem_responses(404, 413, 422, 503, details=PREDICT_PROBLEMS),
    },
)
async def create_predictions(
    model_id: IdPath,
    database: DatabaseDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
    prediction_in: Annotated[PredictionRequest, Body(openapi_examples=PREDICTION_EXAMPLES)],
) -> Any:
    """Predictions from the fitted model; see the description for the three kinds of input."""
    if prediction_in.dataset_id is not None and (
        prediction_in.rows is None and prediction_in.records is None
    ):
        chunks = await run_in_threadpool(
            predictions.predict_dataset,
            database=database,
            cache=cache,
            model_id=model_id,
            dataset_id=prediction_in.dataset_id,
        )
        filename = f"predictions-{model_id}-{prediction_in.dataset_id}.csv"
        return StreamingResponse(  # a plain iterator: Starlette runs it in the threadpool
            chunks,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    predict = partial(
        predictions.predict,
        database=database,
        cache=cache,
        model_id=model_id,
        request=prediction_in,
        max_rows=settings.max_prediction_rows,
    )
    rows = len(prediction_in.rows or ()) + len(prediction_in.records or ())
    entry = cache.get(model_id)
    if rows <= INLINE_PREDICTION_ROWS and entry is not None:
        await models_service.confirm_stored(database=database, cache=cache, entry=entry)
        return predictions.predict_with(
            entry, request=prediction_in, max_rows=settings.max_prediction_rows
        )
    return await run_in_threadpool(predict)


@router.delete(
    "/{model_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a model (not while a registry alias points at one of its versions)",
    responses={
        204: {
            "description": "Deleted, with its registered versions; predictions by its id "
            "answer 404 on every API process from the next request on"
        },
        **problem_responses(
            404,
            409,
            503,
            details={
                **MODEL_NOT_FOUND,
                409: f"model {EXAMPLE_ID} is in use: alias 'production' of registered model "
                "'churn' points at its version 2. Move or delete the alias (PUT or DELETE "
                "/v1/registered-models/{name}/aliases/{alias}), then delete the model",
            },
        ),
    },
)
def delete_model(model_id: IdPath, session: WriteSessionDep, cache: ModelCacheDep) -> Response:
    """Delete the model and its unaliased versions; its job and history stay."""
    deletion.delete_model(session=session, cache=cache, model_id=model_id)
    return Response(status_code=204)
