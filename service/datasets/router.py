"""/v1/datasets: upload, list, read and delete datasets."""

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from service.core.deps import IdPath, PageDep, SessionDep, SettingsDep, WriteSessionDep
from service.core.errors import Unprocessable
from service.core.schemas import LIMIT_PROBLEM, problem_responses
from service.datasets import service as dataset_service
from service.datasets.row_slice import ROWS_MAX_LIMIT, read_row_slice
from service.datasets.schemas import (
    CANCER_FEATURES,
    DatasetPublic,
    DatasetRowsPublic,
    DatasetsPublic,
)
from service.datasets.uploads import CSV_TYPES, PARQUET_TYPES, SNIFFED_TYPE, receive_upload

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

NAME_MAX = dataset_service.TEXT_MAX

CSV_EXAMPLE = (
    ",".join([*CANCER_FEATURES[:3], "target"])
    + "\n17.99,10.38,122.8,0\n20.57,17.77,132.9,0\n13.54,14.36,87.46,1\n"
)
BINARY = {"type": "string", "format": "binary"}  # Swagger UI offers a file picker for these
# The body is read as a stream by the route itself (never held whole in memory), so
# FastAPI cannot derive its description from parameters: it is declared here.
# The form's optional `name`, `label`, `categorical` and `ignore` parts are described in
# words, not as schema properties: Swagger UI's "Try it out" would send each one pre-filled
# with "string".
UPLOAD_BODY = {
    "required": True,
    "description": (
        "The file, as a multipart/form-data part named `file` (with optional `name`, "
        "`label`, `categorical` and `ignore` parts, the same as the query parameters), or as "
        "the whole body with a CSV or Parquet Content-Type. "
        "`application/octet-stream` is read as Parquet when it starts with `PAR1`, else as CSV. "
        "CSV files are comma-separated UTF-8 with a header row; an empty cell and `NA`, "
        "`N/A`, `NaN`, `nan`, `null`, `NULL`, `None` are missing. Columns are typed at upload: "
        "numeric (integers, numbers) or categorical (strings, booleans; Parquet dictionaries)."
    ),
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {**BINARY, "description": "A CSV or Parquet file"}},
            },
            "encoding": {"file": {"contentType": ", ".join([*CSV_TYPES, *PARQUET_TYPES])}},
        },
        **{
            media_type: {"schema": {"type": "string"}, "example": CSV_EXAMPLE}
            for media_type in CSV_TYPES
        },
        **{media_type: {"schema": BINARY} for media_type in (*PARQUET_TYPES, SNIFFED_TYPE)},
    },
}

ERROR_EXAMPLES = {
    400: "the multipart body ended before its closing boundary",
    404: "dataset '3f9c2a7be41d4c0f9a55e7d1c2b8a610' does not exist",
    409: "dataset 3f9c2a7be41d4c0f9a55e7d1c2b8a610 is used by a queued or running job "
    "(8d0f5c2e9b7a4e1d8c6b3a2f1e0d9c8b); cancel it or wait for it to finish, "
    "then delete the dataset",
    413: "uploads are limited to 536,870,912 bytes (BACKPROP_MAX_UPLOAD_BYTES, "
    "max_upload_bytes) and this one is larger than that",
    415: "Content-Type 'application/json' is not supported; send multipart/form-data with a "
    'part named "file", or the file as the body with one of: text/csv, application/csv, '
    "application/vnd.apache.parquet, application/x-parquet, application/octet-stream",
    422: 'label column "species" is missing in 2 rows: rows 4, 272 (row 1 is the first data '
    "row); every row needs its label: fill them in or leave those rows out",
}
TITLES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
}


def documented_problems(
    *codes: int, examples: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """problem_responses(...) with an example body for each code (``examples`` override)."""
    responses = problem_responses(*codes)
    details = ERROR_EXAMPLES | (examples or {})
    for code in codes:
        responses[code]["content"]["application/problem+json"] = {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": {
                "type": "about:blank",
                "title": TITLES[code],
                "status": code,
                "detail": details[code],
            },
        }
    return responses


NameQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAME_MAX,
        description="The dataset's name (default: the uploaded file's name, else `dataset`)",
        examples=["cancer"],
    ),
]
# categorical= and ignore=: comma-separated column names. Both in a query string must fit
# the request line uvicorn (h11) reads, 16 KiB with every other header: past it the server
# answers a bare 400 before the app sees the request.
NAMES_MAX = 4 * 1024
CategoricalQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAMES_MAX,
        description="Columns to read as categorical, comma-separated (e.g. an integer store "
        "id): each distinct value is a level",
        examples=["store,year"],
    ),
]
IgnoreQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAMES_MAX,
        description="Columns to leave out, comma-separated: not read, not stored, not "
        "trained on (the label cannot be)",
        examples=["name"],
    ),
]
LabelQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=NAME_MAX,
        description="The label column's name (default: the last column)",
        examples=["target"],
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=DatasetPublic,
    summary="Upload a CSV or Parquet file as a dataset",
    responses={
        200: {
            "model": DatasetPublic,
            "description": "These bytes were uploaded before with the same label column: "
            "the existing dataset",
        },
        201: {
            "description": "Stored",
            "headers": {
                "Location": {"description": "/v1/datasets/{id}", "schema": {"type": "string"}}
            },
        },
        **documented_problems(400, 413, 415, 422),
    },
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def create_dataset(
    request: Request,
    response: Response,
    after_answer: BackgroundTasks,
    session: WriteSessionDep,
    settings: SettingsDep,
    name: NameQuery = None,
    label: LabelQuery = None,
    categorical: CategoricalQuery = None,
    ignore: IgnoreQuery = None,
) -> DatasetPublic:
    """Stream the file to disk, validate and store it (201), or return its earlier upload (200)."""
    # A project already at its stored bytes quota is refused before its upload is read.
    await run_in_threadpool(
        dataset_service.check_room_for_uploads,
        database=request.app.state.database,
        settings=settings,
    )
    async with receive_upload(request, max_bytes=settings.max_upload_bytes) as upload:
        # Parsing is CPU work and the session is synchronous: both run in the threadpool.
        dataset, created = await run_in_threadpool(
            dataset_service.create_dataset,
            session=session,
            upload=upload,
            name=_given_once("name", name, upload.fields),
            label=_given_once("label", label, upload.fields),
            settings=settings,
            categorical=_names(_given_once("categorical", categorical, upload.fields)),
            ignore=_names(_given_once("ignore", ignore, upload.fields)),
        )
    if created:  # SQLite: the new rows go from the WAL to the file once the client has its answer
        after_answer.add_task(request.app.state.database.checkpoint)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"{router.prefix}/{dataset.id}"
    return DatasetPublic.model_validate(dataset)


@router.get(
    "",
    summary="List datasets, newest first",
    responses=documented_problems(422, examples={422: LIMIT_PROBLEM}),
)
def list_datasets(session: SessionDep, page: PageDep) -> DatasetsPublic:
    """A page of datasets; follow `next_cursor` until it is null."""
    rows, next_cursor = dataset_service.list_datasets(
        session=session, limit=page.limit, cursor=page.cursor
    )
    return DatasetsPublic(
        data=[DatasetPublic.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.get(
    "/{dataset_id}",
    summary="A dataset's schema, rows, classes and origin",
    responses=documented_problems(404),
)
def get_dataset(session: SessionDep, dataset_id: IdPath) -> DatasetPublic:
    """The dataset `dataset_id`."""
    dataset = dataset_service.get_dataset(session=session, dataset_id=dataset_id)
    return DatasetPublic.model_validate(dataset)


@router.get(
    "/{dataset_id}/rows",
    summary="A few of a dataset's rows, as the file had them",
    responses=documented_problems(404, 422),
)
def get_dataset_rows(
    session: SessionDep,
    dataset_id: IdPath,
    offset: Annotated[int, Query(ge=0, le=2**62, description="0-based index of the first row")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=ROWS_MAX_LIMIT, description="Rows to return (fewer at the end)")
    ] = 10,
) -> DatasetRowsPublic:
    """Rows `offset` to `offset + limit - 1`: each feature's value (null where missing) and
    the label; past the last row, none. For looking at rows and filling a prediction form."""
    dataset = dataset_service.get_dataset(session=session, dataset_id=dataset_id)
    rows = read_row_slice(session, dataset, offset, limit)
    return DatasetRowsPublic(
        dataset_id=dataset.id, offset=offset, rows=rows, total_rows=dataset.rows
    )


@router.delete(
    "/{dataset_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a dataset that no queued or running job uses",
    responses={
        204: {"description": "Deleted; finished jobs and models keep their rows"},
        **documented_problems(404, 409),
    },
)
def delete_dataset(session: WriteSessionDep, dataset_id: IdPath) -> Response:
    """Delete the dataset and its stored arrays (409 while a live job uses it)."""
    dataset_service.delete_dataset(session=session, dataset_id=dataset_id)
    return Response(status_code=204)


def _given_once(name: str, query: str | None, fields: dict[str, str]) -> str | None:
    """A parameter sent as a query parameter or a multipart field (the same value if both)."""
    form = fields.get(name)
    longest = NAMES_MAX if name in ("categorical", "ignore") else NAME_MAX
    if form is not None and not 1 <= len(form) <= longest:
        raise Unprocessable(f"{name} must be 1 to {longest} characters long", field=name)
    if query is not None and form is not None and query != form:
        raise Unprocessable(
            f"{name} is given twice, as the query parameter {query!r} and the form field {form!r}",
            field=name,
        )
    return query if query is not None else form


def _names(given: str | None) -> list[str]:
    """Comma-separated column names, each trimmed (as the reader trims CSV header names)."""
    if given is None:
        return []
    return [name.strip() for name in given.split(",") if name.strip()]
