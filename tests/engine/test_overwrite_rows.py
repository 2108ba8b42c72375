"""fit(..., overwrite_rows=True): training on the caller's rows in place, bit for bit as on a copy.

The rows are permuted in place (training rows first, then validation rows),
standardized in place and trained on as views; the default path gathers copies
and never writes the caller's X. Both must give the same split, the same
standardization and the same θ, and the in-place path must allocate only a
small fraction of X.
"""

import tracemalloc
from dataclasses import asdict

import numpy as np
import pytest

from engine import EarlyStopping, ModelSpec, Progress, TrainingSpec, fit
from engine.data import prepare
from engine.preprocessing import chunk_rows, permute_rows_in_place, stratified_split

NETWORK = ModelSpec(type="two_layer_network", hidden_units=16, activation="tanh")


def table(m: int, n_x: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows (m, n_x) float64 far from standardized, labels from a noisy linear rule."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((m, n_x)) * rng.uniform(0.5, 20.0, n_x) + rng.uniform(-5, 5, n_x)
    score = rows[:, :3] @ np.array([1.0, -0.5, 0.25]) + rng.standard_normal(m)
    edges = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    return rows, np.searchsorted(edges, score)


def outcome(result) -> dict[str, object]:
    """Everything a fit decides, without the timings."""
    history = [{k: v for k, v in asdict(m).items() if k != "seconds"} for m in result.history]
    classifier = result.classifier
    return {
        "history": history,
        "stop_reason": result.stop_reason,
        "best_epoch": result.best_epoch,
        "n_train": result.n_train,
        "n_validation": result.n_validation,
        "gradient_norms": result.diagnostics.gradient_norms,
        "mean": classifier.standardizer.mean.tobytes(),
        "scale": classifier.standardizer.scale.tobytes(),
        "theta": classifier.model.parameters.theta.tobytes(),
        "dtype": classifier.model.parameters.dtype,
    }


SPECS = {
    "full-batch gd, float64, 2 classes, validation": (
        NETWORK,
        TrainingSpec(optimizer="gd", epochs=15, early_stopping=None, tolerance=0.0),
        2,
    ),
    "mini-batch adam, float32, 3 classes, validation, early stopping": (
        NETWORK,
        TrainingSpec(
            batch_size=256,
            epochs=40,
            learning_rate=0.05,
            dtype="float32",
            early_stopping=EarlyStopping(patience=2),
        ),
        3,
    ),
    "mini-batch momentum, float64, 3 classes, no validation, l2": (
        NETWORK,
        TrainingSpec(
            optimizer="momentum", batch_size=500, epochs=6, l2=0.5, validation_fraction=0.0
        ),
        3,
    ),
    "full-batch adam, float32, 2 classes, no validation": (
        NETWORK,
        TrainingSpec(epochs=10, dtype="float32", validation_fraction=0.0, early_stopping=None),
        2,
    ),
    "mini-batch unshuffled, float32, 2 classes, validation": (
        ModelSpec(type="two_layer_network", hidden_units=8, activation="relu"),
        TrainingSpec(batch_size=1000, shuffle=False, epochs=5, dtype="float32"),
        2,
    ),
    "lbfgs logistic regression, float64, 2 classes, validation": (
        ModelSpec(),
        TrainingSpec(optimizer="lbfgs", epochs=20, early_stopping=None),
        2,
    ),
}


@pytest.mark.parametrize(("model", "training", "n_classes"), SPECS.values(), ids=SPECS.keys())
def test_training_in_place_is_bit_identical_to_training_on_a_copy(model, training, n_classes):
    # 37 features: rows of 148 or 296 bytes, so the validation rows' view starts unaligned,
    # and 6000 rows: several permutation chunks and several blocks per pass, on 2 threads.
    rows, labels = table(6000, 37, n_classes)
    rows_before = rows.copy()
    copied = fit(rows, labels, model, training, threads=2)
    np.testing.assert_array_equal(rows, rows_before)  # the default never writes X

    buffer = rows.astype(training.dtype)
    in_place = fit(buffer, labels, model, training, threads=2, overwrite_rows=True)

    assert outcome(in_place) == outcome(copied)
    assert not np.array_equal(buffer, rows_before.astype(training.dtype))  # X was the buffer
    np.testing.assert_array_equal(
        in_place.classifier.predict_proba(rows), copied.classifier.predict_proba(rows)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("validation_fraction", [0.2, 0.0])
def test_the_splits_are_views_of_the_rows_equal_to_the_gathered_copies(dtype, validation_fraction):
    rows, labels = table(3000, 11, 3, seed=1)
    options = {"validation_fraction": validation_fraction, "dtype": np.dtype(dtype)}
    copied = prepare(rows, labels, rng=np.random.default_rng(5), **options)
    buffer = rows.astype(dtype)
    in_place = prepare(buffer, labels, rng=np.random.default_rng(5), overwrite_rows=True, **options)

    assert np.shares_memory(in_place.train.rows, buffer)
    assert in_place.train.rows.flags.c_contiguous
    assert in_place.validation.rows.flags.c_contiguous
    for part in ("train", "validation"):
        ours, theirs = getattr(in_place, part), getattr(copied, part)
        assert ours.rows.dtype == theirs.rows.dtype == dtype
        np.testing.assert_array_equal(ours.rows, theirs.rows)
        np.testing.assert_array_equal(ours.Y, theirs.Y)
        np.testing.assert_array_equal(ours.labels, theirs.labels)
    np.testing.assert_array_equal(in_place.standardizer.mean, copied.standardizer.mean)
    np.testing.assert_array_equal(in_place.standardizer.scale, copied.standardizer.scale)
    assert in_place.fingerprint() == copied.fingerprint()


def test_a_checkpoint_of_a_fit_on_a_copy_resumes_in_place_to_the_same_end():
    rows, labels = table(4000, 20, 2, seed=2)
    spec = TrainingSpec(batch_size=300, epochs=8, early_stopping=None)
    saved = {}

    def stop_at_three(progress: Progress) -> bool:
        saved["bytes"] = progress.checkpoint()
        return progress.epoch == 3

    whole = fit(rows, labels, NETWORK, spec)
    assert fit(rows, labels, NETWORK, spec, callback=stop_at_three).stop_reason == "cancelled"
    resumed = fit(
        rows.copy(), labels, NETWORK, spec, resume_from=saved["bytes"], overwrite_rows=True
    )
    assert outcome(resumed) == outcome(whole)


@pytest.mark.parametrize(
    "make_rows",
    [
        lambda rows: rows.astype(np.float32),  # not the training dtype (float64)
        lambda rows: np.asfortranarray(rows),  # not C order
        lambda rows: rows[:, ::2],  # not contiguous
        lambda rows: rows.astype(">f8"),  # not native byte order
    ],
    ids=["other-dtype", "fortran-order", "strided", "big-endian"],
)
def test_rows_that_cannot_be_the_buffer_are_copied_and_left_alone(make_rows):
    rows, labels = table(2000, 6, 2, seed=3)
    given = make_rows(rows)
    before = given.copy()
    spec = TrainingSpec(epochs=3)
    result = fit(given, labels, NETWORK, spec, overwrite_rows=True)
    np.testing.assert_array_equal(given, before)
    assert outcome(result) == outcome(fit(before, labels, NETWORK, spec))


def test_read_only_rows_are_copied_and_left_alone():
    rows, labels = table(2000, 6, 2, seed=4)
    rows.flags.writeable = False
    before = rows.copy()
    fit(rows, labels, NETWORK, TrainingSpec(epochs=2), overwrite_rows=True)
    np.testing.assert_array_equal(rows, before)


def test_a_non_finite_value_is_named_by_its_original_row_before_anything_moves():
    rows, labels = table(3000, 200, 2, seed=5)
    row = 3 * chunk_rows(rows) + 17  # in a later chunk of the check (chunks of 655 rows)
    rows[row, 29] = np.inf
    before = rows.copy()
    with pytest.raises(ValueError, match=f"row {row}, column 29 .* is inf: not finite"):
        fit(rows, labels, overwrite_rows=True)
    np.testing.assert_array_equal(rows, before)


@pytest.mark.parametrize("m", [0, 1, 2, 7, 3000])
@pytest.mark.parametrize("kind", ["random", "identity", "reversed", "stable-partition"])
def test_permute_rows_in_place_equals_gathering_by_the_order(m, kind):
    rng = np.random.default_rng(m)
    rows = rng.standard_normal((m, 512))  # chunks of 256 rows: 3000 rows take 12
    order = {
        "random": rng.permutation(m),
        "identity": np.arange(m),
        "reversed": np.arange(m)[::-1].copy(),
        "stable-partition": np.concatenate(
            stratified_split(rng.integers(0, 3, m), 0.3, rng) if m > 1 else [np.arange(m)]
        ),
    }[kind]
    expected = rows[order]
    assert permute_rows_in_place(rows, order) is rows
    np.testing.assert_array_equal(rows, expected)


@pytest.mark.parametrize(
    "order", [[0, 1, 1], [0, 1], [0, 1, 3], [-1, 0, 1], [0.0, 1.0, 2.0]], ids=str
)
def test_permute_rows_in_place_refuses_an_order_that_is_not_a_permutation(order):
    rows = np.arange(6.0).reshape(3, 2)
    with pytest.raises(ValueError, match="must be a permutation of the 3 rows"):
        permute_rows_in_place(rows, np.array(order))
    np.testing.assert_array_equal(rows, np.arange(6.0).reshape(3, 2))


def peak_bytes(function, *args, **kwargs) -> int:
    """The peak of what ``function`` allocates beyond what exists when it is called."""
    tracemalloc.start()
    try:
        function(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("dtype", "m", "batch_size"),
    [("float64", 32_768, 512), ("float32", 65_536, None)],
    ids=["float64-mini-batch", "float32-full-batch"],
)
def test_training_in_place_allocates_a_small_fraction_of_the_rows(dtype, m, batch_size):
    """About 25 bytes a sample (labels, targets, index maps, the epoch's shuffle) and ~1 MiB
    chunks and blocks: well under 0.15 X on 26 MB of rows. A copy would be 1 X."""
    rows, labels = table(m, 100, 2, seed=6)
    rows = rows.astype(dtype)
    training = TrainingSpec(batch_size=batch_size, epochs=2, dtype=dtype, early_stopping=None)
    model = ModelSpec(type="two_layer_network", hidden_units=32)

    # Two threads: each has its own block workspace, so the fixed part depends on the count.
    in_place = peak_bytes(fit, rows.copy(), labels, model, training, threads=2, overwrite_rows=True)
    copying = peak_bytes(fit, rows, labels, model, training, threads=2)

    assert in_place < 0.15 * rows.nbytes, f"{in_place / rows.nbytes:.3f} X"
    assert copying > 1.0 * rows.nbytes  # the measure sees a copy when there is one
