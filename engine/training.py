"""fit(): train a ModelSpec on rows and labels under a TrainingSpec.

    result = fit(X, y, ModelSpec(type="two_layer_network"), TrainingSpec(epochs=100))
    result.classifier.predict(rows); result.history; result.stop_reason

Each epoch runs the seed note's forward and backward passes over the
training split (full batch, or shuffled mini-batches), steps the optimizer,
measures the validation split, and then decides whether to stop:
``converged`` (gradient norm below tolerance), ``early_stopped`` (no
improvement in the monitored loss for ``patience`` epochs), ``time_limit``,
``max_epochs``, ``diverged`` (non-finite loss or parameters: the last finite
parameters are kept), or ``cancelled`` (the callback asked to stop).
The callback sees every epoch's metrics and can take a checkpoint; ``fit``
with ``resume_from`` continues it to the same parameters an uninterrupted
run reaches. L-BFGS runs through scipy.optimize on the engine's gradients;
a resumed L-BFGS run restarts its curvature memory, so it is not bit-identical.

Memory: with ``overwrite_rows=True`` the caller's rows are the only X-sized array of
the fit; the rest is per sample (labels, Y, indices) or per ~1 MiB block (BlockRunner).
A warm start (engine.warm) begins from a fitted model's parameters and preprocessing.
"""

import math
import time
from collections.abc import Sequence

import numpy as np

from engine import warm
from engine.blocks import BlockRunner
from engine.checkpoint import CheckpointError, TrainingState
from engine.classifier import Classifier, build_model
from engine.columns import InputColumn
from engine.data import TrainingData, prepare
from engine.diagnostics import diagnose
from engine.evaluation import evaluate_splits
from engine.fit_result import Callback, FitResult, Progress
from engine.history import EpochMetrics
from engine.lbfgs import run_lbfgs
from engine.models import Model
from engine.optimizers import OPTIMIZERS, Optimizer
from engine.parameters import Parameters
from engine.specs import ModelSpec, TrainingSpec

# A loss this many times its first epoch's (or log K, if larger) counts as diverged:
# cross-entropy of standardized data starts near log K and only a blow-up goes 1000x past it.
DIVERGENCE_FACTOR = 1000.0


def fit(
    X: np.ndarray | Sequence[Sequence[float]],
    y: np.ndarray | Sequence[object],
    model: ModelSpec | None = None,
    training: TrainingSpec | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    columns: Sequence[InputColumn] | None = None,
    callback: Callback | None = None,
    resume_from: bytes | None = None,
    threads: int | None = None,
    overwrite_rows: bool = False,
    evaluate: bool = False,
    warm_start: Classifier | None = None,
) -> FitResult:
    """Train on rows X (m, n_in) with labels y (m,); see the module docstring.

    X is a coded table (engine.columns): NaN marks a missing cell, filled as
    ``training.preprocessing`` says; ``columns`` says which are categorical (default: all
    numeric, named by ``feature_names``). ``threads`` (default: every core) changes speed,
    never results. ``overwrite_rows=True`` gives X to the engine, which must then be the
    caller's no more (engine.data: reordered and standardized in place; the result is
    bit-identical). ``evaluate=True`` scores the kept model into ``FitResult.evaluation``.
    ``warm_start``: a fitted Classifier to start from (engine.warm).
    """
    model_spec = (model or ModelSpec()).validate()
    spec = (training or TrainingSpec()).validate()
    X, spec, fitted = warm.warm_inputs(
        warm_start, X, y, model_spec, spec, columns, feature_names, overwrite_rows
    )
    if warm_start is not None:  # X: the parent's columns, coded as it codes them, and ours
        columns, feature_names, overwrite_rows = warm_start.columns, None, True
    dtype = np.dtype(spec.dtype)
    seeds = np.random.SeedSequence(spec.seed).spawn(3)
    init_rng, split_rng, shuffle_rng = (np.random.default_rng(s) for s in seeds)
    data = prepare(
        X,
        y,
        validation_fraction=spec.validation_fraction,
        dtype=dtype,
        rng=split_rng,
        feature_names=feature_names,
        columns=columns,
        preprocessing=spec.preprocessing,
        overwrite_rows=overwrite_rows,
        fitted=fitted,
    )
    network = build_model(model_spec, data.n_features, data.n_classes)
    warm.initialize(network, model_spec, init_rng, dtype, parent=warm_start)
    trainer = Trainer(network, model_spec, spec, data, shuffle_rng, threads, evaluate=evaluate)
    trainer.state.fingerprint |= warm.fingerprint(warm_start)  # resumes onto this parent only
    if resume_from is not None:
        trainer.resume(resume_from)
    return trainer.run(callback)


class Trainer:
    """One fit's state and loop; ``fit`` is the way in."""

    def __init__(
        self,
        model: Model,
        model_spec: ModelSpec,
        spec: TrainingSpec,
        data: TrainingData,
        rng: np.random.Generator,
        threads: int | None,
        *,
        evaluate: bool = False,
    ):
        self.evaluate = evaluate  # score the kept model on its splits at the end
        self.model = model
        self.model_spec = model_spec
        self.spec = spec
        self.data = data
        self.rng = rng
        self.params: Parameters = model.parameters
        self.grads = self.params.zeros_like()
        self.epoch_gradient = self.params.zeros_like()  # the epoch's mean gradient
        self.runner = BlockRunner(model, threads)
        self.optimizer: Optimizer | None = None
        if spec.optimizer in OPTIMIZERS:
            self.optimizer = OPTIMIZERS[spec.optimizer](
                self.params.theta.size, self.params.dtype, spec, spec.step_size(model_spec.type)
            )
        self.state = TrainingState(
            theta=self.params.theta,
            optimizer_state=self.optimizer.state if self.optimizer else {},
            rng_state=rng.bit_generator.state,
            fingerprint=self._fingerprint(),
        )

    # -- checkpoints -------------------------------------------------------------------------
    def _fingerprint(self) -> dict[str, object]:
        training = self.spec.to_dict()
        for free in ("epochs", "time_limit"):  # may change between attempts
            training.pop(free)
        model = {name: getattr(self.model_spec, name) for name in ModelSpec.__dataclass_fields__}
        return {**self.data.fingerprint(), "model": model, "training": training}

    def checkpoint(self) -> bytes:
        self.state.rng_state = self.rng.bit_generator.state
        return self.state.to_bytes()

    def resume(self, data: bytes) -> None:
        saved = TrainingState.from_bytes(data)
        if saved.fingerprint != self.state.fingerprint:
            differing = sorted(
                key
                for key in set(saved.fingerprint) | set(self.state.fingerprint)
                if saved.fingerprint.get(key) != self.state.fingerprint.get(key)
            )
            raise CheckpointError(f"checkpoint is for other data or specs (differs in {differing})")
        if saved.theta.shape != self.params.theta.shape or saved.theta.dtype != self.params.dtype:
            raise CheckpointError("checkpoint parameters do not fit this model")
        self.params.theta[...] = saved.theta
        if self.optimizer is not None:
            try:
                self.optimizer.load_state(saved.optimizer_state)
            except ValueError as error:
                raise CheckpointError(str(error)) from error
        self.rng.bit_generator.state = saved.rng_state
        saved.theta = self.params.theta
        saved.optimizer_state = self.optimizer.state if self.optimizer else {}
        if saved.stop_reason == "max_epochs" and saved.epoch < self.spec.epochs:
            saved.stop_reason = None  # more epochs were granted: keep going
        self.state = saved

    # -- the loop ----------------------------------------------------------------------------
    def run(self, callback: Callback | None) -> FitResult:
        # Divergence is detected and reported explicitly; NumPy's overflow warnings add nothing.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), self.runner.running():
            if self.state.stop_reason is None:
                if self.spec.optimizer == "lbfgs":
                    self._run_lbfgs(callback)
                else:
                    self._run_epochs(callback)
            return self._result()

    def _run_epochs(self, callback: Callback | None) -> None:
        for epoch in range(self.state.epoch + 1, self.spec.epochs + 1):
            started = time.perf_counter()
            last_good = self.params.theta.copy()
            train_loss, train_accuracy = self._train_epoch()
            grad_norm = float(np.linalg.norm(self.epoch_gradient.theta))
            self.end_epoch(
                epoch, train_loss, train_accuracy, grad_norm, started, last_good, callback
            )
            if self.state.stop_reason is not None:
                return

    def _train_epoch(self) -> tuple[float, float]:
        """One pass over the training split; returns (train J, train accuracy)."""
        train = self.data.train
        m = train.m
        batch = min(self.spec.batch_size or m, m)
        order = self.rng.permutation(m) if (self.spec.shuffle and batch < m) else None
        loss_total, correct = 0.0, 0
        self.epoch_gradient.theta[...] = 0.0
        for start in range(0, m, batch):
            if order is None:
                part = slice(start, start + batch)
                X, Y, labels = train.X[:, part], train.Y[:, part], train.labels[part]
            else:
                index = order[start : start + batch]
                X, Y, labels = train.rows[index].T, train.Y[:, index], train.labels[index]
            size = X.shape[1]
            result = self.runner.loss_and_gradients(X, Y, labels, self.grads)
            self.grads.theta /= size  # the note's 1/m, over this batch
            self.model.add_penalty_gradient(self.grads, self.spec.l2, m)
            loss_total += (result.loss_sum / size + self.model.penalty(self.spec.l2, m)) * size
            correct += result.correct
            self.epoch_gradient.theta += (size / m) * self.grads.theta
            self.optimizer.step(self.params.theta, self.grads.theta)
        return loss_total / m, correct / m

    def _validate(self) -> tuple[float | None, float | None]:
        validation = self.data.validation
        if validation.m == 0:
            return None, None
        result = self.runner.loss(validation.X, validation.Y, validation.labels)
        return result.loss_sum / validation.m, result.correct / validation.m

    def end_epoch(
        self,
        epoch: int,
        train_loss: float,
        train_accuracy: float,
        grad_norm: float,
        started: float,
        last_good: np.ndarray,
        callback: Callback | None,
    ) -> None:
        state = self.state
        val_loss = val_accuracy = None
        diverged = self._diverged(train_loss)
        if not diverged:
            val_loss, val_accuracy = self._validate()
            # The step can blow up after the train loss was measured (it is taken before the
            # update); the validation loss, measured after it, shows that one epoch sooner.
            diverged = val_loss is not None and self._diverged(val_loss)
        if diverged:
            self.params.theta[...] = last_good  # keep the parameters from before the blow-up
            val_loss = val_accuracy = None
            train_loss = math.nan
            reason = "diverged"
            state.message = (
                f"training diverged at epoch {epoch}: the loss or the parameters blew up; "
                f"try a smaller learning_rate than {self.spec.step_size(self.model_spec.type)}"
            )
        else:
            self._track_best(epoch, val_loss if val_loss is not None else train_loss)
            reason = self._stop_reason(
                epoch, grad_norm, state.elapsed + time.perf_counter() - started
            )
        seconds = time.perf_counter() - started
        metrics = EpochMetrics(
            epoch, train_loss, val_loss, train_accuracy, val_accuracy, grad_norm, seconds
        )
        state.epoch = epoch
        state.elapsed += seconds
        state.history.append(metrics)
        state.stop_reason = reason
        if callback is not None:
            progress = Progress(
                epoch,
                self.spec.epochs,
                metrics,
                state.best_epoch,
                reason,
                state.elapsed,
                self.checkpoint,
            )
            if callback(progress) and state.stop_reason is None:
                state.stop_reason = "cancelled"
                state.message = f"cancelled after epoch {epoch}"

    def _diverged(self, loss: float) -> bool:
        """Non-finite loss or parameters, or a loss DIVERGENCE_FACTOR times its starting level.

        Saturating units (tanh, sigmoid) can keep the loss finite while the weights
        run off to 1e300, so "finite" alone would let such runs go on forever.
        """
        if not (math.isfinite(loss) and np.isfinite(self.params.theta).all()):
            return True
        start = self.state.history[0].train_loss if self.state.history else 0.0
        return loss > DIVERGENCE_FACTOR * max(start, math.log(self.data.n_classes))

    def _track_best(self, epoch: int, monitored: float) -> None:
        state = self.state
        stopping = self.spec.early_stopping
        min_delta = stopping.min_delta if stopping else 0.0
        if monitored < state.best_loss - min_delta:
            state.best_loss, state.best_epoch, state.stale_epochs = monitored, epoch, 0
            # Kept whatever restore_best says: a cancel keeps the best epoch's parameters
            # (one copy of θ per improving epoch; a pass over the data costs far more).
            state.best_theta = self.params.theta.copy()
        else:
            state.stale_epochs += 1

    def _stop_reason(self, epoch: int, grad_norm: float, elapsed: float) -> str | None:
        spec, state = self.spec, self.state
        monitored = "validation loss" if self.data.validation.m else "training loss"
        if grad_norm <= spec.tolerance:
            state.message = (
                f"gradient norm {grad_norm:.3g} <= tolerance {spec.tolerance:g} at epoch {epoch}"
            )
            return "converged"
        if spec.early_stopping is not None and state.stale_epochs >= spec.early_stopping.patience:
            state.message = (
                f"{monitored} did not improve by more than {spec.early_stopping.min_delta:g} "
                f"for {spec.early_stopping.patience} epochs; best epoch {state.best_epoch}"
            )
            return "early_stopped"
        if spec.time_limit is not None and elapsed >= spec.time_limit:
            state.message = f"time limit of {spec.time_limit:g} s reached after epoch {epoch}"
            return "time_limit"
        if epoch >= spec.epochs:
            state.message = f"reached {spec.epochs} epochs"
            return "max_epochs"
        return None

    # -- L-BFGS ------------------------------------------------------------------------------
    def _run_lbfgs(self, callback: Callback | None) -> None:
        run_lbfgs(self, callback)

    # -- the end -----------------------------------------------------------------------------
    def _evaluates(self, state: TrainingState) -> bool:
        """Whether to score the kept model: if asked, and unless training diverged (its
        parameters are those from before the blow-up, and no model is kept)."""
        return self.evaluate and state.stop_reason != "diverged"

    def _restores_best(self, state: TrainingState) -> bool:
        """Whether the model keeps the best epoch's parameters rather than the last's: when
        early stopping says so, and on a cancel (a person stops a run that has stopped
        improving, or has run long enough: its best so far is what it has to give)."""
        if state.best_theta is None or state.best_epoch == state.epoch:
            return False
        stopping = self.spec.early_stopping
        restore_best = stopping is not None and stopping.restore_best
        return restore_best or state.stop_reason == "cancelled"

    def _result(self) -> FitResult:
        state = self.state
        model_epoch = state.epoch or None
        if self._restores_best(state):
            state.message += f"; kept the parameters of epoch {state.best_epoch}, the best"
            self.params.theta[...] = state.best_theta
            model_epoch = state.best_epoch
        classifier = Classifier(
            model=self.model,
            standardizer=self.data.standardizer,
            encoder=self.data.encoder,
            feature_names=self.data.feature_names,
            transform=self.data.transform,
            model_spec=self.model_spec,
            training_spec=self.spec,
        )
        return FitResult(
            classifier=classifier,
            history=list(state.history),
            stop_reason=state.stop_reason or "max_epochs",
            message=state.message,
            best_epoch=state.best_epoch,
            diagnostics=diagnose(self.model, self.epoch_gradient, self.data.train.X),
            n_train=self.data.train.m,
            n_validation=self.data.validation.m,
            evaluation=evaluate_splits(classifier, self.data) if self._evaluates(state) else None,
            model_epoch=model_epoch,
        )
