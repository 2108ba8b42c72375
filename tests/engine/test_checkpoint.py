"""A checkpoint holds the whole training state: resuming it reaches the very same parameters."""

import numpy as np
import pytest

from engine import CheckpointError, EarlyStopping, ModelSpec, Progress, TrainingSpec, fit
from engine.blocks import block_columns
from engine.checkpoint import TrainingState
from engine.classifier import build_model

NETWORK = ModelSpec(type="two_layer_network", hidden_units=8, activation="tanh")


def interrupted_at(epoch: int):
    """A callback that takes a checkpoint at ``epoch`` and stops there, as a crash would."""
    saved = {}

    def callback(progress: Progress) -> bool:
        if progress.epoch == epoch:
            saved["bytes"] = progress.checkpoint()
            return True
        return False

    return callback, saved


@pytest.mark.parametrize(
    "spec",
    [
        TrainingSpec(
            optimizer="adam", epochs=25, batch_size=16, early_stopping=EarlyStopping(patience=50)
        ),
        TrainingSpec(optimizer="momentum", epochs=25, batch_size=50, dtype="float32"),
        TrainingSpec(optimizer="gd", epochs=25, l2=0.3, validation_fraction=0.0),
    ],
    ids=["adam-minibatch", "momentum-float32", "gd-full-batch-l2"],
)
def test_resumed_fit_equals_uninterrupted_fit_bit_for_bit(blobs, spec):
    rows, labels = blobs
    whole = fit(rows, labels, NETWORK, spec)
    callback, saved = interrupted_at(11)
    first_half = fit(rows, labels, NETWORK, spec, callback=callback)
    assert first_half.stop_reason == "cancelled"
    assert len(first_half.history) == 11
    resumed = fit(rows, labels, NETWORK, spec, resume_from=saved["bytes"])
    np.testing.assert_array_equal(
        resumed.classifier.model.parameters.theta, whole.classifier.model.parameters.theta
    )
    assert [m.train_loss for m in resumed.history] == [m.train_loss for m in whole.history]
    assert resumed.stop_reason == whole.stop_reason


def test_thread_count_never_changes_the_result():
    """Blocks are summed in lanes fixed by the shapes, not by the cores."""
    rng = np.random.default_rng(3)
    labels = np.arange(30_000) % 2
    rows = rng.standard_normal((30_000, 4)) + labels[:, None]
    model = build_model(NETWORK, 4, 2)
    model.initialize(rng)
    assert 2 * block_columns(model) < 30_000  # several blocks, several lanes
    spec = TrainingSpec(optimizer="gd", epochs=3, validation_fraction=0.1)
    one, two, three = (fit(rows, labels, NETWORK, spec, threads=t) for t in (1, 2, 3))
    for other in (two, three):
        np.testing.assert_array_equal(
            one.classifier.model.parameters.theta, other.classifier.model.parameters.theta
        )


def test_a_checkpoint_refuses_other_data(blobs):
    rows, labels = blobs
    callback, saved = interrupted_at(2)
    fit(rows, labels, NETWORK, TrainingSpec(epochs=5), callback=callback)
    with pytest.raises(CheckpointError, match="other data or specs"):
        fit(rows + 1.0, labels, NETWORK, TrainingSpec(epochs=5), resume_from=saved["bytes"])
    with pytest.raises(CheckpointError, match="other data or specs"):
        fit(rows, labels, NETWORK, TrainingSpec(epochs=5, l2=0.5), resume_from=saved["bytes"])


def test_more_epochs_can_be_granted_on_resume(blobs):
    rows, labels = blobs
    spec = TrainingSpec(epochs=5, early_stopping=None)
    saved = {}

    def keep(progress: Progress) -> None:
        saved["bytes"] = progress.checkpoint()

    assert fit(rows, labels, NETWORK, spec, callback=keep).stop_reason == "max_epochs"
    longer = TrainingSpec(epochs=8, early_stopping=None)
    resumed = fit(rows, labels, NETWORK, longer, resume_from=saved["bytes"])
    assert len(resumed.history) == 8
    whole = fit(rows, labels, NETWORK, longer)
    np.testing.assert_array_equal(
        resumed.classifier.model.parameters.theta, whole.classifier.model.parameters.theta
    )


def test_a_finished_checkpoint_resumes_to_the_same_end(blobs):
    rows, labels = blobs
    spec = TrainingSpec(
        epochs=300, validation_fraction=0.2, early_stopping=EarlyStopping(patience=3)
    )
    saved = {}

    def keep(progress: Progress) -> None:
        saved["bytes"] = progress.checkpoint()

    finished = fit(rows, labels, NETWORK, spec, callback=keep)
    assert finished.stop_reason == "early_stopped"
    again = fit(rows, labels, NETWORK, spec, resume_from=saved["bytes"])
    assert again.stop_reason == "early_stopped"
    assert len(again.history) == len(finished.history)
    np.testing.assert_array_equal(
        again.classifier.model.parameters.theta, finished.classifier.model.parameters.theta
    )


def test_a_diverged_history_survives_the_round_trip(blobs):
    rows, labels = blobs
    spec = TrainingSpec(optimizer="gd", learning_rate=1e300, epochs=5, validation_fraction=0.0)
    saved = {}

    def keep(progress: Progress) -> None:
        saved["bytes"] = progress.checkpoint()

    fit(rows, labels, NETWORK, spec, callback=keep)
    state = TrainingState.from_bytes(saved["bytes"])
    assert state.stop_reason == "diverged"
    assert np.isnan(state.history[-1].train_loss)


@pytest.mark.parametrize("damage", [b"", b"not a checkpoint", b"PK\x03\x04garbage"])
def test_a_damaged_checkpoint_is_refused_clearly(blobs, damage):
    rows, labels = blobs
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        fit(rows, labels, NETWORK, resume_from=damage)
