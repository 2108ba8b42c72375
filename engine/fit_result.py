"""What fit() tells its callback after each epoch (Progress) and what it returns (FitResult)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.classifier import Classifier
from engine.diagnostics import Diagnostics
from engine.history import EpochMetrics


@dataclass(frozen=True)
class Progress:
    """What the per-epoch callback is told."""

    epoch: int
    epochs: int
    metrics: EpochMetrics
    best_epoch: int | None
    stop_reason: str | None  # set when this epoch is the last
    elapsed: float  # seconds of training so far
    checkpoint: Callable[[], bytes]  # the full state after this epoch, as bytes


# Return True to stop training (stop_reason "cancelled").
Callback = Callable[[Progress], bool | None]


@dataclass(frozen=True)
class FitResult:
    classifier: Classifier
    history: list[EpochMetrics]
    stop_reason: str
    message: str
    best_epoch: int | None
    diagnostics: Diagnostics
    n_train: int
    n_validation: int
    # engine.evaluation's report on the validation split (or the training split), made
    # with the parameters kept; None unless fit(..., evaluate=True).
    evaluation: dict[str, Any] | None = None
    # The epoch whose parameters the classifier holds: best_epoch when they were restored
    # (early_stopping.restore_best, or a cancel), else the last epoch run; None: none ran.
    model_epoch: int | None = None
