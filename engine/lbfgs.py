"""L-BFGS: scipy.optimize drives the Trainer, one iteration an epoch.

scipy's L-BFGS-B minimizes J over the flat parameter vector with the engine's own loss and
gradients (the Trainer's BlockRunner, the L2 penalty included); after each iteration the
Trainer ends an epoch as it does for gradient descent (metrics, callback, stopping rules).
A stop the Trainer decides ends the search by raising StopIteration in the callback.
"""

import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.training import Callback, Trainer


def run_lbfgs(trainer: "Trainer", callback: "Callback | None") -> None:
    """Train ``trainer``'s parameters in place until scipy or the Trainer stops."""
    train = trainer.data.train
    m = train.m
    last = {}  # the most recent evaluation: x, J, correct, gradient

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        trainer.params.theta[...] = x
        result = trainer.runner.loss_and_gradients(train.X, train.Y, train.labels, trainer.grads)
        trainer.grads.theta /= m
        trainer.model.add_penalty_gradient(trainer.grads, trainer.spec.l2, m)
        loss = result.loss_sum / m + trainer.model.penalty(trainer.spec.l2, m)
        gradient = trainer.grads.theta.astype(np.float64)
        last.update(x=x.copy(), loss=loss, correct=result.correct, gradient=gradient)
        return loss, gradient

    clock = {"started": time.perf_counter(), "good": trainer.params.theta.copy()}

    def on_iteration(intermediate_result: object) -> None:
        x = intermediate_result.x
        if "x" not in last or not np.array_equal(x, last["x"]):
            objective(x)
        trainer.params.theta[...] = x
        trainer.epoch_gradient.theta[...] = last["gradient"]
        grad_norm = float(np.linalg.norm(last["gradient"]))
        epoch = trainer.state.epoch + 1
        trainer.end_epoch(
            epoch,
            last["loss"],
            last["correct"] / m,
            grad_norm,
            clock["started"],
            clock["good"],
            callback,
        )
        clock["started"], clock["good"] = time.perf_counter(), trainer.params.theta.copy()
        if trainer.state.stop_reason is not None:
            raise StopIteration

    # Imported here: scipy.optimize costs ~0.4 s at import, and every API and worker
    # process imports this module while few jobs ask for L-BFGS.
    from scipy.optimize import minimize

    result = minimize(
        objective,
        trainer.params.theta.astype(np.float64),
        jac=True,
        method="L-BFGS-B",
        callback=on_iteration,
        options={
            "maxiter": trainer.spec.epochs - trainer.state.epoch,
            "gtol": trainer.spec.tolerance,
        },
    )
    if trainer.state.stop_reason is None:  # scipy stopped on its own test
        if trainer.state.epoch == 0 or not np.isfinite(result.fun):
            trainer.params.theta[...] = clock["good"]
        trainer.state.stop_reason = "converged"
        trainer.state.message = (
            f"L-BFGS stopped after {trainer.state.epoch} iterations: {result.message}"
        )
