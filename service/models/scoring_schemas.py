"""How batch predictions and evaluations of a stored dataset read in the API."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.models.evaluation_schemas import EXAMPLE_EVALUATION, ModelEvaluation

TaskStatus = Literal["queued", "running", "succeeded", "failed"]
EXAMPLE_MODEL_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
EXAMPLE_DATASET_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
EXAMPLE_TASK_ID = "5c4b3a2918f7e6d5c4b3a2918f7e6d5c"


class BatchPredictionCreate(BaseModel):
    """Score every row of a stored dataset in a worker."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"dataset_id": EXAMPLE_DATASET_ID}]}
    )

    dataset_id: str = Field(
        description="a stored dataset with the model's feature columns (any order)",
        examples=[EXAMPLE_DATASET_ID],
    )


class EvaluationCreate(BaseModel):
    """Measure the model on a stored, labelled dataset."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"dataset_id": EXAMPLE_DATASET_ID}]}
    )

    dataset_id: str = Field(
        description="a stored dataset with the model's feature columns and its label column, "
        "whose labels are classes the model knows",
        examples=[EXAMPLE_DATASET_ID],
    )


class DatasetEvaluation(ModelEvaluation):
    """The model's metrics on every row of a dataset (split `dataset`), computed as the
    model's stored evaluation is (engine.metrics: scikit-learn's figures)."""

    split: Literal["dataset"] = Field(description="every row of the dataset named")  # type: ignore[assignment]
    model_id: str
    dataset_id: str


class TaskLinks(BaseModel):
    self: str
    result: str | None = Field(default=None, description="the result's download (batch only)")


class ScoringTaskPublic(BaseModel):
    """A dataset being scored by a worker: its state and progress."""

    id: str
    model_id: str
    dataset_id: str | None = Field(description="null once the dataset was deleted")
    status: TaskStatus
    rows_total: int = Field(description="the dataset's rows")
    rows_done: int = Field(description="rows scored so far")
    progress: float = Field(description="rows_done / rows_total, 0 to 1")
    error: str | None = Field(description="what went wrong, for people (failed tasks)")
    error_code: str | None = Field(description="what went wrong, for programs")
    attempts: int = Field(description="claims by workers so far")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: TaskLinks


class BatchPredictionPublic(ScoringTaskPublic):
    """A batch prediction: once `succeeded`, `links.result` downloads row, label and
    p_<class> for every row (?format=csv or parquet)."""


class EvaluationTaskPublic(ScoringTaskPublic):
    """An evaluation scored by a worker: `evaluation` holds the metrics once `succeeded`."""

    evaluation: DatasetEvaluation | None = Field(description="null until succeeded")


def _task_example(kind: str, status: str, **extra: Any) -> dict[str, Any]:
    done = status == "succeeded"
    path = f"/v1/models/{EXAMPLE_MODEL_ID}/{kind}/{EXAMPLE_TASK_ID}"
    return {
        "id": EXAMPLE_TASK_ID,
        "model_id": EXAMPLE_MODEL_ID,
        "dataset_id": EXAMPLE_DATASET_ID,
        "status": status,
        "rows_total": 1000000,
        "rows_done": 1000000 if done else 0,
        "progress": 1.0 if done else 0.0,
        "error": None,
        "error_code": None,
        "attempts": 1 if done else 0,
        "created_at": "2026-12-06T13:00:00Z",
        "started_at": "2026-12-06T13:00:00.05Z" if done else None,
        "finished_at": "2026-12-06T13:00:04.2Z" if done else None,
        "links": {
            "self": path,
            **({"result": f"{path}/result"} if kind == "batch-predictions" else {}),
        },
        **extra,
    }


EXAMPLE_BATCH_QUEUED = _task_example("batch-predictions", "queued")
EXAMPLE_BATCH_DONE = _task_example("batch-predictions", "succeeded")
EXAMPLE_DATASET_EVALUATION = {
    **EXAMPLE_EVALUATION,
    "split": "dataset",
    "model_id": EXAMPLE_MODEL_ID,
    "dataset_id": EXAMPLE_DATASET_ID,
}
EXAMPLE_EVALUATION_QUEUED = _task_example("evaluations", "queued", evaluation=None)
EXAMPLE_EVALUATION_DONE = _task_example(
    "evaluations", "succeeded", evaluation=EXAMPLE_DATASET_EVALUATION
)
