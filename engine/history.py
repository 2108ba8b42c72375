"""What training reports: one ``EpochMetrics`` per epoch and why it stopped."""

from dataclasses import asdict, dataclass
from typing import Any

STOP_REASONS = ("converged", "early_stopped", "max_epochs", "time_limit", "cancelled", "diverged")


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # J over the epoch's batches (data loss + L2 penalty); NaN when diverged
    val_loss: float | None  # mean cross-entropy on the validation split; None without one
    train_accuracy: float  # over the epoch's batches, as they were evaluated
    val_accuracy: float | None
    grad_norm: float  # ||dJ/dθ|| of the epoch's mean gradient
    seconds: float  # wall time of this epoch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
