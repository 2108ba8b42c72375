"""What a finished fit leaves in the database: a JSON-safe summary and the Model row."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from engine import FitResult, to_bytes
from engine.history import EpochMetrics
from service.core.json_values import finite_or_none
from service.core.tables import Job, Model


def history_values(metrics: EpochMetrics) -> dict[str, Any]:
    """The columns of a job_history row for one epoch (NaN -> NULL)."""
    return finite_or_none(metrics.to_dict())


def progress_values(last: EpochMetrics) -> dict[str, Any]:
    """A job's progress columns from its latest epoch (NaN -> NULL)."""
    return finite_or_none(
        {
            "epoch": last.epoch,
            "train_loss": last.train_loss,
            "val_loss": last.val_loss,
            "train_accuracy": last.train_accuracy,
            "val_accuracy": last.val_accuracy,
        }
    )


def fit_metrics(result: FitResult) -> dict[str, Any]:
    """Summary of a fit: stop reason, and the losses and accuracies of three epochs, named
    apart: ``model_*`` the epoch whose parameters the model holds, ``best_*`` the epoch of
    the lowest monitored loss, ``final_*`` the last epoch run."""
    best = result.history[result.best_epoch - 1] if result.best_epoch else None
    last = result.history[-1] if result.history else None
    kept = result.history[result.model_epoch - 1] if result.model_epoch else None
    restored = kept is not None and last is not None and kept.epoch != last.epoch
    return finite_or_none(
        {
            "stop_reason": result.stop_reason,
            "message": result.message,
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "model_epoch": kept.epoch if kept else None,
            "model_parameters": ("best" if restored else "last") if kept else None,
            "model_train_loss": kept.train_loss if kept else None,
            "model_val_loss": kept.val_loss if kept else None,
            "model_train_accuracy": kept.train_accuracy if kept else None,
            "model_val_accuracy": kept.val_accuracy if kept else None,
            "n_train": result.n_train,
            "n_validation": result.n_validation,
            "final_train_loss": last.train_loss if last else None,
            "final_val_loss": last.val_loss if last else None,
            "final_train_accuracy": last.train_accuracy if last else None,
            "final_val_accuracy": last.val_accuracy if last else None,
            "best_val_loss": best.val_loss if best else None,
            "best_train_loss": best.train_loss if best else None,
            "best_val_accuracy": best.val_accuracy if best else None,
            "best_train_accuracy": best.train_accuracy if best else None,
        }
    )


@dataclass(frozen=True)
class ModelParts:
    """What a Model row holds that takes time to make (the .npz above all): made before
    the transaction that completes the job, so SQLite's write lock is not held for it."""

    metrics: dict[str, Any]
    evaluation: dict[str, Any] | None  # fit(..., evaluate=True)'s report
    diagnostics: dict[str, Any]
    artifact: bytes


def model_parts(job_id: str, dataset_id: str | None, result: FitResult) -> ModelParts:
    """The fitted model's summary, its evaluation on its validation split (or training
    split) and its engine .npz (which names the job and dataset)."""
    classifier = result.classifier
    classifier.metadata = {**classifier.metadata, "job_id": job_id, "dataset_id": dataset_id}
    return ModelParts(
        metrics=fit_metrics(result),
        evaluation=result.evaluation,
        diagnostics=finite_or_none(result.diagnostics.to_dict()),
        artifact=to_bytes(classifier),
    )


def model_values(job: Job | Row, result: FitResult, parts: ModelParts | None = None) -> dict:
    """The columns of a succeeded job's Model row (``job``: a Job, or a row of its id,
    dataset_id, model_type and project): the engine's .npz and its summary. A worker serves
    every project: the model is its job's project's, named here."""
    parts = parts or model_parts(job.id, job.dataset_id, result)
    return {
        "project": job.project,
        "job_id": job.id,
        "dataset_id": job.dataset_id,
        "model_type": job.model_type,
        "metrics": parts.metrics,
        "evaluation": parts.evaluation,
        "diagnostics": parts.diagnostics,
        "artifact": parts.artifact,
    }


def model_row(job: Job, result: FitResult, parts: ModelParts | None = None) -> Model:
    """The Model row of a succeeded job, as an ORM object."""
    return Model(**model_values(job, result, parts))
