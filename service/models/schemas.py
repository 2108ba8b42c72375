"""Schemas of /v1/models: the fitted model out, prediction requests in, predictions out."""

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from service.core.bounds import ID_PATTERN, documented
from service.jobs.specs import (
    EXAMPLE_MODEL_SPEC,
    EXAMPLE_TRAINING_SPEC,
    ModelSpecPublic,
    ModelType,
    TrainingSpecPublic,
)
from service.models.evaluation_schemas import EXAMPLE_EVALUATION, Label, ModelEvaluation
from service.models.metrics_schemas import ModelMetrics

# A feature value: a JSON number, finite (JSON has no NaN or infinity, but `1e400` parses
# as infinity), a string or a boolean (a categorical column's level), or null (missing).
# Whether it fits its column is the column's to say (engine.columns.code_records).
MAX_CELL_TEXT = 1000  # characters of a level sent in a prediction


def _cell(value: Any) -> Any:
    """One value of a row or record, checked as one type: a union's per-member errors
    would say the same thing three times."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise PydanticCustomError("finite_number", "Input should be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_CELL_TEXT:
            raise PydanticCustomError(
                "string_too_long", f"Input should have at most {MAX_CELL_TEXT} characters"
            )
        return value
    raise PydanticCustomError("cell_type", "Input should be a number, text, a boolean or null")


Cell = Annotated[
    Any,
    PlainValidator(_cell),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "maxLength": MAX_CELL_TEXT},
                {"type": "boolean"},
                {"type": "null"},
            ],
            "description": "a number, a categorical column's level (text or boolean), "
            "or null for a missing cell",
        }
    ),
]


class ModelDiagnostics(BaseModel):
    """The engine's per-fit diagnostics."""

    gradient_norms: dict[str, float | None] = Field(
        default_factory=dict, description="||dJ/dW|| per parameter array at the last epoch"
    )
    identical_hidden_units: int | None = Field(
        default=None,
        description="hidden units sharing (W1 row, b1, W2 column) with another: "
        "all of them after a zero initialization (two_layer_network only)",
    )
    distinct_hidden_units: int | None = None
    dead_unit_fraction: float | None = Field(
        default=None, description="ReLU units never active on the training split"
    )
    warnings: list[str] = Field(default_factory=list)


class ColumnEncodingPublic(BaseModel):
    """How one input column is encoded: numeric (filled, standardized) or one-hot."""

    name: str
    kind: Literal["numeric", "categorical"]
    encoding: Literal["numeric", "one_hot"]
    fill_value: float | None = Field(
        default=None, description="numeric: what a missing cell becomes (before scaling)"
    )
    missing_indicator: bool | None = Field(
        default=None, description="numeric: a 0/1 feature `name=(missing)` follows"
    )
    levels: list[str] | None = Field(
        default=None, description="categorical: the levels with a feature each, in order"
    )
    infrequent_levels: list[str] | None = Field(
        default=None, description="categorical: training levels sharing `name=(infrequent)`"
    )
    missing_level: bool | None = Field(
        default=None, description="categorical: missing cells have a feature `name=(missing)`"
    )
    outputs: list[str] = Field(
        description="the features it becomes, in the network's input order; any other "
        "level (never seen in training) is all zeros"
    )


class ModelLinks(BaseModel):
    self: str
    download: str
    predictions: str
    job: str
    dataset: str | None = Field(description="null once the dataset was deleted")
    parent: str | None = Field(default=None, description="the model this one fine-tunes")


# The example model keeps its last epoch (restore_best is off by default).
FINAL_EXAMPLE = dict(train_loss=0.281, val_loss=0.297, train_accuracy=0.884, val_accuracy=0.868)
EXAMPLE_MODEL: dict[str, Any] = {
    "id": "5b0c3c1e9d0a4f5e8a7b6c5d4e3f2a1b",
    "job_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "dataset_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "type": "two_layer_network",
    "model": {**EXAMPLE_MODEL_SPEC, "hidden_units": 2},
    "training": EXAMPLE_TRAINING_SPEC,
    "classes": [0, 1],
    "feature_names": ["mean radius", "mean texture"],
    "n_features": 2,
    "columns": [
        {
            "name": name,
            "kind": "numeric",
            "encoding": "numeric",
            "fill_value": fill,
            "missing_indicator": False,
            "outputs": [name],
        }
        for name, fill in (("mean radius", 14.13), ("mean texture", 19.29))
    ],
    "ignored_columns": [],
    "metrics": {
        "stop_reason": "early_stopped",
        "message": "no improvement in val_loss for 10 epochs",
        "epochs_run": 84,
        "best_epoch": 74,
        "n_train": 455,
        "n_validation": 114,
        "model_epoch": 84,
        "model_parameters": "last",
        **{f"model_{name}": value for name, value in FINAL_EXAMPLE.items()},
        **{f"final_{name}": value for name, value in FINAL_EXAMPLE.items()},
        "best_train_loss": 0.283,
        "best_val_loss": 0.295,
        "best_train_accuracy": 0.886,
        "best_val_accuracy": 0.877,
    },
    "evaluation": EXAMPLE_EVALUATION,
    "diagnostics": {
        "gradient_norms": {"W1": 0.0021, "b1": 0.0004, "W2": 0.0031, "b2": 0.0007},
        "identical_hidden_units": 0,
        "distinct_hidden_units": 2,
        "dead_unit_fraction": None,
        "warnings": [],
    },
    "parameters": {
        "W1": [[-1.21, -0.43], [0.87, 0.35]],
        "b1": [[0.12], [-0.09]],
        "W2": [[-1.93, 1.64]],
        "b2": [[0.41]],
    },
    "parameter_shapes": {"W1": [2, 2], "b1": [2, 1], "W2": [1, 2], "b2": [1, 1]},
    "dtype": "float64",
    "created_at": "2026-11-27T10:15:00Z",
    "parent_model_id": None,
    "lineage": [],
    "links": {
        "self": "/v1/models/5b0c3c1e9d0a4f5e8a7b6c5d4e3f2a1b",
        "download": "/v1/models/5b0c3c1e9d0a4f5e8a7b6c5d4e3f2a1b/download",
        "predictions": "/v1/models/5b0c3c1e9d0a4f5e8a7b6c5d4e3f2a1b/predictions",
        "job": "/v1/jobs/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "dataset": "/v1/datasets/a1b2c3d4e5f60718293a4b5c6d7e8f90",
    },
}


class ModelPublic(BaseModel):
    """A fitted model: what was trained, how it went, and its parameters in the note's shapes."""

    id: str
    job_id: str
    dataset_id: str | None = Field(description="null once the dataset was deleted")
    type: ModelType = Field(description="logistic_regression or two_layer_network")
    model: ModelSpecPublic = Field(description="the complete model spec it was trained with")
    training: TrainingSpecPublic = Field(description="the complete training spec")
    classes: list[Label] = Field(description="label values, sorted: the probability order")
    feature_names: list[str] = Field(
        description="the input columns, in the order rows take them (records: their keys)"
    )
    n_features: int = Field(description="the network's inputs n_x: features after encoding")
    columns: list[ColumnEncodingPublic] = Field(
        description="how each input column became features, fitted on the training split"
    )
    ignored_columns: list[str] = Field(
        description="columns of the training data the model does not read (left out)"
    )
    metrics: ModelMetrics
    evaluation: ModelEvaluation | None = Field(
        description="accuracy, log-loss, ROC AUC, per-class scores, the confusion matrix and "
        "curves on its validation split (or training split: `split` says which); the curves "
        "are null in listings; null for models trained before evaluations were stored"
    )
    diagnostics: ModelDiagnostics
    parameters: dict[str, list[Any]] | None = Field(
        description="each parameter as nested lists in the note's shapes: W1 (n_h, n_x), "
        "b1 (n_h, 1), W2 (n_y, n_h), b2 (n_y, 1) for the network; w (n_x, n_y), b (n_y, 1) "
        "for logistic regression (n_y = 1 for two classes, K otherwise). The weights act on "
        "standardized features (the .npz download holds the standardization). null in "
        "listings and with `include_parameters=false`"
    )
    parameter_shapes: dict[str, list[int]]
    dtype: str = Field(description="float64 or float32")
    created_at: datetime
    parent_model_id: str | None = Field(
        default=None, description="the model it was fine-tuned from (warm start); null: none"
    )
    lineage: list[str] = Field(
        default_factory=list,
        description="its ancestors, parent first, back to a model trained from fresh "
        "weights (or to one whose parent was deleted); empty: none",
    )
    links: ModelLinks

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_MODEL]})


class ModelsPublic(BaseModel):
    """A page of models, newest first. Listings leave `parameters` out (null) to stay small."""

    data: list[ModelPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null at end")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"data": [{**EXAMPLE_MODEL, "parameters": None}], "next_cursor": None}]
        }
    )


# The three inputs of a prediction request, each a shape of its own in the document.
Rows = Annotated[
    list[Annotated[list[Cell], documented(minItems=1)]],
    documented(minItems=1),
    Field(
        description="rows, each with one value per input column in `feature_names` order: "
        "numbers, a categorical column's level (text or boolean), or null for a missing "
        "cell; at most BACKPROP_MAX_PREDICTION_ROWS"
    ),
]
Records = Annotated[
    list[Annotated[dict[str, Cell], documented(minProperties=1)]],
    documented(minItems=1),
    Field(
        description="rows as objects keyed by input column (any key order; every column "
        "exactly once, null for a missing cell; the model's ignored columns may come "
        "along); at most BACKPROP_MAX_PREDICTION_ROWS"
    ),
]
DatasetId = Annotated[
    str,
    documented(pattern=ID_PATTERN),
    Field(description="a stored dataset with the model's feature columns: answers text/csv"),
]
PREDICTION_EXAMPLES_AS_BODIES: list[dict[str, Any]] = [
    {"rows": [[14.1, 19.3]]},
    {"records": [{"mean radius": 14.1, "mean texture": 19.3}]},
    {"dataset_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"},
]


class PredictionRequest(BaseModel):
    """Exactly one of `rows`, `records` or `dataset_id`.

    `rows` and `records` answer JSON predictions; `dataset_id` answers a CSV of
    predictions for every row of a stored dataset. The service reads the body with
    this model, so that a body with none or two of them gets one clear 422 (service.models.service);
    the document shows it as PREDICTION_BODY, a `oneOf` of the three shapes.
    """

    rows: Rows | None = None
    records: Records | None = None
    dataset_id: DatasetId | None = None

    model_config = ConfigDict(extra="forbid")

    @field_validator("rows", "records", "dataset_id", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Given as null is not left out: the document has no null here.
        if value is None:
            raise PydanticCustomError("null", "must not be null; leave the field out")
        return value


class PredictRows(BaseModel):
    """Predict rows given as lists of numbers: answers JSON."""

    model_config = ConfigDict(extra="forbid")

    rows: Rows


class PredictRecords(BaseModel):
    """Predict rows given as objects keyed by feature name: answers JSON."""

    model_config = ConfigDict(extra="forbid")

    records: Records


class PredictDataset(BaseModel):
    """Predict every row of a stored dataset: answers a CSV."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: DatasetId


# The body as the document shows it (service.openapi puts it in PredictionRequest's place).
PREDICTION_BODY: TypeAdapter[PredictRows | PredictRecords | PredictDataset] = TypeAdapter(
    Annotated[
        PredictRows | PredictRecords | PredictDataset,
        Field(
            description="Exactly one of `rows`, `records` or `dataset_id`",
            json_schema_extra={"examples": PREDICTION_EXAMPLES_AS_BODIES},
        ),
    ]
)


class Prediction(BaseModel):
    label: Label = Field(description="the most probable class, in the dataset's own values")
    probabilities: dict[str, float] = Field(description="P(class | row), keyed by str(class)")


class PredictionResponse(BaseModel):
    model_id: str
    classes: list[Label]
    predictions: list[Prediction] = Field(description="one per request row, in order")
    warnings: list[str] = Field(
        default_factory=list,
        description="e.g. levels never seen in training (encoded as all zeros), per column",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_id": "5b0c3c1e9d0a4f5e8a7b6c5d4e3f2a1b",
                    "classes": [0, 1],
                    "predictions": [{"label": 1, "probabilities": {"0": 0.03, "1": 0.97}}],
                    "warnings": [],
                }
            ]
        }
    )
