"""/v1/registered-models: names, their numbered versions of models, aliases, and
predictions through an alias (the same body and answer as POST /v1/models/{id}/predictions).

Which model answered an alias's prediction: the body's `model_id`, and the headers
`X-Model-Id` and `X-Model-Version` (also on CSV answers, whose body cannot say).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response
from fastapi.responses import StreamingResponse

from service.core.deps import DatabaseDep, PageDep, SessionDep, SettingsDep, WriteSessionDep
from service.core.schemas import LIMIT_PROBLEM, json_answer, problem_responses
from service.models.label_column import RecordsRoute
from service.models.schemas import PredictionRequest, PredictionResponse
from service.models.service import ModelCacheDep
from service.registry import predictions
from service.registry import service as registry
from service.registry.schemas import (
    EXAMPLE_ALIAS,
    EXAMPLE_MODEL_ID,
    EXAMPLE_NAME,
    EXAMPLE_REGISTERED_MODEL,
    EXAMPLE_VERSION,
    NAME_MAX,
    NAME_PATTERN,
    AliasPublic,
    AliasSet,
    ModelVersionCreate,
    ModelVersionPublic,
    RegisteredModelCreate,
    RegisteredModelPublic,
    RegisteredModelsPublic,
)

# RecordsRoute: a record carrying the model's label column is told so, as on /v1/models.
router = APIRouter(prefix="/v1/registered-models", tags=["registry"], route_class=RecordsRoute)

NamePath = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=NAME_MAX, description="a registered model's name")
]
AliasPath = Annotated[
    str,
    Path(pattern=NAME_PATTERN, max_length=NAME_MAX, description="an alias, e.g. `production`"),
]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="a version number")]

NAME_MISSING = {404: f"registered model {EXAMPLE_NAME!r} does not exist"}
NAME_PROBLEM = "path.name: String should match pattern '" + NAME_PATTERN + "'"
ALIAS_MISSING = {404: f"registered model {EXAMPLE_NAME!r} has no alias 'production'"}
MODEL_HEADERS = {
    "X-Model-Id": {"description": "the model that answered", "schema": {"type": "string"}},
    "X-Model-Version": {
        "description": "its version under the registered model",
        "schema": {"type": "integer"},
    },
}


@router.post(
    "",
    status_code=201,
    summary="Create a registered model (a name for versions of models)",
    responses={
        201: json_answer(
            {**EXAMPLE_REGISTERED_MODEL, "latest_version": None, "aliases": {}, "versions": []},
            "Created",
        ),
        **problem_responses(
            409,
            422,
            503,
            details={
                409: f"registered model {EXAMPLE_NAME!r} already exists",
                422: "name: String should match pattern '" + NAME_PATTERN + "'",
            },
        ),
    },
)
def create_registered_model(
    model_in: RegisteredModelCreate, session: WriteSessionDep, response: Response
) -> RegisteredModelPublic:
    """Create an empty registered model; its name must be new."""
    row = registry.create_registered_model(session=session, model_in=model_in)
    response.headers["Location"] = f"/v1/registered-models/{row.name}"
    return registry.registered_model_public(session=session, row=row, with_versions=True)


@router.get(
    "",
    summary="List registered models, newest first",
    responses={
        200: json_answer(
            {"data": [{**EXAMPLE_REGISTERED_MODEL, "versions": None}], "next_cursor": None},
            "A page of registered models (their versions left out: null)",
        ),
        **problem_responses(422, 503, details={422: LIMIT_PROBLEM}),
    },
)
def list_registered_models(session: SessionDep, page: PageDep) -> RegisteredModelsPublic:
    """One page of registered models with their aliases; follow `next_cursor`."""
    data, next_cursor = registry.list_registered_models(
        session=session, limit=page.limit, cursor=page.cursor
    )
    return RegisteredModelsPublic(data=data, next_cursor=next_cursor)


@router.get(
    "/{name}",
    summary="A registered model with its versions and aliases",
    responses={
        200: json_answer(EXAMPLE_REGISTERED_MODEL, "The registered model"),
        **problem_responses(404, 422, 503, details={**NAME_MISSING, 422: NAME_PROBLEM}),
    },
)
def get_registered_model(name: NamePath, session: SessionDep) -> RegisteredModelPublic:
    """The registered model, every version newest first, and its aliases."""
    row = registry.get_registered_model(session=session, name=name)
    return registry.registered_model_public(session=session, row=row, with_versions=True)


@router.post(
    "/{name}/versions",
    status_code=201,
    summary="Register a fitted model as the next version",
    responses={
        201: json_answer({**EXAMPLE_VERSION, "aliases": []}, "Registered: its `version` number"),
        **problem_responses(
            404,
            422,
            503,
            details={**NAME_MISSING, 422: f"model_id: model {EXAMPLE_MODEL_ID!r} does not exist"},
        ),
    },
)
def create_model_version(
    name: NamePath, version_in: ModelVersionCreate, session: WriteSessionDep, response: Response
) -> ModelVersionPublic:
    """Register `model_id` as version (highest so far + 1); numbers are never reused."""
    version = registry.register_version(session=session, name=name, version_in=version_in)
    response.headers["Location"] = f"/v1/registered-models/{name}/versions/{version.version}"
    return version


@router.get(
    "/{name}/versions/{version}",
    summary="One version of a registered model",
    responses={
        200: json_answer(EXAMPLE_VERSION, "The version, its model and the aliases pointing at it"),
        **problem_responses(
            404,
            422,
            503,
            details={404: f"registered model {EXAMPLE_NAME!r} has no version 7", 422: NAME_PROBLEM},
        ),
    },
)
def get_model_version(
    name: NamePath, version: VersionPath, session: SessionDep
) -> ModelVersionPublic:
    """The version's model id, who registered it and when."""
    return registry.get_version(session=session, name=name, version=version)


@router.put(
    "/{name}/aliases/{alias}",
    summary="Point an alias at a version (create or move it, atomically)",
    responses={
        200: json_answer(EXAMPLE_ALIAS, "The alias as it now stands, with its moves"),
        **problem_responses(
            404,
            422,
            503,
            details={
                **NAME_MISSING,
                422: f"version: registered model {EXAMPLE_NAME!r} has no version 7",
            },
        ),
    },
)
def set_alias(
    name: NamePath,
    alias: AliasPath,
    alias_in: Annotated[AliasSet, Body()],
    session: WriteSessionDep,
) -> AliasPublic:
    """Set or move the alias; every process predicts with the new version on its next request."""
    return registry.set_alias(session=session, name=name, alias=alias, version=alias_in.version)


@router.get(
    "/{name}/aliases/{alias}",
    summary="An alias, its version and model, and who moved it when",
    responses={
        200: json_answer(EXAMPLE_ALIAS, "The alias and its moves, newest first"),
        **problem_responses(404, 422, 503, details={**ALIAS_MISSING, 422: NAME_PROBLEM}),
    },
)
def get_alias(name: NamePath, alias: AliasPath, session: SessionDep) -> AliasPublic:
    """The alias with its history of moves (at most the latest 100)."""
    return registry.get_alias(session=session, name=name, alias=alias)


@router.delete(
    "/{name}/aliases/{alias}",
    status_code=204,
    response_class=Response,
    summary="Delete an alias (its move history stays)",
    responses={
        204: {"description": "Deleted; the version's model may now be deleted"},
        **problem_responses(404, 422, 503, details={**ALIAS_MISSING, 422: NAME_PROBLEM}),
    },
)
def delete_alias(name: NamePath, alias: AliasPath, session: WriteSessionDep) -> Response:
    """Remove the alias; the deletion is recorded in its history."""
    registry.delete_alias(session=session, name=name, alias=alias)
    return Response(status_code=204)


EXAMPLE_PREDICTIONS = {
    "model_id": EXAMPLE_MODEL_ID,
    "classes": [0, 1],
    "predictions": [{"label": 1, "probabilities": {"0": 0.03, "1": 0.97}}],
}
PREDICTION_EXAMPLES = {
    "rows": {
        "summary": "Rows of numbers, in feature_names order",
        "value": {"rows": [[14.1, 19.3]]},
    },
    "records": {
        "summary": "Records keyed by feature name",
        "value": {"records": [{"mean texture": 19.3, "mean radius": 14.1}]},
    },
}


@router.post(
    "/{name}/aliases/{alias}/predictions",
    summary="Predict with the model an alias points at",
    description="The body and the answer are those of `POST /v1/models/{id}/predictions` "
    "(rows, records, or dataset_id for a CSV). The alias is resolved from the database on "
    "every request, so a move is seen at once by every API process. The headers "
    "`X-Model-Id` and `X-Model-Version` (and the body's `model_id`) say which model answered.",
    response_model=PredictionResponse,
    responses={
        200: {
            "description": "JSON predictions (rows, records) or a CSV (dataset_id)",
            "headers": MODEL_HEADERS,
            "content": {
                "application/json": {"example": EXAMPLE_PREDICTIONS},
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "row,label,predicted,p_0,p_1\n0,0,0,0.9981,0.0019\n",
                },
            },
        },
        **problem_responses(
            404,
            413,
            422,
            503,
            details={**ALIAS_MISSING, 422: "rows.0.0: Input should be a valid number"},
        ),
    },
)
async def create_alias_predictions(
    name: NamePath,
    alias: AliasPath,
    database: DatabaseDep,
    cache: ModelCacheDep,
    settings: SettingsDep,
    prediction_in: Annotated[PredictionRequest, Body(openapi_examples=PREDICTION_EXAMPLES)],
    response: Response,
) -> Any:
    """Predictions from the model the alias points at now; the same input as by model id."""
    resolved = await predictions.resolve(database=database, name=name, alias=alias)
    if prediction_in.dataset_id is not None and (
        prediction_in.rows is None and prediction_in.records is None
    ):
        chunks = await predictions.predict_dataset(
            database=database, cache=cache, resolved=resolved, dataset_id=prediction_in.dataset_id
        )
        filename = f"predictions-{name}-{alias}-v{resolved.version}-{prediction_in.dataset_id}.csv"
        return StreamingResponse(
            chunks,
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                **_model_headers(resolved),
            },
        )
    answer = await predictions.predict(
        database=database,
        cache=cache,
        resolved=resolved,
        request=prediction_in,
        max_rows=settings.max_prediction_rows,
    )
    response.headers.update(_model_headers(resolved))
    return answer


def _model_headers(resolved: predictions.Resolved) -> dict[str, str]:
    return {"X-Model-Id": resolved.model_id, "X-Model-Version": str(resolved.version)}
