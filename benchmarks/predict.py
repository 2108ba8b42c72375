"""What batch-invariant predictions cost: the engine's predict_proba against BLAS peers.

    python benchmarks/predict.py                 # breast cancer and digits, 1 to 100,000 rows
    make bench-predict

``Classifier.predict_proba`` sums every W X in an order fixed by the shapes
(engine/invariant.py), so a row's probabilities are the same bits in any batch. The
peers, timed on the same rows in the same run:

- BLAS forward: the same model's forward pass with ``W @ X`` (what predictions ran before
  the fixed-order sums; not batch-invariant);
- scikit-learn: ``MLPClassifier.predict_proba`` holding the same weights (BLAS too).

Each figure is the best of ``--repeats`` timings of a loop that runs for about 0.2 s.
"""

# ruff: noqa: E402  (the engine can only be imported once sys.path is fixed, below)

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from engine import Classifier, ModelSpec, TrainingSpec, fit
from engine.workspace import Workspace

SIZES = [1, 32, 1000, 100_000]
DATA = {"breast cancer (30 x 32 x 1)": load_breast_cancer, "digits (64 x 32 x 10)": load_digits}


def seconds_per_call(function: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` mean call times, each over a loop of about 0.2 s."""
    start = time.perf_counter()
    function()
    calls = max(1, int(0.2 / max(time.perf_counter() - start, 1e-7)))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def blas_forward(classifier: Classifier, rows: np.ndarray) -> np.ndarray:
    """The same probabilities through W @ X: (m, n_y)."""
    X = classifier.standardizer.transform(rows, classifier.model.dtype).T  # (n_x, m)
    return classifier.model.output.probabilities(classifier.model.block_logits(X, Workspace())).T


def sklearn_twin(classifier: Classifier, rows: np.ndarray, labels: np.ndarray) -> MLPClassifier:
    """An MLPClassifier holding the engine's weights, fed the standardized rows."""
    p = classifier.model.parameters
    twin = MLPClassifier(hidden_layer_sizes=(p["W1"].shape[0],), activation="tanh", max_iter=1)
    with warnings.catch_warnings():  # one iteration only builds the layers; weights follow
        warnings.simplefilter("ignore", ConvergenceWarning)
        twin.fit(classifier.standardizer.transform(rows[:50], np.float64), labels[:50])
    twin.coefs_ = [p["W1"].T.copy(), p["W2"].T.copy()]
    twin.intercepts_ = [p["b1"][:, 0].copy(), p["b2"][:, 0].copy()]
    return twin


def table_row(
    name: str,
    dtype: str,
    classifier: Classifier,
    twin: MLPClassifier,
    rows: np.ndarray,
    size: int,
    repeats: int,
) -> str:
    batch = rows[np.random.default_rng(0).choice(len(rows), size=size)]
    scaled = classifier.standardizer.transform(batch, np.float64)
    ours = seconds_per_call(lambda: classifier.predict_proba(batch), repeats)
    blas = seconds_per_call(lambda: blas_forward(classifier, batch), repeats)
    peer = seconds_per_call(lambda: twin.predict_proba(scaled), repeats)
    return (
        f"| {name} | {dtype} | {size:,} | {ours * 1e6:,.1f} | {blas * 1e6:,.1f} | "
        f"{ours / blas:.2f}x | {peer * 1e6:,.1f} | {ours / peer:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| data | dtype | rows | engine (invariant) µs | BLAS forward µs | ratio |", end="")
    print(" sklearn µs | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for name, load in DATA.items():
        rows, labels = load(return_X_y=True)
        for dtype in ["float64", "float32"]:
            spec = ModelSpec(type="two_layer_network", hidden_units=32, activation="tanh")
            classifier = fit(rows, labels, spec, TrainingSpec(epochs=5, dtype=dtype)).classifier
            twin = sklearn_twin(classifier, rows, labels)
            for size in SIZES:
                print(table_row(name, dtype, classifier, twin, rows, size, args.repeats))


if __name__ == "__main__":
    main()
