"""A model's metrics name three epochs apart: the one it holds, the best, and the last run."""

from sklearn.datasets import load_iris

from engine import EarlyStopping, ModelSpec, TrainingSpec, fit
from service.queue.results import fit_metrics

NETWORK = ModelSpec(type="two_layer_network", hidden_units=8)


def noisy_fit(restore_best: bool):
    """Iris with a step so large that the validation loss turns back up: best != last."""
    X, y = load_iris(return_X_y=True)
    spec = TrainingSpec(
        optimizer="adam",
        learning_rate=0.3,
        epochs=300,
        validation_fraction=0.3,
        early_stopping=EarlyStopping(patience=5, restore_best=restore_best),
        tolerance=0.0,
        seed=1,
    )
    return fit(X, y, NETWORK, spec, evaluate=True)


def test_a_restored_model_reports_its_best_epochs_figures_beside_the_last_ones():
    result = noisy_fit(restore_best=True)
    metrics = fit_metrics(result)
    best = result.history[result.best_epoch - 1]
    last = result.history[-1]
    assert best.epoch < last.epoch
    assert (metrics["model_epoch"], metrics["model_parameters"]) == (best.epoch, "best")
    assert metrics["model_val_loss"] == metrics["best_val_loss"] == best.val_loss
    assert metrics["model_val_accuracy"] == metrics["best_val_accuracy"] == best.val_accuracy
    assert metrics["final_val_loss"] == last.val_loss
    assert metrics["final_val_accuracy"] == last.val_accuracy
    # The stored evaluation scores the parameters the model holds: the best epoch's.
    assert result.evaluation["split"] == "validation"
    assert result.evaluation["accuracy"] == best.val_accuracy != last.val_accuracy


def test_a_model_that_keeps_its_last_epoch_says_so():
    result = noisy_fit(restore_best=False)
    metrics = fit_metrics(result)
    last = result.history[-1]
    assert (metrics["model_epoch"], metrics["model_parameters"]) == (last.epoch, "last")
    assert metrics["model_val_loss"] == metrics["final_val_loss"] == last.val_loss
    assert metrics["best_epoch"] == result.best_epoch < last.epoch
