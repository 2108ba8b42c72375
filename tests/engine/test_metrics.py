"""classification_metrics equals scikit-learn's metrics to 1e-9, on real data and at the edges.

The probabilities are real: the engine itself, trained briefly on data sets shipped inside
scikit-learn and palmerpenguins (string labels), predicts held-out rows. Every report is
compared field by field with one built from scikit-learn's own functions
(``scikit_learn_report``), and must survive ``json.dumps(allow_nan=False)``.
"""

import functools
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from palmerpenguins import load_penguins
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import train_test_split

from engine import (
    CALIBRATION_BINS,
    CURVE_POINTS,
    ModelSpec,
    TrainingSpec,
    classification_metrics,
    code_table,
    fit,
)

TOLERANCE = {"rel": 1e-9, "abs": 1e-9}
EPS = np.finfo(np.float64).eps
MODEL_TYPES = ["logistic_regression", "two_layer_network"]
JSON_LEAVES = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Predictions:
    """A classifier's probabilities for rows whose true classes are known."""

    y: np.ndarray  # (m,) class indices into classes
    proba: np.ndarray  # (m, K) float64, columns in classes order
    classes: list[Any]  # (K,) the labels


def _penguins(label: str) -> tuple[np.ndarray, np.ndarray]:
    """Palmer penguins' rows with no missing cell, coded, and their string labels."""
    frame = load_penguins().dropna().reset_index(drop=True)
    features = [name for name in frame.columns if name != label]
    X, _ = code_table({name: frame[name].to_numpy() for name in features})
    return X, frame[label].to_numpy(dtype=str)


DATA_SETS = {
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "penguin_sex": lambda: _penguins("sex"),  # female / male
    "iris": lambda: load_iris(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "digits": lambda: load_digits(return_X_y=True),
    "penguin_species": lambda: _penguins("species"),  # Adelie / Chinstrap / Gentoo
}


def _predictions(classifier, X: np.ndarray, labels: np.ndarray) -> Predictions:
    classes = classifier.classes
    index = {label: k for k, label in enumerate(classes)}
    y = np.array([index[label] for label in labels.tolist()])
    return Predictions(y, classifier.predict_proba(X), classes)


@functools.cache
def held_out(data_set: str, model_type: str) -> Predictions:
    """The engine's probabilities (30 epochs) for a stratified quarter it never saw."""
    X, labels = DATA_SETS[data_set]()
    X_train, X_test, y_train, y_test = train_test_split(
        X, labels, test_size=0.25, stratify=labels, random_state=0
    )
    result = fit(X_train, y_train, ModelSpec(type=model_type), TrainingSpec(epochs=30))
    return _predictions(result.classifier, X_test, y_test)


@functools.cache
def weak_on_every_row(data_set: str, columns: tuple[int, ...]) -> Predictions:
    """A logistic regression on a few columns only, scoring every row: a poor ranking,
    so a ROC curve with hundreds of corners."""
    X, labels = DATA_SETS[data_set]()
    X = X[:, list(columns)]
    result = fit(X, labels, ModelSpec(), TrainingSpec(epochs=30))
    return _predictions(result.classifier, X, labels)


# scikit-learn's side ------------------------------------------------------------------


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _sklearn_curve(positive: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    fpr, tpr, thresholds = roc_curve(positive.astype(int), score)
    assert thresholds[0] == np.inf
    return {
        "fpr": None if np.isnan(fpr).all() else fpr.tolist(),
        "tpr": None if np.isnan(tpr).all() else tpr.tolist(),
        "thresholds": [None, *thresholds[1:].tolist()],
    }


def _sklearn_bins(positive: np.ndarray, score: np.ndarray) -> list[dict[str, Any]]:
    fraction, mean = calibration_curve(positive.astype(int), score, n_bins=CALIBRATION_BINS)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], score), minlength=CALIBRATION_BINS)
    counts = counts[counts > 0].tolist()  # calibration_curve returns no counts: sklearn's bins
    return [
        {"mean_predicted": m, "fraction_positive": f, "count": c}
        for m, f, c in zip(mean.tolist(), fraction.tolist(), counts, strict=True)
    ]


def scikit_learn_report(p: Predictions) -> dict[str, Any]:
    """The report as scikit-learn computes it (curves whole: never thinned)."""
    y, proba, classes = p.y, p.proba, p.classes
    K = len(classes)
    labels = list(range(K))
    y_pred = np.argmax(proba, axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, y_pred, labels=labels, zero_division=0
    )
    averages = {
        average: dict(
            zip(
                ("precision", "recall", "f1"),
                precision_recall_fscore_support(
                    y, y_pred, labels=labels, average=average, zero_division=0
                )[:3],
                strict=True,
            )
        )
        for average in ("macro", "weighted")
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # one class: NaN, tested
        if K == 2:
            roc_auc = _none_if_nan(roc_auc_score(y, proba[:, 1]))
            curves = _sklearn_curve(y == 1, proba[:, 1])
            calibration = _sklearn_bins(y == 1, proba[:, 1])
        else:
            roc_auc = {
                average: _none_if_nan(
                    roc_auc_score(y, proba, multi_class="ovr", average=average, labels=labels)
                )
                for average in ("macro", "weighted")
            }
            curves = [
                {"class": c, **_sklearn_curve(y == k, proba[:, k])} for k, c in enumerate(classes)
            ]
            calibration = [
                {"class": c, "bins": _sklearn_bins(y == k, proba[:, k])}
                for k, c in enumerate(classes)
            ]
    return {
        "rows": len(y),
        "accuracy": float(np.mean(y_pred == y)),
        "log_loss": log_loss(y, proba, labels=labels),
        "roc_auc": roc_auc,
        "per_class": [
            {
                "class": c,
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, c in enumerate(classes)
        ],
        "macro": averages["macro"],
        "weighted": averages["weighted"],
        "confusion_matrix": confusion_matrix(y, y_pred, labels=labels).tolist(),
        "roc_curve": curves,
        "calibration": calibration,
    }


# comparisons --------------------------------------------------------------------------


def assert_strict_json(value: Any) -> None:
    """Plain Python all the way down (no NumPy scalars), and no NaN or infinity."""
    json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        assert all(type(key) is str for key in value)
        for item in value.values():
            assert_strict_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_strict_json(item)
    else:
        assert type(value) in JSON_LEAVES, f"{value!r} is a {type(value)}"


def assert_same(ours: Any, theirs: Any, where: str = "report") -> None:
    """Same structure, same keys, same labels and counts; floats within 1e-9."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), where
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), where
        assert len(ours) == len(theirs), where
        for i, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(mine, reference, f"{where}[{i}]")
    elif type(theirs) is float:
        assert type(ours) is float, f"{where}: {ours!r}"
        assert ours == pytest.approx(theirs, **TOLERANCE), where
    else:  # None, ints, labels (strings, bools, numbers)
        assert type(ours) is type(theirs), f"{where}: {ours!r} vs {theirs!r}"
        assert ours == theirs, where


def assert_equals_scikit_learn(p: Predictions, **options: Any) -> dict[str, Any]:
    """Our report equals scikit-learn's in every field; returns ours."""
    ours = classification_metrics(p.y, p.proba, p.classes, **options)
    assert_strict_json(ours)
    assert_same(ours, scikit_learn_report(p))
    return ours


def curves_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    curves = report["roc_curve"]
    return [curves] if isinstance(curves, dict) else curves


# real data ----------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("data_set", list(DATA_SETS))
def test_every_field_equals_scikit_learn_on_real_data(data_set, model_type):
    p = held_out(data_set, model_type)
    for curve in curves_of(scikit_learn_report(p)):  # short enough to be sent whole
        assert len(curve["thresholds"]) <= CURVE_POINTS
    report = assert_equals_scikit_learn(p)
    assert report["rows"] == len(p.y)
    assert [entry["class"] for entry in report["per_class"]] == p.classes
    if len(p.classes) > 2:
        assert [curve["class"] for curve in report["roc_curve"]] == p.classes
        assert [curve["class"] for curve in report["calibration"]] == p.classes


def test_string_labels_are_shown_as_given():
    p = held_out("penguin_species", "logistic_regression")
    report = classification_metrics(p.y, p.proba, p.classes)
    assert_strict_json(report)
    assert [entry["class"] for entry in report["per_class"]] == ["Adelie", "Chinstrap", "Gentoo"]


def test_numpy_scalar_and_bool_labels_come_out_as_plain_python():
    p = held_out("breast_cancer", "two_layer_network")
    for classes, plain in (
        (np.array([0, 1]), [0, 1]),
        (np.array([2.5, 7.0]), [2.5, 7.0]),
        (np.array(["no", "yes"]), ["no", "yes"]),
        ([False, True], [False, True]),
    ):
        report = classification_metrics(p.y, p.proba, list(classes))
        assert_strict_json(report)
        shown = [entry["class"] for entry in report["per_class"]]
        assert shown == plain
        assert [type(label) for label in shown] == [type(label) for label in plain]


# edges --------------------------------------------------------------------------------


def _one_hot(index: np.ndarray, K: int) -> np.ndarray:
    return np.eye(K)[index]  # (m, K) rows of exact 0.0 and 1.0


@pytest.mark.parametrize("data_set", ["breast_cancer", "iris"])
def test_perfect_predictions(data_set):
    p = held_out(data_set, "logistic_regression")
    perfect = Predictions(p.y, _one_hot(p.y, len(p.classes)), p.classes)
    report = assert_equals_scikit_learn(perfect)
    assert report["accuracy"] == 1.0
    assert report["log_loss"] == pytest.approx(-np.log(1 - EPS), rel=1e-12)  # clipped at 1 - eps
    assert np.array_equal(report["confusion_matrix"], np.diag(np.bincount(p.y)))
    auc = report["roc_auc"]
    assert auc == 1.0 if len(p.classes) == 2 else auc == {"macro": 1.0, "weighted": 1.0}
    assert all(entry["f1"] == 1.0 for entry in report["per_class"])


def test_probabilities_of_exactly_0_and_1_are_clipped_in_the_log_loss():
    p = held_out("breast_cancer", "two_layer_network")
    predicted = np.argmax(p.proba, axis=1)
    certain = Predictions(p.y, _one_hot(predicted, 2), p.classes)  # certain, and some wrong
    report = assert_equals_scikit_learn(certain)
    wrong = np.mean(predicted != p.y)
    assert 0 < wrong < 1
    # A wrong certainty costs -log(eps), a right one -log(1 - eps): finite, not inf.
    expected = wrong * -np.log(EPS) + (1 - wrong) * -np.log(1 - EPS)
    assert report["log_loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("data_set", ["breast_cancer", "wine"])
def test_tied_scores_share_one_threshold(data_set):
    p = held_out(data_set, "two_layer_network")
    rounded = np.round(p.proba, 1)  # ties everywhere; some land on calibration bin edges
    rounded[:, 0] = 1 - rounded[:, 1:].sum(axis=1)
    assert (rounded[:, 0] >= 0).all()
    tied = Predictions(p.y, rounded, p.classes)
    report = assert_equals_scikit_learn(tied)
    for curve in curves_of(report):
        thresholds = curve["thresholds"][1:]
        assert len(set(thresholds)) == len(thresholds) < len(p.y)  # one threshold per value
        assert np.all(np.diff(thresholds) < 0)


def test_scores_on_calibration_bin_edges_fall_as_scikit_learn_puts_them():
    # A score on an inner edge falls in the bin below it: 0.1 joins 0.0 in the first bin
    # (mean 0.05); 0.3 is below linspace's 0.30000000000000004, so third bin; 0.5 fifth;
    # 1.0 the last bin, not an eleventh. floor(10 p) would put 0.1 alone in the second.
    p = held_out("breast_cancer", "logistic_regression")
    edges = np.array([0.0, 0.1, 0.3, 0.5, 1.0])
    score = edges[np.arange(len(p.y)) % edges.size]
    on_edges = Predictions(p.y, np.column_stack([1 - score, score]), p.classes)
    report = assert_equals_scikit_learn(on_edges)
    means = [bin_["mean_predicted"] for bin_ in report["calibration"]]
    assert means == pytest.approx([0.05, 0.3, 0.5, 1.0], **TOLERANCE)
    counts = np.bincount(np.arange(len(p.y)) % edges.size, minlength=edges.size)
    assert [bin_["count"] for bin_ in report["calibration"]] == [counts[0] + counts[1], *counts[2:]]


def test_a_class_absent_from_y_leaves_macro_auc_undefined_and_weighted_defined():
    p = held_out("iris", "two_layer_network")
    present = p.y != 2
    absent = Predictions(p.y[present], p.proba[present], p.classes)
    report = assert_equals_scikit_learn(absent)
    assert report["roc_auc"]["macro"] is None
    assert 0.5 < report["roc_auc"]["weighted"] <= 1.0  # over the two classes present
    assert report["per_class"][2]["support"] == 0
    assert report["per_class"][2]["recall"] == 0.0  # zero_division=0
    assert report["roc_curve"][2]["tpr"] is None  # no positive row: no true-positive rate
    assert report["roc_curve"][2]["fpr"][-1] == 1.0
    assert all(bin_["fraction_positive"] == 0.0 for bin_ in report["calibration"][2]["bins"])


@pytest.mark.parametrize("data_set", ["breast_cancer", "penguin_species"])
def test_only_one_class_present_leaves_the_auc_undefined(data_set):
    p = held_out(data_set, "logistic_regression")
    only = p.y == 1
    one_class = Predictions(p.y[only], p.proba[only], p.classes)
    report = assert_equals_scikit_learn(one_class)
    if len(p.classes) == 2:
        assert report["roc_auc"] is None
        assert report["roc_curve"]["fpr"] is None  # no negative row
        assert report["roc_curve"]["tpr"][-1] == 1.0
    else:
        assert report["roc_auc"] == {"macro": None, "weighted": None}
        assert report["roc_curve"][1]["fpr"] is None
        assert report["roc_curve"][0]["tpr"] is None


@pytest.mark.parametrize("data_set", ["penguin_sex", "digits"])
def test_a_single_row(data_set):
    p = held_out(data_set, "two_layer_network")
    one = Predictions(p.y[3:4], p.proba[3:4], p.classes)
    report = assert_equals_scikit_learn(one)
    assert report["rows"] == 1
    assert sum(map(sum, report["confusion_matrix"])) == 1


def test_the_first_threshold_is_none_and_the_curve_starts_at_the_origin():
    p = held_out("breast_cancer", "logistic_regression")
    report = classification_metrics(p.y, p.proba, p.classes)
    assert_strict_json(report)
    curve = report["roc_curve"]
    assert curve["thresholds"][0] is None  # scikit-learn's inf: no row called positive
    assert (curve["fpr"][0], curve["tpr"][0]) == (0.0, 0.0)
    assert curve["thresholds"][1] == p.proba[:, 1].max()
    assert curve["thresholds"][-1] == p.proba[:, 1].min()


# long curves --------------------------------------------------------------------------

LONG_CURVES = {
    "breast_cancer": ("breast_cancer", (1,)),  # mean texture alone: 263 points
    "digits": ("digits", (20, 21, 22, 23)),  # four pixels: about 400 points a digit
}


@pytest.mark.parametrize("curve_points", [CURVE_POINTS, 12, 2])
@pytest.mark.parametrize("name", list(LONG_CURVES))
def test_a_long_curve_is_cut_to_curve_points_keeping_its_ends_and_its_shape(name, curve_points):
    p = weak_on_every_row(*LONG_CURVES[name])
    report = classification_metrics(p.y, p.proba, p.classes, curve_points=curve_points)
    assert_strict_json(report)
    whole = curves_of(scikit_learn_report(p))
    for ours, theirs in zip(curves_of(report), whole, strict=True):
        assert len(theirs["thresholds"]) > CURVE_POINTS
        assert len(ours["thresholds"]) == curve_points  # the whole budget, no more
        # Every point kept is one of scikit-learn's, in order, the first and last among them.
        reference = {t: i for i, t in enumerate(theirs["thresholds"])}
        kept = [reference[t] for t in ours["thresholds"]]
        assert kept[0] == 0
        assert kept[-1] == len(theirs["thresholds"]) - 1
        assert np.all(np.diff(kept) > 0)
        for rate in ("fpr", "tpr"):
            assert ours[rate] == pytest.approx([theirs[rate][i] for i in kept], **TOLERANCE)
        # Spread evenly along the curve's length (the documented rule, not evenly by index):
        # neighbours lie at most one spacing plus the longest segment apart along it.
        segments = np.hypot(np.diff(theirs["fpr"]), np.diff(theirs["tpr"]))
        along = np.r_[0.0, np.cumsum(segments)]
        spacing = along[-1] / (curve_points - 1)
        assert np.diff(along[kept]).max() <= spacing + segments.max() + 1e-12
        if curve_points == CURVE_POINTS:
            # The shape survives: the thinned curve encloses nearly the same area.
            area = np.trapezoid(ours["tpr"], ours["fpr"])
            assert area == pytest.approx(np.trapezoid(theirs["tpr"], theirs["fpr"]), abs=5e-3)
    # The AUC is the whole curve's, never the thinned one's.
    assert_same(report["roc_auc"], scikit_learn_report(p)["roc_auc"])


@pytest.mark.parametrize("name", list(LONG_CURVES))
def test_a_long_curve_within_curve_points_is_sent_whole(name):
    p = weak_on_every_row(*LONG_CURVES[name])
    assert_equals_scikit_learn(p, curve_points=len(p.y) + 1)


# inputs -------------------------------------------------------------------------------

P2 = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])


@pytest.mark.parametrize(
    ("y", "proba", "classes", "options", "message"),
    [
        ([0, 1], P2, ["a", "b"], {}, r"y has 2 rows but proba has 3"),
        ([0, 1, 2], P2, ["a", "b"], {}, r"y must be class indices 0\.\.1: row 2 holds 2"),
        ([0, -1, 1], P2, ["a", "b"], {}, r"row 1 holds -1"),
        ([0, 1, 1], P2[:, :1], ["a", "b"], {}, r"proba must be 2-D \(m, 2\).*\(3, 1\)"),
        ([0, 1, 1], P2[:, 1], ["a", "b"], {}, r"proba must be 2-D \(m, 2\).*\(3,\)"),
        ([0, 1, 1], P2, ["a", "b", "c"], {}, r"proba must be 2-D \(m, 3\)"),
        ([], np.empty((0, 2)), ["a", "b"], {}, r"no rows"),
        ([[0, 1, 1]], P2, ["a", "b"], {}, r"y must be 1-D"),
        ([0.0, 1.0, 1.0], P2, ["a", "b"], {}, r"y must hold integer class indices"),
        ([0, 1, 1], P2, ["a"], {}, r"at least 2 classes"),
        ([0, 1, 1], P2 * 1.5, ["a", "b"], {}, r"proba must lie in \[0, 1\]"),
        ([0, 1, 1], P2 - 0.25, ["a", "b"], {}, r"proba must lie in \[0, 1\]"),
        ([0, 1, 1], P2 * 0.9, ["a", "b"], {}, r"rows must sum to 1: row 0 sums to 0\.9"),
        ([0, 1, 1], np.where(P2 == 0.5, np.nan, P2), ["a", "b"], {}, r"NaN or infinity"),
        ([0, 1, 1], P2, ["a", "b"], {"curve_points": 1}, r"curve_points must be at least 2"),
        ([0, 1, 1], P2, ["a", "b"], {"calibration_bins": 0}, r"calibration_bins must be"),
    ],
)
def test_bad_inputs_are_refused_naming_what_is_wrong(y, proba, classes, options, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, proba, classes, **options)
