"""How good a classifier's probabilities are: the metrics scikit-learn computes, in NumPy.

    from engine import classification_metrics
    report = classification_metrics(y, classifier.predict_proba(X), classifier.classes)

Every number equals scikit-learn 1.9's to rounding (the tests hold it to 1e-9):
``log_loss``, ``roc_auc_score``, ``precision_recall_fscore_support(zero_division=0)``,
``confusion_matrix``, ``roc_curve`` and ``calibration_curve``, with ``labels=range(K)``
so that a class missing from y keeps its row and column. The report is JSON-ready: plain
floats, ints, lists and the labels as given; where a value is undefined it is None, never
NaN or inf.

Decisions scikit-learn does not take for us:

- Log loss clips each probability to [eps, 1 - eps] (eps = 2.2e-16, float64's) and does
  not renormalize rows, as scikit-learn 1.9 does: a true class given probability 0 costs
  -log(eps) = 36.04, not infinity.
- ROC AUC is None where scikit-learn gives NaN: with two classes, when y holds one class
  only. With more, "macro" is the mean over all K classes, and a class absent from y (or
  present in every row) has no AUC, so neither has the mean: None. "weighted" weighs each
  class by its rows, so an absent class weighs nothing and the average stays defined (the
  prevalence-weighted mean over the classes present) until fewer than two classes remain.
- ROC curves: the first threshold, scikit-learn's inf ("no row is called positive"), is
  None; a rate that is undefined (no positive rows, or no negative rows) is None as a
  whole; a curve of more than ``curve_points`` points keeps ``curve_points`` of them: its
  first and last, and those nearest to points evenly spaced along its length
  (engine.curves.RocCurve.thinned).
  AUC is always computed from the whole curve.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.curves import RocCurve, reliability_bins

CURVE_POINTS = 101  # most points a ROC curve keeps: enough to draw it, small to send
CALIBRATION_BINS = 10  # uniform bins of predicted probability, scikit-learn's default
ROW_SUM_TOLERANCE = 1e-5  # np.allclose's rtol: scikit-learn's multiclass AUC refuses more


def classification_metrics(
    y: np.ndarray | Sequence[int],
    proba: np.ndarray | Sequence[Sequence[float]],
    classes: Sequence[Any],
    *,
    curve_points: int = CURVE_POINTS,
    calibration_bins: int = CALIBRATION_BINS,
) -> dict[str, Any]:
    """The metrics of probabilities proba (m, K) for rows of true classes y (m,).

    y holds class indices 0..K-1 into classes (K,); proba's column k is P(class k | row),
    each row summing to 1. classes are only shown (``"class"`` fields), never computed with.
    Returns rows, accuracy, log_loss, roc_auc, per_class, macro, weighted,
    confusion_matrix, roc_curve and calibration (see the module docstring); ROC curves
    keep at most curve_points points, calibration curves use calibration_bins bins.
    Raises ValueError naming what is wrong with the inputs.
    """
    y, proba, labels = _validated(y, proba, classes, curve_points, calibration_bins)
    m, K = proba.shape
    predicted = np.argmax(proba, axis=1)  # (m,) ties go to the lowest index, as predict does
    confusion = np.bincount(y * K + predicted, minlength=K * K).reshape(K, K)  # (K, K)
    report: dict[str, Any] = {
        "rows": m,
        "accuracy": float(np.mean(predicted == y)),
        "log_loss": _log_loss(y, proba),
        "roc_auc": None,
        **_precision_recall_f1(confusion, labels),
        "confusion_matrix": confusion.tolist(),
    }
    if K == 2:  # the positive class is column 1, as scikit-learn's binary metrics take it
        positive = y == 1
        curve = RocCurve.of(positive, proba[:, 1])
        report["roc_auc"] = curve.auc()
        report["roc_curve"] = curve.to_json(curve_points)
        report["calibration"] = reliability_bins(positive, proba[:, 1], calibration_bins)
        return report
    aucs, curves, calibration = [], [], []
    for k, label in enumerate(labels):  # one class against the rest: O(m log m) each
        positive, score = y == k, np.ascontiguousarray(proba[:, k])
        curve = RocCurve.of(positive, score)
        aucs.append(curve.auc())
        curves.append({"class": label, **curve.to_json(curve_points)})
        calibration.append(
            {"class": label, "bins": reliability_bins(positive, score, calibration_bins)}
        )
    report["roc_auc"] = _average_auc(aucs, support=confusion.sum(axis=1))
    report["roc_curve"] = curves
    report["calibration"] = calibration
    return report


def _validated(
    y: Any, proba: Any, classes: Sequence[Any], curve_points: int, calibration_bins: int
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """(y (m,) intp, proba (m, K) float64, the labels as plain Python values) or ValueError."""
    labels = [label.item() if isinstance(label, np.generic) else label for label in classes]
    K = len(labels)
    if K < 2:
        raise ValueError(f"classes must hold at least 2 classes, got {K}")
    y, proba = np.asarray(y), np.asarray(proba)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (m,), got shape {y.shape}")
    if proba.ndim != 2 or proba.shape[1] != K:
        raise ValueError(f"proba must be 2-D (m, {K}) for {K} classes, got shape {proba.shape}")
    if proba.shape[0] != y.shape[0]:
        raise ValueError(f"y has {y.shape[0]} rows but proba has {proba.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError("no rows: y and proba are empty")
    if y.dtype.kind not in "iu":
        raise ValueError(f"y must hold integer class indices, got dtype {y.dtype}")
    if proba.dtype.kind not in "iuf":
        raise ValueError(f"proba must hold numbers, got dtype {proba.dtype}")
    outside = (y < 0) | (y >= K)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"y must be class indices 0..{K - 1}: row {i} holds {int(y[i])}")
    proba = proba.astype(np.float64, copy=False)
    if not np.isfinite(proba).all():
        raise ValueError("proba holds NaN or infinity")
    if proba.min() < 0 or proba.max() > 1:
        raise ValueError(f"proba must lie in [0, 1], found {proba.min()} to {proba.max()}")
    sums = proba.sum(axis=1)  # (m,)
    off = ~np.isclose(sums, 1.0, rtol=ROW_SUM_TOLERANCE)
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(f"proba rows must sum to 1: row {i} sums to {float(sums[i])!r}")
    if curve_points < 2:
        raise ValueError(f"curve_points must be at least 2 (first and last), got {curve_points}")
    if calibration_bins < 1:
        raise ValueError(f"calibration_bins must be at least 1, got {calibration_bins}")
    return y.astype(np.intp, copy=False), proba, labels


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean -log P(true class), each probability clipped to [eps, 1 - eps] first and rows
    left as they are: scikit-learn 1.9's log_loss, which no longer renormalizes rows."""
    eps = np.finfo(proba.dtype).eps
    true_class = np.clip(proba[np.arange(y.size), y], eps, 1 - eps)  # (m,)
    return float(np.mean(-np.log(true_class)))


def _precision_recall_f1(confusion: np.ndarray, labels: list[Any]) -> dict[str, Any]:
    """per_class, macro and weighted precision, recall and F1 from the confusion matrix
    (K, K) (rows true, columns predicted); a zero denominator gives 0 (zero_division=0)."""
    tp = np.diag(confusion)  # (K,)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)  # (K,), (K,)
    scores = {
        "precision": _divide(tp, predicted),
        "recall": _divide(tp, support),
        # scikit-learn's form, 2 tp / (2 tp + fp + fn): exact where precision and recall
        # would be rounded first, and 0 (not NaN) where both are 0.
        "f1": _divide(2 * tp, support + predicted),
    }
    per_class = [
        {
            "class": label,
            **{name: float(values[k]) for name, values in scores.items()},
            "support": int(support[k]),
        }
        for k, label in enumerate(labels)
    ]
    return {
        "per_class": per_class,
        "macro": {name: float(np.mean(values)) for name, values in scores.items()},
        "weighted": {
            name: float(np.average(values, weights=support)) for name, values in scores.items()
        },
    }


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator (K,) float64, 0 where the denominator is 0."""
    return numerator / np.where(denominator == 0, 1, denominator)


def _average_auc(aucs: list[float | None], support: np.ndarray) -> dict[str, float | None]:
    """{"macro", "weighted"} of the one-vs-rest AUCs (K,), None for an undefined class
    (absent from y, or in every row); support (K,) counts each class's rows."""
    defined = np.array([auc is not None for auc in aucs])
    values = np.array([0.0 if auc is None else auc for auc in aucs])  # (K,)
    # A class in every row (the only one present) is undefined but weighs all the rows:
    # then the weighted mean is undefined too. Absent classes weigh nothing.
    weighted_defined = bool(defined[support > 0].all())
    return {
        "macro": float(np.mean(values)) if defined.all() else None,
        "weighted": float(np.average(values, weights=support)) if weighted_defined else None,
    }
