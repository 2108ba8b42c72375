"""A row's predicted probabilities are the same bits whatever rows share its batch.

Asserted bit for bit (array_equal, not a tolerance), on real data sets, for both models,
every activation, both output layers (breast cancer: sigmoid; wine and digits: softmax)
and both dtypes. CI runs this file under two OpenBLAS kernels; the forward pass that
predictions use calls no BLAS, so the answers do not depend on the kernel either.
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

from engine import ACTIVATION_NAMES, ModelSpec, TrainingSpec, fit
from engine.classifier import PREDICT_ROWS, Classifier
from engine.invariant import affine, block_columns, tree_sum

LOADERS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}
SPECS = [ModelSpec(type="logistic_regression")] + [
    ModelSpec(type="two_layer_network", hidden_units=16, activation=activation)
    for activation in ACTIVATION_NAMES
]


def spec_id(spec: ModelSpec) -> str:
    return spec.type if spec.type == "logistic_regression" else f"network-{spec.activation}"


@pytest.fixture(scope="module", params=sorted(LOADERS))
def data(request) -> tuple[np.ndarray, np.ndarray]:
    return LOADERS[request.param](return_X_y=True)


def trained(rows: np.ndarray, labels: np.ndarray, spec: ModelSpec, dtype: str) -> Classifier:
    training = TrainingSpec(epochs=15, dtype=dtype, seed=3, early_stopping=None)
    return fit(rows, labels, spec, training).classifier


def batch_of_1000(rows: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1,000 rows drawn with repetition, so a row lands at many positions: (index, rows)."""
    index = np.random.default_rng(seed).choice(len(rows), size=1000)
    return index, rows[index]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_id)
def test_each_row_alone_equals_that_row_in_a_batch_of_1000_and_shuffled(data, spec, dtype):
    rows, labels = data
    classifier = trained(rows, labels, spec, dtype)
    index, batch = batch_of_1000(rows)
    in_batch = classifier.predict_proba(batch)
    distinct = np.unique(index)
    alone = np.vstack([classifier.predict_proba(rows[i : i + 1]) for i in distinct])
    for position, row in enumerate(index):  # every occurrence, at every position
        np.testing.assert_array_equal(in_batch[position], alone[np.searchsorted(distinct, row)])
    order = np.random.default_rng(1).permutation(len(batch))
    np.testing.assert_array_equal(classifier.predict_proba(batch[order]), in_batch[order])
    whole = classifier.predict_proba(rows)
    np.testing.assert_array_equal(whole[index], in_batch)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rows_across_block_and_chunk_boundaries_equal_the_row_alone(dtype):
    """Past one block of the forward pass and one PREDICT_ROWS chunk of standardization."""
    rows, labels = load_digits(return_X_y=True)
    spec = ModelSpec(type="two_layer_network", hidden_units=24, activation="tanh")
    classifier = trained(rows, labels, spec, dtype)
    m = PREDICT_ROWS + 3 * block_columns(classifier.model) + 5
    index = np.random.default_rng(2).choice(len(rows), size=m)
    in_batch = classifier.predict_proba(rows[index])
    for position in [0, 1, PREDICT_ROWS - 1, PREDICT_ROWS, PREDICT_ROWS + 1, m - 1]:
        alone = classifier.predict_proba(rows[index[position] : index[position] + 1])
        np.testing.assert_array_equal(in_batch[position], alone[0])
    np.testing.assert_array_equal(in_batch, classifier.predict_proba(rows)[index])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_subset_predicts_what_the_whole_predicts(dtype):
    """scikit-learn's check_methods_subset_invariance, on every split of breast cancer."""
    rows, labels = load_breast_cancer(return_X_y=True)
    spec = ModelSpec(type="two_layer_network", hidden_units=8, activation="sigmoid")
    classifier = trained(rows, labels, spec, dtype)
    whole = classifier.predict_proba(rows)
    for size in [1, 2, 7, 15, 16, 17, 100, 568]:
        for start in range(0, len(rows) - size + 1, 97):
            part = classifier.predict_proba(rows[start : start + size])
            np.testing.assert_array_equal(part, whole[start : start + size])


def test_invariant_forward_pass_computes_the_notes_probabilities():
    """The fixed-order sums are a reordering of W X + b, not another function."""
    rows, labels = load_wine(return_X_y=True)
    classifier = trained(rows, labels, SPECS[1], "float64")
    X = classifier.standardizer.transform(rows, np.float64).T  # (n_x, m)
    blas = classifier.model.probabilities(np.ascontiguousarray(X)).T  # (m, K)
    np.testing.assert_allclose(classifier.predict_proba(rows), blas, rtol=1e-12, atol=1e-15)


def reference_tree_sum(terms: list[float]) -> float:
    """The pairing tree_sum documents, one scalar at a time: halves added, odd one up."""
    while len(terms) > 1:
        half = len(terms) // 2
        paired = [terms[i] + terms[i + half] for i in range(half)]
        terms = paired + terms[2 * half :]
    return terms[0]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 30, 31, 64])
def test_tree_sum_adds_in_the_order_fixed_by_n_alone(n):
    rng = np.random.default_rng(n)
    P = rng.standard_normal((n, 3, 32)) * 10.0 ** rng.integers(-8, 8, (n, 1, 1))
    expected = np.array(
        [[reference_tree_sum(P[:, i, j].tolist()) for j in range(P.shape[2])] for i in range(3)]
    )
    np.testing.assert_array_equal(tree_sum(P.copy()), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_affine_is_w_x_plus_b(dtype):
    rng = np.random.default_rng(0)
    W, X, b = (rng.standard_normal(s).astype(dtype) for s in [(7, 30), (30, 48), (7, 1)])
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(affine(W, X, b), W @ X + b, rtol=tolerance, atol=tolerance)
