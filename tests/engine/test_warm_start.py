"""fit(..., warm_start=parent): the parent's parameters, preprocessing and classes; a fresh
optimizer; every way a table or spec does not fit the parent listed in one ValueError."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from engine import (
    CheckpointError,
    EarlyStopping,
    InputColumn,
    ModelSpec,
    PreprocessingSpec,
    Progress,
    TrainingSpec,
    code_table,
    fit,
)
from tests.real_tables import REAL_TABLES, code_frame, split

NETWORK = ModelSpec(type="two_layer_network", hidden_units=8, activation="tanh")
FULL_BATCH = TrainingSpec(epochs=60, early_stopping=None)


def parent_loss(parent, rows: np.ndarray, labels: np.ndarray, l2: float) -> float:
    """J of the parent on coded rows (its own columns and codes): mean cross-entropy plus
    the L2 penalty over these m rows, as the engine's training loss counts it."""
    p = parent.predict_proba(rows)  # (m, K)
    index = np.searchsorted(np.asarray(parent.classes), labels)
    cross_entropy = -np.mean(np.log(p[np.arange(len(labels)), index]))
    return float(cross_entropy + parent.model.penalty(l2, len(labels)))


@pytest.fixture(scope="module")
def penguins():
    """(parent's frame, child's frame): two stratified halves of the penguins table."""
    table = REAL_TABLES["penguins"]
    first, second = split(table.load().dropna(subset=["sex"]), table.label, seed=3)
    return first, second, table.label


@pytest.fixture(scope="module")
def penguin_parent(penguins):
    first, _, label = penguins
    X, columns, y = code_frame(first, label)
    return fit(X, y, NETWORK, TrainingSpec(epochs=300), columns=columns).classifier


def test_first_epoch_loss_is_the_parents_loss_on_the_new_rows(penguins, penguin_parent):
    _, second, label = penguins
    # Without Torgersen the child's island column lists other levels, coded otherwise:
    # the child must code each row as the parent does (by level name), not by position.
    child_frame = second[second["island"] != "Torgersen"].reset_index(drop=True)
    X, columns, y = code_frame(child_frame, label)
    island = next(c for c in columns if c.name == "island")
    assert island.levels == ("Biscoe", "Dream")  # the parent's: Biscoe, Dream, Torgersen
    warm = fit(X.copy(), y, NETWORK, FULL_BATCH, columns=columns, warm_start=penguin_parent)
    cold = fit(X.copy(), y, NETWORK, FULL_BATCH, columns=columns)

    records = child_frame.drop(columns=[label]).to_dict("records")
    expected = parent_loss(penguin_parent, penguin_parent.code_records(records), y, l2=1.0)
    assert warm.history[0].train_loss == pytest.approx(expected, rel=1e-9)
    assert warm.history[0].train_loss < 0.3 * cold.history[0].train_loss
    assert cold.history[0].train_loss > 0.9  # ~log 3 from fresh weights


def test_the_parents_preprocessing_is_used_as_it_is(penguins, penguin_parent):
    _, second, label = penguins
    X, columns, y = code_frame(second, label)
    child = fit(X, y, NETWORK, FULL_BATCH, columns=columns, warm_start=penguin_parent).classifier
    assert child.transform.describe() == penguin_parent.transform.describe()
    np.testing.assert_array_equal(child.standardizer.mean, penguin_parent.standardizer.mean)
    np.testing.assert_array_equal(child.standardizer.scale, penguin_parent.standardizer.scale)
    assert child.classes == penguin_parent.classes
    assert child.training_spec.preprocessing == penguin_parent.training_spec.preprocessing


@pytest.fixture(scope="module")
def cancer():
    data = load_breast_cancer()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.target))
    half = len(order) // 2
    names = [str(n) for n in data.feature_names]
    return (
        data.data[order[:half]],
        data.target[order[:half]],
        data.data[order[half:]],
        (data.target[order[half:]]),
        names,
    )


def test_the_optimizer_starts_fresh(cancer):
    """Adam's first step moves every weight by about the learning rate (m/sqrt(v) = ±1);
    with the parent's moments carried over, the step would be their ratio instead."""
    X1, y1, X2, y2, names = cancer
    spec = TrainingSpec(epochs=200, early_stopping=None, learning_rate=0.01)
    parent = fit(X1, y1, ModelSpec(), spec, feature_names=names).classifier
    one = TrainingSpec(epochs=1, early_stopping=None, learning_rate=0.01)
    child = fit(X2, y2, ModelSpec(), one, feature_names=names, warm_start=parent).classifier
    step = np.abs(child.model.parameters.theta - parent.model.parameters.theta)
    assert step.max() == pytest.approx(0.01, rel=1e-3)
    assert np.median(step) == pytest.approx(0.01, rel=0.05)


def test_a_resumed_warm_start_equals_the_uninterrupted_one_bit_for_bit(cancer):
    X1, y1, X2, y2, names = cancer
    parent = fit(X1, y1, NETWORK, FULL_BATCH, feature_names=names).classifier
    spec = TrainingSpec(
        epochs=30, batch_size=64, validation_fraction=0.2, early_stopping=EarlyStopping(10)
    )
    kwargs = {"feature_names": names, "warm_start": parent}
    whole = fit(X2, y2, NETWORK, spec, **kwargs)
    saved = {}

    def crash_at_12(progress: Progress) -> bool:
        if progress.epoch == 12:
            saved["bytes"] = progress.checkpoint()
            return True
        return False

    assert fit(X2, y2, NETWORK, spec, callback=crash_at_12, **kwargs).stop_reason == "cancelled"
    resumed = fit(X2, y2, NETWORK, spec, resume_from=saved["bytes"], **kwargs)
    np.testing.assert_array_equal(
        resumed.classifier.model.parameters.theta, whole.classifier.model.parameters.theta
    )
    assert [m.train_loss for m in resumed.history] == [m.train_loss for m in whole.history]
    # The same checkpoint is no start for a cold fit: it belongs to the warm one.
    with pytest.raises(CheckpointError, match="warm_start"):
        fit(X2, y2, NETWORK, spec, feature_names=names, resume_from=saved["bytes"])


def test_float32_fine_tunes_a_float64_parent(cancer):
    X1, y1, X2, y2, names = cancer
    parent = fit(X1, y1, ModelSpec(), FULL_BATCH, feature_names=names).classifier
    spec = TrainingSpec(epochs=5, dtype="float32")
    child = fit(X2, y2, ModelSpec(), spec, feature_names=names, warm_start=parent)
    assert child.classifier.model.dtype == np.float32
    expected = parent_loss(parent, X2, y2, l2=1.0)
    assert child.history[0].train_loss == pytest.approx(expected, rel=1e-5)


def small_parent():
    """A network on columns a (numbers), b (categories x, y), c (numbers); labels 0, 1."""
    rng = np.random.default_rng(1)
    y = np.arange(40) % 2
    X, columns = code_table(
        {
            "a": rng.normal(size=40) + y,
            "b": np.where(y == 1, "x", "y").astype(object),
            "c": rng.normal(size=40),
        }
    )
    return fit(X, y, NETWORK, TrainingSpec(epochs=3), columns=columns).classifier


def test_every_difference_is_listed_in_one_error():
    parent = small_parent()
    X, columns = code_table(
        {
            "a": np.array(["1", "2", "3", "4"], dtype=object),  # categories, not numbers
            "c": np.zeros(4),
            "d": np.zeros(4),  # the parent never saw it
        }
    )  # and no "b"
    spec = ModelSpec(type="two_layer_network", hidden_units=4, activation="relu")
    with pytest.raises(ValueError, match=r"^cannot warm-start") as raised:
        fit(X, [0, 1, 2, 3], spec, TrainingSpec(epochs=2), columns=columns, warm_start=parent)
    assert str(raised.value) == (
        "cannot warm-start from this model: "
        "model.hidden_units: the parent model has 8, the request 4; "
        "model.activation: the parent model has 'tanh', the request 'relu'; "
        "missing columns: the data lacks the parent's input columns ['b']; "
        "extra columns: the parent model was not trained on ['d']; "
        "kind change: column 'a' is numeric in the parent model, categorical in the data; "
        "new classes: labels [2, 3] are not among the parent model's classes [0, 1]; "
        "a fixed output layer cannot learn a new class"
    )


def test_another_model_type_is_refused():
    parent = small_parent()
    X, columns = code_table(
        {"a": np.zeros(4), "b": np.array(["x", "y"] * 2, dtype=object), "c": np.zeros(4)}
    )
    with pytest.raises(
        ValueError, match=r"model\.type: the parent model has 'two_layer_network', "
    ):
        fit(
            X, [0, 1, 0, 1], ModelSpec(), TrainingSpec(epochs=2), columns=columns, warm_start=parent
        )


def test_other_preprocessing_is_refused_and_the_parents_is_accepted():
    parent = small_parent()
    X, columns = code_table(
        {"a": np.arange(4.0), "b": np.array(["x", "y", "x", "w"], dtype=object), "c": np.ones(4)}
    )
    other = TrainingSpec(epochs=2, preprocessing=PreprocessingSpec(impute="median"))
    with pytest.raises(ValueError, match="leave preprocessing out or give the parent's"):
        fit(X, [0, 1, 0, 1], NETWORK, other, columns=columns, warm_start=parent)
    same = TrainingSpec(epochs=2, preprocessing=parent.training_spec.preprocessing)
    child = fit(X, [0, 1, 0, 1], NETWORK, same, columns=columns, warm_start=parent).classifier
    # "w" is a level the parent never saw: coded unseen (all zeros), as a prediction does.
    assert child.transform.describe()[1]["levels"] == ["x", "y"]


def test_a_class_the_new_rows_lack_is_fine():
    parent = small_parent()
    X = np.array([[0.5, 0.0, 0.1], [1.5, 0.0, -0.2], [1.0, 0.0, 0.0]])
    columns = [InputColumn("a"), InputColumn("b", "categorical", ("x",)), InputColumn("c")]
    child = fit(X, [1, 1, 1], NETWORK, TrainingSpec(epochs=3), columns=columns, warm_start=parent)
    assert child.classifier.classes == [0, 1]
    assert len(child.history) == 3
