"""fit(): what training does, when it stops and why, and what it reports."""

import math

import numpy as np
import pytest

from engine import EarlyStopping, ModelSpec, Progress, TrainingSpec, fit
from engine.checkpoint import TrainingState

NETWORK = ModelSpec(type="two_layer_network", hidden_units=8, activation="tanh")
NO_STOPPING = {"validation_fraction": 0.0, "early_stopping": None, "tolerance": 0.0}


def test_xor_defeats_logistic_regression_and_not_the_two_layer_tanh_network(xor):
    rows, labels = xor
    spec = TrainingSpec(optimizer="adam", learning_rate=0.05, epochs=500, **NO_STOPPING)
    linear = fit(rows, labels, ModelSpec(), spec)
    network = fit(rows, labels, ModelSpec(type="two_layer_network", hidden_units=4), spec)
    assert np.mean(linear.classifier.predict(rows) == labels) <= 0.75
    assert np.mean(network.classifier.predict(rows) == labels) == 1.0


def test_zero_initialization_never_breaks_symmetry(blobs):
    """The note: with zero weights every hidden unit does the same work, forever."""
    rows, labels = blobs
    spec = TrainingSpec(optimizer="gd", epochs=30, **NO_STOPPING)
    for activation in ("sigmoid", "tanh"):
        model = ModelSpec(
            type="two_layer_network", hidden_units=6, activation=activation, init="zeros"
        )
        diagnostics = fit(rows, labels, model, spec).diagnostics
        assert diagnostics.identical_hidden_units == 6
        assert diagnostics.distinct_hidden_units == 1
        assert "symmetry was never broken" in diagnostics.warnings[0]


@pytest.mark.parametrize("init", ["random", "xavier", "he"])
def test_random_initialization_breaks_symmetry(blobs, init):
    rows, labels = blobs
    model = ModelSpec(type="two_layer_network", hidden_units=6, init=init)
    diagnostics = fit(rows, labels, model, TrainingSpec(epochs=5)).diagnostics
    assert diagnostics.identical_hidden_units == 0
    assert diagnostics.distinct_hidden_units == 6
    assert diagnostics.warnings == []


def test_history_has_one_entry_per_epoch_with_every_metric(blobs):
    rows, labels = blobs
    spec = TrainingSpec(epochs=7, early_stopping=None, validation_fraction=0.2)
    result = fit(rows, labels, NETWORK, spec)
    assert [m.epoch for m in result.history] == list(range(1, 8))
    for metrics in result.history:
        assert metrics.train_loss > 0
        assert metrics.val_loss > 0
        assert 0 <= metrics.train_accuracy <= 1
        assert 0 <= metrics.val_accuracy <= 1
        assert metrics.grad_norm > 0
        assert metrics.seconds > 0
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert (result.stop_reason, result.n_train, result.n_validation) == ("max_epochs", 240, 60)


def test_full_batch_gradient_descent_follows_the_note_step_by_step(blobs):
    """Epoch k's train loss is J at the parameters before step k: check against the model."""
    rows, labels = blobs
    states = []

    def keep(progress: Progress) -> None:
        states.append(TrainingState.from_bytes(progress.checkpoint()).theta.copy())

    result = fit(
        rows,
        labels,
        NETWORK,
        TrainingSpec(optimizer="gd", epochs=3, l2=0.0, **NO_STOPPING),  # J as the note has it
        callback=keep,
    )
    model = result.classifier.model
    X = result.classifier.standardizer.transform(rows, np.float64).T  # (n_x, m)
    Y = labels[None, :].astype(float)
    model.parameters.theta[...] = states[0]
    assert result.history[1].train_loss == pytest.approx(model.cost(X, Y), rel=1e-12)
    _, grads = model.gradients(X, Y)
    np.testing.assert_allclose(states[1], states[0] - 0.5 * grads.theta, rtol=1e-12, atol=1e-15)


def test_l2_strength_does_not_depend_on_the_batch_size(blobs):
    """Mean of the mini-batch gradients = the full-batch gradient at (almost) fixed parameters."""
    rows, labels = blobs
    norms = []
    for batch_size in (None, 10):
        spec = TrainingSpec(
            optimizer="gd",
            learning_rate=1e-12,
            epochs=1,
            batch_size=batch_size,
            l2=50.0,
            **NO_STOPPING,
        )
        norms.append(fit(rows, labels, NETWORK, spec).history[0].grad_norm)
    assert norms[1] == pytest.approx(norms[0], rel=1e-9)


def test_converged_when_the_gradient_norm_falls_below_tolerance(blobs):
    rows, labels = blobs
    spec = TrainingSpec(
        optimizer="lbfgs", epochs=500, tolerance=1e-4, validation_fraction=0.0, early_stopping=None
    )
    result = fit(rows, labels, ModelSpec(), spec)
    assert result.stop_reason == "converged"
    assert len(result.history) < 500


def test_early_stopping_restores_the_best_epoch(blobs):
    rows, labels = blobs
    thetas = {}

    def keep(progress: Progress) -> None:
        thetas[progress.epoch] = TrainingState.from_bytes(progress.checkpoint()).theta.copy()

    spec = TrainingSpec(
        optimizer="adam",
        learning_rate=0.3,
        epochs=300,
        validation_fraction=0.2,
        early_stopping=EarlyStopping(patience=4, restore_best=True),
        tolerance=0.0,
    )
    result = fit(rows, labels, NETWORK, spec, callback=keep)
    assert result.stop_reason == "early_stopped"
    best = min(result.history, key=lambda m: m.val_loss)
    assert result.best_epoch == best.epoch == len(result.history) - 4
    assert result.model_epoch == best.epoch
    np.testing.assert_array_equal(result.classifier.model.parameters.theta, thetas[best.epoch])


def noisy_adam(stopping: EarlyStopping) -> TrainingSpec:
    """A step so large that the validation loss turns back up within a few epochs."""
    return TrainingSpec(
        optimizer="adam",
        learning_rate=0.3,
        epochs=300,
        validation_fraction=0.2,
        early_stopping=stopping,
        tolerance=0.0,
    )


def test_a_cancel_keeps_the_best_epochs_parameters_so_far(blobs):
    rows, labels = blobs
    thetas = {}

    def cancel_four_epochs_past_the_best(progress: Progress) -> bool:
        thetas[progress.epoch] = TrainingState.from_bytes(progress.checkpoint()).theta.copy()
        return progress.epoch - progress.best_epoch >= 4

    # restore_best off and patience long: only the cancel picks the best epoch's parameters.
    spec = noisy_adam(EarlyStopping(patience=1000, restore_best=False))
    result = fit(rows, labels, NETWORK, spec, callback=cancel_four_epochs_past_the_best)
    assert result.stop_reason == "cancelled"
    best = min(result.history, key=lambda m: m.val_loss)
    assert result.best_epoch == result.model_epoch == best.epoch == len(result.history) - 4
    assert f"kept the parameters of epoch {best.epoch}" in result.message
    np.testing.assert_array_equal(result.classifier.model.parameters.theta, thetas[best.epoch])


def test_without_restore_best_a_run_that_stops_keeps_its_last_epoch(blobs):
    rows, labels = blobs
    thetas = {}

    def keep(progress: Progress) -> None:
        thetas[progress.epoch] = TrainingState.from_bytes(progress.checkpoint()).theta.copy()

    result = fit(rows, labels, NETWORK, noisy_adam(EarlyStopping(patience=4)), callback=keep)
    assert result.stop_reason == "early_stopped"
    assert result.best_epoch == len(result.history) - 4
    assert result.model_epoch == len(result.history)
    last = len(result.history)
    np.testing.assert_array_equal(result.classifier.model.parameters.theta, thetas[last])


def test_callback_returning_true_cancels_after_that_epoch(blobs):
    rows, labels = blobs
    seen = []

    def cancel_at_three(progress: Progress) -> bool:
        seen.append((progress.epoch, progress.epochs))
        return progress.epoch == 3

    result = fit(rows, labels, NETWORK, TrainingSpec(epochs=50), callback=cancel_at_three)
    assert result.stop_reason == "cancelled"
    assert seen == [(1, 50), (2, 50), (3, 50)]
    assert len(result.history) == 3


def test_time_limit_stops_training(blobs):
    rows, labels = blobs
    spec = TrainingSpec(epochs=1_000_000, batch_size=1, time_limit=0.2, **NO_STOPPING)
    result = fit(rows, labels, ModelSpec(), spec)
    assert result.stop_reason == "time_limit"
    assert sum(m.seconds for m in result.history) >= 0.2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_divergence_stops_with_a_clear_message_and_finite_parameters(blobs, dtype):
    rows, labels = blobs
    spec = TrainingSpec(optimizer="gd", learning_rate=1e300, epochs=50, dtype=dtype, **NO_STOPPING)
    result = fit(rows, labels, NETWORK, spec)
    assert result.stop_reason == "diverged"
    assert "diverged at epoch" in result.message
    assert "learning_rate" in result.message
    assert math.isnan(result.history[-1].train_loss)
    assert np.isfinite(result.classifier.model.parameters.theta).all()
    assert np.isfinite(result.classifier.predict_proba(rows)).all()


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam", "lbfgs"])
@pytest.mark.parametrize("model", [ModelSpec(), NETWORK], ids=["logistic", "network"])
def test_every_optimizer_learns(blobs, optimizer, model):
    rows, labels = blobs
    result = fit(rows, labels, model, TrainingSpec(optimizer=optimizer, epochs=100))
    assert result.history[-1].train_loss < 0.4  # from about log 2
    assert np.mean(result.classifier.predict(rows) == labels) > 0.85


def test_float32_end_to_end_agrees_with_float64(blobs):
    rows, labels = blobs
    results = {
        dtype: fit(
            rows,
            labels,
            NETWORK,
            TrainingSpec(optimizer="gd", epochs=60, dtype=dtype, **NO_STOPPING),
        )
        for dtype in ("float32", "float64")
    }
    single, double = results["float32"], results["float64"]
    assert single.classifier.model.parameters.dtype == np.float32
    assert single.classifier.standardizer.transform(rows[:2], np.float32).dtype == np.float32
    np.testing.assert_allclose(
        single.classifier.model.parameters.theta,
        double.classifier.model.parameters.theta,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        single.classifier.predict_proba(rows), double.classifier.predict_proba(rows), atol=1e-4
    )
    assert single.history[-1].train_loss == pytest.approx(double.history[-1].train_loss, rel=1e-4)


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "emu"] * 40),
        np.array([-1, 1, 7] * 40),
        np.array([0.5, 2.5] * 60),
        np.array([True, False] * 60),
    ],
    ids=["strings", "ints", "floats", "bools"],
)
def test_any_label_values_round_trip(labels):
    rng = np.random.default_rng(0)
    encoded = np.unique(labels, return_inverse=True)[1]
    rows = rng.standard_normal((len(labels), 3)) + encoded[:, None] * 3
    result = fit(rows, labels, NETWORK, TrainingSpec(epochs=100))
    predicted = result.classifier.predict(rows)
    assert predicted.dtype.kind == labels.dtype.kind
    assert np.mean(predicted == labels) > 0.9
    assert result.classifier.classes == sorted(set(labels.tolist()))


def test_a_class_with_one_row_stays_in_the_training_split():
    rows = np.arange(40, dtype=float).reshape(20, 2)
    labels = np.array([0] * 10 + [1] * 9 + [2])
    result = fit(rows, labels, ModelSpec(), TrainingSpec(epochs=3))
    assert result.classifier.classes == [0, 1, 2]
    assert result.n_train + result.n_validation == 20


@pytest.mark.parametrize(
    ("rows", "labels", "message"),
    [
        ([[1.0, float("inf")], [2.0, 3.0]], [0, 1], "row 0, column 1 .* is inf"),
        ([[1.0], [2.0]], [1, 1], "at least 2 classes"),
        ([[1.0], [2.0]], [0, 1, 1], "one label per row"),
        ([1.0, 2.0], [0, 1], "2-D table"),
        ([["a"], ["b"]], [0, 1], "must be numbers"),
    ],
)
def test_bad_input_is_refused_with_the_reason(rows, labels, message):
    with pytest.raises(ValueError, match=message):
        fit(rows, labels)


def test_feature_names_are_kept(blobs):
    rows, labels = blobs
    names = [f"f{j}" for j in range(5)]
    assert (
        fit(
            rows, labels, feature_names=names, training=TrainingSpec(epochs=2)
        ).classifier.feature_names
        == names
    )


def test_dead_relu_units_are_reported(blobs):
    rows, labels = blobs
    model = ModelSpec(type="two_layer_network", hidden_units=8, activation="relu")
    result = fit(rows, labels, model, TrainingSpec(epochs=2))
    assert 0.0 <= result.diagnostics.dead_unit_fraction < 0.5
    network = result.classifier.model
    network.parameters["b1"][:4] = -1e6  # four units can never fire again
    from engine.diagnostics import dead_unit_fraction

    X = result.classifier.standardizer.transform(rows, np.float64).T
    assert dead_unit_fraction(network, X) >= 0.5
    assert set(result.diagnostics.gradient_norms) == {"W1", "b1", "W2", "b2"}


def test_the_default_specs_train_a_good_model(blobs):
    rows, labels = blobs
    held_out = np.arange(len(rows)) % 5 == 0  # rows the fit never sees
    for model in (ModelSpec(), ModelSpec(type="two_layer_network")):
        result = fit(rows[~held_out], labels[~held_out], model)
        predicted = result.classifier.predict(rows[held_out])
        assert np.mean(predicted == labels[held_out]) >= 0.8


def test_a_blow_up_in_the_first_step_is_caught_by_the_validation_loss(blobs):
    """The train loss is measured before the step; the validation loss after it."""
    rows, labels = blobs
    spec = TrainingSpec(
        optimizer="gd",
        learning_rate=1e300,
        epochs=50,
        early_stopping=None,
        validation_fraction=0.2,
    )
    result = fit(rows, labels, NETWORK, spec)
    assert result.stop_reason == "diverged"
    assert len(result.history) == 1
    assert result.history[0].val_loss is None
