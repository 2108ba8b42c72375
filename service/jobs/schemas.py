"""Jobs: what to train (JobCreate), a job as clients see it (JobPublic), its loss history.

The allowed names (model types, activations, initializations, optimizers,
dtypes) and every default come from the engine's own tables and dataclasses,
so the API cannot drift from what the engine trains. Input models reject
unknown fields; the engine's ``validate()`` then checks ranges (see
service.jobs.service.engine_specs), so a bound lives in one place.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from service.core.bounds import ID_PATTERN, documented
from service.core.states import JOB_STATES
from service.jobs.specs import (
    EXAMPLE_MODEL_SPEC,
    EXAMPLE_TRAINING_SPEC,
    ModelSpecIn,
    ModelSpecPublic,
    TrainingSpecIn,
    TrainingSpecPublic,
    default_model,
)

JobStatus = Literal[JOB_STATES]  # type: ignore[valid-type]


EXAMPLE_DATASET_ID = "3f2a9c1e8b7d4e6fa0c5d2b1e9f8a7c6"
EXAMPLE_JOB_ID = "9b1d4e2f7a6c4d8e8f0a1b2c3d4e5f60"
EXAMPLE_MODEL_ID = "c0ffee1234abcd5678ef90123456789a"


# The request of issue 3, as written there.
CANONICAL_REQUEST: dict[str, Any] = {
    "dataset_id": EXAMPLE_DATASET_ID,
    "model": {
        "type": "two_layer_network",
        "hidden_units": 16,
        "activation": "tanh",
        "init": "random",
        "init_scale": 0.01,
    },
    "training": {
        "optimizer": "gd",
        "learning_rate": 0.5,
        "epochs": 200,
        "batch_size": None,
        "l2": 0.0,
        "validation_fraction": 0.2,
        "early_stopping": {"patience": 10, "min_delta": 0.0},
        "seed": 0,
        "dtype": "float64",
    },
}


class WarmStart(BaseModel):
    """Fine-tuning: start from a fitted model's parameters and preprocessing."""

    model_config = ConfigDict(extra="forbid")

    model_id: Annotated[str, documented(pattern=ID_PATTERN)] = Field(
        description="The parent model (from GET /v1/models): same model type and "
        "architecture, a dataset with its input columns (same kinds), label column and "
        "classes. Its parameters are the start, its fitted preprocessing is used as it is "
        "(not refitted), the optimizer starts fresh"
    )


class JobCreate(BaseModel):
    """A training job: a dataset, a model spec and a training spec (both optional)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [CANONICAL_REQUEST, {"dataset_id": EXAMPLE_DATASET_ID}]},
    )

    dataset_id: Annotated[str, documented(pattern=ID_PATTERN)] = Field(
        description="The dataset to train on (from POST /v1/datasets)"
    )
    model: ModelSpecIn = Field(
        default_factory=default_model,
        description="What to train (by `type`); none: a logistic regression with the "
        "defaults, or with `warm_start` the parent's model spec",
    )
    training: TrainingSpecIn = Field(default_factory=TrainingSpecIn)
    warm_start: WarmStart | None = Field(
        default=None,
        description="Fine-tune an existing model (null: fresh weights). The job takes the "
        "parent's preprocessing: `training.preprocessing` must be left out or be the "
        "parent's own (else 422)",
    )


# Bodies for the OpenAPI page's "try it out" menu.
CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "canonical": {
        "summary": "The note's network, trained by plain gradient descent",
        "value": CANONICAL_REQUEST,
    },
    "minimal": {
        "summary": "Only a dataset: a logistic regression with the engine's defaults",
        "value": {"dataset_id": EXAMPLE_DATASET_ID},
    },
    "adam_minibatch": {
        "summary": "A ReLU network with Adam on mini-batches, no early stopping",
        "value": {
            "dataset_id": EXAMPLE_DATASET_ID,
            "model": {"type": "two_layer_network", "hidden_units": 64, "activation": "relu"},
            "training": {
                "optimizer": "adam",
                "epochs": 100,
                "batch_size": 64,
                "early_stopping": None,
                "l2": 0.001,
                "seed": 7,
            },
        },
    },
    "fine_tune": {
        "summary": "Fine-tune a fitted model on new rows of the same columns",
        "value": {
            "dataset_id": EXAMPLE_DATASET_ID,
            "model": {"type": "logistic_regression"},
            "training": {"epochs": 50},
            "warm_start": {"model_id": EXAMPLE_MODEL_ID},
        },
    },
}


class Progress(BaseModel):
    epoch: int = Field(description="Epochs finished so far")
    epochs: int = Field(description="Epochs asked for (training may stop earlier)")
    percent: float = Field(description="epoch / epochs in percent; 100 once succeeded")
    train_loss: float | None = Field(description="Latest training loss; null if diverged")
    val_loss: float | None = Field(description="Latest validation loss; null without one")
    train_accuracy: float | None = Field(
        default=None, description="Latest training accuracy (fraction of rows right)"
    )
    val_accuracy: float | None = Field(
        default=None, description="Latest validation accuracy; null without a validation split"
    )
    best_epoch: int | None = Field(description="Epoch of the lowest monitored loss so far")
    elapsed_seconds: float = Field(description="Training time so far")
    remaining_seconds: float | None = Field(
        description="Estimated from the time per epoch so far; 0 once finished, "
        "null while unknown (queued, or no epoch yet)"
    )


class JobLinks(BaseModel):
    self: str
    history: str
    events: str
    cancel: str
    model: str | None = Field(
        description="The fitted model, once the job succeeded (or was cancelled after an epoch)"
    )


JOB_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_JOB_ID,
    "status": "running",
    "dataset_id": EXAMPLE_DATASET_ID,
    "model": EXAMPLE_MODEL_SPEC,
    "training": EXAMPLE_TRAINING_SPEC,
    "progress": {
        "epoch": 120,
        "epochs": 200,
        "percent": 60.0,
        "train_loss": 0.0731,
        "val_loss": 0.0912,
        "train_accuracy": 0.982,
        "val_accuracy": 0.974,
        "best_epoch": 118,
        "elapsed_seconds": 2.4,
        "remaining_seconds": 1.6,
    },
    "stop_reason": None,
    "error": None,
    "error_code": None,
    "attempts": 1,
    "max_attempts": 3,
    "model_id": None,
    "created_at": "2025-05-01T09:30:00.120000Z",
    "started_at": "2025-05-01T09:30:00.310000Z",
    "finished_at": None,
    "heartbeat_at": "2025-05-01T09:30:02.500000Z",
    "sweep_id": None,
    "trial": None,
    "warnings": [],
    "warm_start": None,
    "parent_model_id": None,
    "links": {
        "self": f"/v1/jobs/{EXAMPLE_JOB_ID}",
        "history": f"/v1/jobs/{EXAMPLE_JOB_ID}/history",
        "events": f"/v1/jobs/{EXAMPLE_JOB_ID}/events",
        "cancel": f"/v1/jobs/{EXAMPLE_JOB_ID}/cancel",
        "model": None,
    },
}

QUEUED_JOB_EXAMPLE: dict[str, Any] = {
    **JOB_EXAMPLE,
    "status": "queued",
    "progress": {
        "epoch": 0,
        "epochs": 200,
        "percent": 0.0,
        "train_loss": None,
        "val_loss": None,
        "best_epoch": None,
        "elapsed_seconds": 0.0,
        "remaining_seconds": None,
    },
    "attempts": 0,
    "started_at": None,
    "heartbeat_at": None,
}

SUCCEEDED_JOB_EXAMPLE: dict[str, Any] = {
    **JOB_EXAMPLE,
    "status": "succeeded",
    "progress": {
        "epoch": 163,
        "epochs": 200,
        "percent": 100.0,
        "train_loss": 0.0604,
        "val_loss": 0.0871,
        "train_accuracy": 0.986,
        "val_accuracy": 0.974,
        "best_epoch": 153,
        "elapsed_seconds": 3.3,
        "remaining_seconds": 0.0,
    },
    "stop_reason": "early_stopped",
    "model_id": EXAMPLE_MODEL_ID,
    "finished_at": "2025-05-01T09:30:03.650000Z",
    "links": {**JOB_EXAMPLE["links"], "model": f"/v1/models/{EXAMPLE_MODEL_ID}"},
}


class JobPublic(BaseModel):
    """A job as clients see it: its specs, state, progress and links."""

    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    status: JobStatus
    dataset_id: str | None = Field(description="null once the dataset was deleted")
    model: ModelSpecPublic
    training: TrainingSpecPublic
    progress: Progress
    stop_reason: str | None = Field(
        description="Why training ended: converged, early_stopped, max_epochs, time_limit, "
        "cancelled, diverged"
    )
    error: str | None = Field(description="What went wrong, for people (failed jobs)")
    error_code: str | None = Field(description="What went wrong, for programs, e.g. worker_lost")
    attempts: int = Field(description="Claims by workers so far")
    max_attempts: int
    model_id: str | None = Field(
        description="The fitted model, once the job succeeded (or was cancelled after an epoch: "
        "its best epoch's parameters)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = Field(description="The running worker's latest heartbeat")
    sweep_id: str | None = Field(description="The sweep this job is a trial of; null: none")
    warnings: list[str] = Field(
        default_factory=list,
        description="What the job was told about its data, e.g. columns the upload left out "
        "of training (unique per row: names or ids)",
    )
    trial: dict[str, Any] | None = Field(
        description="A sweep's trial: the values it set, by dimension, e.g. "
        '`{"learning_rate": 0.1, "activation": "relu"}`; null outside sweeps'
    )
    warm_start: WarmStart | None = Field(
        default=None,
        description="The model this job fine-tunes, as the request named it (kept once "
        "that model is deleted); null: trained from fresh weights",
    )
    parent_model_id: str | None = Field(
        default=None, description="The parent model while it exists; null otherwise"
    )
    links: JobLinks


class JobsPublic(BaseModel):
    """A page of jobs, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"data": [JOB_EXAMPLE], "next_cursor": "WyIyMDI1LTA1LTAxVDA5OjMw"}]
        }
    )

    data: list[JobPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class HistoryPoint(BaseModel):
    """One epoch of training, as the engine measured it (null: not finite, or no validation)."""

    epoch: int
    train_loss: float | None
    val_loss: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    grad_norm: float | None
    seconds: float | None = Field(description="Wall time of this epoch")


HISTORY_FIELDS = tuple(HistoryPoint.model_fields)

HISTORY_EXAMPLE: dict[str, Any] = {
    "job_id": EXAMPLE_JOB_ID,
    "points": [
        {
            "epoch": 1,
            "train_loss": 0.6931,
            "val_loss": 0.6929,
            "train_accuracy": 0.627,
            "val_accuracy": 0.628,
            "grad_norm": 0.2143,
            "seconds": 0.021,
        },
        {
            "epoch": 2,
            "train_loss": 0.6874,
            "val_loss": 0.6870,
            "train_accuracy": 0.901,
            "val_accuracy": 0.894,
            "grad_norm": 0.2101,
            "seconds": 0.019,
        },
    ],
    "next_since_epoch": 2,
}

HISTORY_CSV_EXAMPLE = (
    "epoch,train_loss,val_loss,train_accuracy,val_accuracy,grad_norm,seconds\r\n"
    "1,0.6931,0.6929,0.627,0.628,0.2143,0.021\r\n"
    "2,0.6874,0.687,0.901,0.894,0.2101,0.019\r\n"
)


class HistoryPublic(BaseModel):
    """A job's loss history after ``since_epoch``, perhaps down-sampled."""

    model_config = ConfigDict(json_schema_extra={"examples": [HISTORY_EXAMPLE]})

    job_id: str
    points: list[HistoryPoint]
    next_since_epoch: int | None = Field(
        description="Pass as `since_epoch` to get what comes next; null once the job has "
        "finished and every point up to its end was returned"
    )
