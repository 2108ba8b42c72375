"""The shapes of the API's bodies that the CLI reads (TypedDicts: plain dicts at run time).

Only the fields the commands use are named; `--json` prints the server's body whole.
"""

from typing import Any, NotRequired, TypedDict


class Progress(TypedDict):
    epoch: int
    epochs: int
    percent: float
    train_loss: float | None
    val_loss: float | None
    train_accuracy: NotRequired[float | None]  # services from before accuracy in progress
    val_accuracy: NotRequired[float | None]
    best_epoch: int | None
    elapsed_seconds: float
    remaining_seconds: float | None


class Job(TypedDict):
    id: str
    status: str | None  # None only in the `end` event of a job deleted while followed
    dataset_id: str | None
    model: dict[str, Any]
    training: dict[str, Any]
    progress: Progress
    stop_reason: str | None
    error: str | None
    model_id: str | None
    created_at: str
    warm_start: NotRequired[dict[str, Any] | None]  # {"model_id": ...}: the model it fine-tunes


class HistoryPoint(TypedDict):
    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    grad_norm: float | None
    seconds: float | None


class History(TypedDict):
    job_id: str
    points: list[HistoryPoint]
    next_since_epoch: int | None


class Column(TypedDict, total=False):
    name: str
    type: str
    role: str  # feature, label or ignored (left out of training)
    kind: str  # numeric or categorical (datasets from before issue 12 have none)
    missing: int
    distinct: int | None
    levels: list[str] | None
    top_levels: list[dict[str, Any]] | None  # [{"level", "count"}], most frequent first
    min: float | None
    max: float | None
    mean: float | None
    warning: str | None


class Dataset(TypedDict):
    id: str
    name: str
    rows: int
    features: list[str]
    label: str
    label_type: str
    classes: list[Any]
    class_counts: dict[str, int]
    schema: list[Column]  # every column of the file, in order
    warnings: list[str]
    sha256: str
    format: str
    size_bytes: int
    created_at: str


class Model(TypedDict):
    id: str
    job_id: str
    dataset_id: str | None
    type: str
    model: dict[str, Any]
    training: dict[str, Any]
    classes: list[Any]
    feature_names: list[str]
    metrics: dict[str, Any]
    created_at: str
    parent_model_id: NotRequired[str | None]  # a fine-tuned model's parent (warm start)
    lineage: NotRequired[list[str]]  # its ancestors, parent first


class Trial(TypedDict):
    rank: int
    job_id: str
    status: str
    trial: dict[str, Any]
    best_val_loss: float | None
    best_epoch: int | None
    final_train_loss: float | None
    model_id: str | None


class Sweep(TypedDict):
    id: str
    status: str
    dataset_id: str | None
    model: dict[str, Any]
    training: dict[str, Any]
    search: dict[str, Any]
    counts: dict[str, int]
    created_at: str
    leaderboard: NotRequired[list[Trial]]  # GET /v1/sweeps/{id}; listings leave it out


class Prediction(TypedDict):
    label: Any
    probabilities: dict[str, float]


class Predictions(TypedDict):
    model_id: str
    classes: list[Any]
    predictions: list[Prediction]


class Page(TypedDict):
    data: list[Any]
    next_cursor: str | None


class FieldError(TypedDict):
    field: str
    message: str


class Problem(TypedDict):
    title: str
    status: int
    detail: str
    errors: NotRequired[list[FieldError]]
