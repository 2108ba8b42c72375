"""A model's metrics: how its fit went, naming apart the epoch it holds, the best and the last."""

from typing import Literal

from pydantic import BaseModel, Field


class ModelMetrics(BaseModel):
    """How the fit went (the engine's FitResult summary); null where a value was not finite."""

    stop_reason: str | None = Field(
        default=None,
        description="converged, early_stopped, max_epochs, time_limit, cancelled or diverged",
    )
    message: str | None = None
    epochs_run: int | None = None
    best_epoch: int | None = Field(default=None, description="1-based epoch of the lowest loss")
    n_train: int | None = Field(default=None, description="rows in the training split")
    n_validation: int | None = Field(default=None, description="rows in the validation split")
    model_epoch: int | None = Field(
        default=None, description="1-based epoch whose parameters this model holds"
    )
    model_parameters: Literal["best", "last"] | None = Field(
        default=None,
        description="best: best_epoch's, restored (early_stopping.restore_best, or a cancel); "
        "last: the last epoch's. null: a model from before this field",
    )
    model_train_loss: float | None = Field(default=None, description="at model_epoch")
    model_val_loss: float | None = Field(default=None, description="at model_epoch")
    model_train_accuracy: float | None = Field(default=None, description="at model_epoch")
    model_val_accuracy: float | None = Field(default=None, description="at model_epoch")
    final_train_loss: float | None = Field(default=None, description="at the last epoch run")
    final_val_loss: float | None = Field(default=None, description="at the last epoch run")
    final_train_accuracy: float | None = Field(default=None, description="at the last epoch run")
    final_val_accuracy: float | None = Field(default=None, description="at the last epoch run")
    best_train_loss: float | None = Field(default=None, description="at best_epoch")
    best_val_loss: float | None = Field(default=None, description="at best_epoch")
    best_train_accuracy: float | None = Field(default=None, description="at best_epoch")
    best_val_accuracy: float | None = Field(default=None, description="at best_epoch")
