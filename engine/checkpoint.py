"""The full training state, and its round trip through bytes.

A checkpoint holds everything the next epoch depends on: θ, the optimizer's
arrays, the shuffling RNG's state, the epoch, the history, the early-stopping
bookkeeping (best θ, best loss, patience used) and a fingerprint of the data
and specs. Resuming from it continues the exact same arithmetic, so the final
parameters equal those of an uninterrupted run bit for bit. Stored as .npz
with JSON metadata; loaded with ``allow_pickle=False``.
"""

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.history import EpochMetrics

FORMAT = "backprop-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """The checkpoint is unreadable, or belongs to other data or specs."""


@dataclass
class TrainingState:
    theta: np.ndarray  # (P,) the parameters
    optimizer_state: dict[str, np.ndarray]
    rng_state: dict[str, Any]  # the shuffling Generator's bit_generator.state
    fingerprint: dict[str, Any]  # data shape, classes, specs: must match on resume
    epoch: int = 0  # epochs completed
    elapsed: float = 0.0  # seconds of training so far, across resumes
    history: list[EpochMetrics] = field(default_factory=list)
    best_loss: float = math.inf  # the monitored loss's best value
    best_epoch: int | None = None
    best_theta: np.ndarray | None = None  # θ at best_epoch (kept for restore_best and cancels)
    stale_epochs: int = 0  # epochs since the monitored loss last improved
    stop_reason: str | None = None  # set once training has decided to stop
    message: str = ""

    def to_bytes(self) -> bytes:
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "rng_state": self.rng_state,
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "elapsed": self.elapsed,
            "history": [_finite_or_text(m.to_dict()) for m in self.history],
            "best_loss": _encode_float(self.best_loss),
            "best_epoch": self.best_epoch,
            "stale_epochs": self.stale_epochs,
            "stop_reason": self.stop_reason,
            "message": self.message,
        }
        arrays = {"theta": self.theta}
        if self.best_theta is not None:
            arrays["best_theta"] = self.best_theta
        arrays.update({f"optimizer/{name}": value for name, value in self.optimizer_state.items()})
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TrainingState":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise CheckpointError("not a checkpoint of this engine version")
            return cls(
                theta=arrays.pop("theta"),
                best_theta=arrays.pop("best_theta", None),
                optimizer_state={
                    name.removeprefix("optimizer/"): value for name, value in arrays.items()
                },
                rng_state=meta["rng_state"],
                fingerprint=meta["fingerprint"],
                epoch=int(meta["epoch"]),
                elapsed=float(meta["elapsed"]),
                history=[EpochMetrics(**_decode_floats(m)) for m in meta["history"]],
                best_loss=_decode_float(meta["best_loss"]),
                best_epoch=meta["best_epoch"],
                stale_epochs=int(meta["stale_epochs"]),
                stop_reason=meta["stop_reason"],
                message=meta["message"],
            )
        except CheckpointError:
            raise
        except Exception as error:  # any damage: zip, JSON, missing keys, wrong types
            raise CheckpointError(
                f"unreadable checkpoint ({type(error).__name__}: {error})"
            ) from error


# JSON has no NaN or infinity; a diverged epoch's NaN loss is kept as text.
def _encode_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return repr(float(value))


def _decode_float(value: float | str | None) -> float | None:
    return float(value) if isinstance(value, str) else value


def _finite_or_text(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: _encode_float(v) if isinstance(v, float) else v for k, v in metrics.items()}


def _decode_floats(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: _decode_float(v) if isinstance(v, str) else v for k, v in metrics.items()}
