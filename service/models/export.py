"""GET /v1/models/{id}/export: a fitted model as a file another runtime runs.

``format=onnx`` is the whole model as one ONNX graph, preprocessing included
(engine.onnx_export): a numeric column's fill and missing indicator, a categorical
column's one-hot levels, standardization, the network and its output. The ``onnx``
package is an optional extra, imported when a request asks for it; without it the route
answers 501 saying how to install it. Building the graph is milliseconds of CPU; the
route is a plain def, so it runs in the threadpool, off the event loop.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

import engine
from engine.onnx_export import MISSING_PACKAGE, ExportError, OnnxUnavailable, onnx_bytes
from service.core.deps import IdPath, SessionDep
from service.core.errors import ServiceError
from service.core.schemas import problem_example, problem_responses
from service.models import service as models_service
from service.models.schemas import EXAMPLE_MODEL

router = APIRouter(prefix="/v1/models", tags=["models"])

ExportFormat = Literal["onnx"]
ExportDtype = Literal["float32", "float64"]


class ExportUnavailable(ServiceError):
    """501: this server cannot write the format (the optional package is not installed),
    or the model holds something the format cannot express."""

    status, title = 501, "Not Implemented"


EXAMPLE_ID = EXAMPLE_MODEL["id"]
EXPORT_PROBLEMS = {
    404: f"model {EXAMPLE_ID!r} does not exist",
    422: "query.format: Input should be 'onnx'",
}

EXPORT_DESCRIPTION = """
`format=onnx` (required): the whole model as one ONNX graph (opset 18, with
`ai.onnx.ml` 3), preprocessing included, that e.g. `onnxruntime` runs as it is.

**Inputs**: one per entry of the model's `feature_names`, named as the column, shape
`[N, 1]`. A numeric column is a float tensor (`dtype`), `NaN` for a missing cell. A
categorical column is a `string` tensor: each cell's level as text, exactly as the
model's `columns[].levels` list it (numbers that are categories by their names, `"7"`).
A missing cell is `""` or one of the CSV null tokens (`NA`, `N/A`, `NaN`, `nan`, `null`,
`NULL`, `None`); any other text is a level never seen in training, encoded as all zeros
as predictions encode it.

**Outputs**: `probabilities` `[N, K]` (`dtype`), columns in `classes` order; `label`
`[N]`: int64 when every class is an integer, otherwise the class as a string.

`dtype` is the graph's float type, end to end (default `float32`). A `float64` graph of
a `float64` model gives the service's probabilities to about 1e-15; a `float32` graph to
about 1e-7. The model's metadata (`metadata_props`) holds the model id, the classes,
the columns with their levels, and the missing-cell texts.
"""


@router.get(
    "/{model_id}/export",
    summary="The model as an ONNX graph, preprocessing included",
    description=EXPORT_DESCRIPTION,
    response_class=Response,
    responses={
        200: {
            "description": "The .onnx file (a serialized ONNX ModelProto)",
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "\\x08\\x08\\x12\\x10backprop-service... (ONNX protobuf)",
                }
            },
        },
        **problem_responses(404, 422, 503, details=EXPORT_PROBLEMS),
        501: {
            "description": "The server lacks the optional `onnx` package, or the model "
            "has an input column named `probabilities` or `label` (the graph's outputs)",
            "content": {
                "application/problem+json": {"example": problem_example(501, MISSING_PACKAGE)}
            },
        },
    },
)
def export_model(
    model_id: IdPath,
    session: SessionDep,
    export_format: Annotated[
        ExportFormat, Query(alias="format", description="the file format: `onnx`")
    ],
    dtype: Annotated[
        ExportDtype, Query(description="the graph's float type: `float32` or `float64`")
    ] = "float32",
) -> Response:
    """The model as a .onnx attachment named model-<id>.onnx."""
    artifact = models_service.model_artifact(session=session, model_id=model_id)
    try:
        classifier = engine.load(artifact)
    except engine.ModelFileError as error:
        # Stored by a worker, not sent by this client: a server-side fault, said plainly.
        raise ServiceError(f"model {model_id}'s stored file cannot be loaded: {error}") from error
    try:
        content = onnx_bytes(classifier, dtype=dtype, metadata={"model_id": model_id})
    except OnnxUnavailable as error:
        raise ExportUnavailable(str(error)) from None
    except ExportError as error:
        raise ExportUnavailable(f"model {model_id!r} cannot be exported to ONNX: {error}") from None
    return Response(
        content=content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="model-{model_id}.onnx"'},
    )
