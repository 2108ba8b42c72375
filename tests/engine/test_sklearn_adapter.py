"""The scikit-learn adapter: sklearn's estimator checks, the engine's defaults, real data."""

import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from engine import (
    STOP_REASONS,
    Diagnostics,
    EarlyStopping,
    FitResult,
    ModelSpec,
    PreprocessingSpec,
    TrainingSpec,
)
from engine.sklearn import BackpropLogisticRegression, BackpropMLPClassifier

ESTIMATORS = [BackpropLogisticRegression, BackpropMLPClassifier]
MODEL_TYPES = {
    BackpropLogisticRegression: "logistic_regression",
    BackpropMLPClassifier: "two_layer_network",
}
# ModelSpec fields each estimator exposes; ``type`` is the estimator class itself.
MODEL_PARAMETERS = {
    BackpropLogisticRegression: ["init", "init_scale"],
    BackpropMLPClassifier: ["hidden_units", "activation", "init", "init_scale"],
}
# PreprocessingSpec fields, flat: each parameter and the field it sets. ``categorical`` takes
# scikit-learn's name (HistGradientBoostingClassifier's).
PREPROCESSING_PARAMETERS = {
    "impute": "impute",
    "fill_value": "fill_value",
    "missing_indicator": "missing_indicator",
    "max_categories": "max_categories",
    "min_frequency": "min_frequency",
    "standardize": "standardize",
    "categorical_features": "categorical",
    "ignore": "ignore",
}
# Parameters listing columns default to None (no column), the spec to ().
COLUMN_LIST_PARAMETERS = ["categorical_features", "ignore"]


def held_out(loader):
    X, y = loader(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


# -- scikit-learn's own API checks, one test per check --------------------------------------
# The defaults run every check (a check fits on at most a few hundred rows, so this is quick);
# the other instances take the L-BFGS, mini-batch, float32 and momentum/gd code paths, and the
# last the preprocessing parameters (a numeric column as categories, median fill, indicators).
# The tags say allow_nan and string, so the checks put NaN into X (check_complex_data,
# check_estimators_pickle) and fit an object array with a dict in a cell (check_dtype_object).
# Every check passes, so no expected_failed_checks are listed. pytest reports one of sklearn's
# own skips per instance: check_array_api_input (SCIPY_ARRAY_API unset).
@parametrize_with_checks(
    [
        BackpropLogisticRegression(),
        BackpropMLPClassifier(),
        BackpropLogisticRegression(
            optimizer="momentum", batch_size=16, dtype="float32", early_stopping={"patience": 3}
        ),
        BackpropMLPClassifier(
            optimizer="lbfgs", activation="relu", validation_fraction=0.0, early_stopping=False
        ),
        BackpropMLPClassifier(optimizer="gd", batch_size=7, dtype="float32", activation="sigmoid"),
        BackpropLogisticRegression(
            impute="median", missing_indicator=True, categorical_features=[0]
        ),
    ]
)
def test_passes_scikit_learn_estimator_check(estimator, check):
    check(estimator)


# -- parameters are the engine's specs --------------------------------------------------------
def test_preprocessing_parameters_cover_every_preprocessing_field():
    assert sorted(PREPROCESSING_PARAMETERS.values()) == sorted(
        f.name for f in fields(PreprocessingSpec)
    )


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_parameters_are_exactly_the_spec_fields(estimator_class):
    # TrainingSpec.preprocessing is not a parameter: its fields are, flat.
    training = [f.name for f in fields(TrainingSpec) if f.name != "preprocessing"]
    expected = (
        set(MODEL_PARAMETERS[estimator_class]) | set(training) | set(PREPROCESSING_PARAMETERS)
    )
    assert set(estimator_class().get_params()) == expected


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_constructor_defaults_equal_the_spec_defaults(estimator_class):
    params = estimator_class().get_params()
    model_defaults, training_defaults = ModelSpec(), TrainingSpec()
    for name in MODEL_PARAMETERS[estimator_class]:
        assert params[name] == getattr(model_defaults, name), name
    for field in fields(TrainingSpec):
        if field.name not in ("early_stopping", "preprocessing"):
            assert params[field.name] == getattr(training_defaults, field.name), field.name
    for parameter, field in PREPROCESSING_PARAMETERS.items():
        default = getattr(training_defaults.preprocessing, field)
        if parameter in COLUMN_LIST_PARAMETERS:
            assert (params[parameter], default) == (None, ()), parameter
        else:
            assert params[parameter] == default, parameter
    # sklearn defaults must be plain values: True stands for the EarlyStopping() default.
    assert params["early_stopping"] is True


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_default_estimator_builds_the_default_specs(estimator_class):
    model, training = estimator_class().to_specs()
    assert model == ModelSpec(type=MODEL_TYPES[estimator_class])
    assert training == TrainingSpec()


@pytest.mark.parametrize(
    ("early_stopping", "expected"),
    [
        (True, EarlyStopping()),
        (False, None),
        (None, None),
        ({"patience": 5, "min_delta": 0.0}, EarlyStopping(patience=5, min_delta=0.0)),
        ({"restore_best": False}, EarlyStopping(restore_best=False)),
        (EarlyStopping(patience=3), EarlyStopping(patience=3)),
    ],
    ids=["true", "false", "none", "dict", "partial-dict", "dataclass"],
)
def test_early_stopping_parameter_maps_to_the_engine_dataclass(early_stopping, expected):
    _, training = BackpropMLPClassifier(early_stopping=early_stopping).to_specs()
    assert training.early_stopping == expected


def test_preprocessing_parameters_build_the_preprocessing_spec():
    estimator = BackpropMLPClassifier(
        impute="median",
        fill_value=-1.0,
        missing_indicator=True,
        max_categories=5,
        min_frequency=np.int64(2),
        standardize=False,
        categorical_features=["year", 0],
        ignore=np.array([2]),
    )
    _, training = estimator.to_specs(feature_names=["island", "sex", "body_mass_g", "year"])
    assert training.preprocessing == PreprocessingSpec(
        impute="median",
        fill_value=-1.0,
        missing_indicator=True,
        max_categories=5,
        min_frequency=2,
        standardize=False,
        categorical=("year", "island"),  # a position is the name of X's column there
        ignore=("body_mass_g",),
    )


def test_column_positions_without_feature_names_are_the_engine_names_of_array_columns():
    _, training = BackpropLogisticRegression(categorical_features=[3], ignore=["x0"]).to_specs()
    assert (training.preprocessing.categorical, training.preprocessing.ignore) == (("x3",), ("x0",))


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"impute": "mode"}, r"^impute: 'mode' is not one of \['mean', 'median', 'constant'\]$"),
        ({"max_categories": 0}, r"^max_categories: must be >= 1, got 0$"),
        ({"missing_indicator": "yes"}, r"^missing_indicator: must be true or false"),
        ({"categorical_features": "x1"}, r"^categorical_features: must be None or a list"),
        ({"categorical_features": ["height"]}, r"^categorical_features: 'height' is not a column"),
        ({"ignore": [4]}, r"^ignore: 4 is not a column position \(X has 4 columns\)$"),
        ({"ignore": [1.5]}, r"^ignore: must list column names or positions, got 1.5$"),
        (
            {"categorical_features": [1], "ignore": ["x1"]},
            r"^categorical_features: \['x1'\] are also in ignore$",
        ),
    ],
    ids=[
        "impute",
        "max-categories",
        "indicator",
        "bare-string",
        "unknown-name",
        "position",
        "float",
        "both",
    ],
)
def test_invalid_preprocessing_parameters_raise_value_error_naming_the_parameter(
    parameters, message
):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=message):
        BackpropLogisticRegression(**parameters).fit(X, y)


@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_tags_declare_missing_cells_and_text_as_accepted(estimator_class):
    tags = get_tags(estimator_class())
    assert tags.input_tags.allow_nan
    assert tags.input_tags.string


def test_numpy_scalar_parameters_are_accepted_as_search_utilities_produce_them():
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(
        BackpropMLPClassifier(epochs=np.int64(100), early_stopping={"patience": np.int64(5)}),
        {"hidden_units": np.array([4, 8])},  # GridSearchCV hands out np.int64 values
        cv=2,
    ).fit(X, y)
    assert isinstance(search.best_params_["hidden_units"], np.integer)
    assert search.best_score_ >= 0.85


def test_constructor_stores_invalid_parameters_and_fit_rejects_them_as_value_error():
    estimator = BackpropMLPClassifier(activation="softsign", epochs=0)  # no check in __init__
    assert estimator.get_params()["activation"] == "softsign"
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=r"^activation: 'softsign' is not one of"):
        estimator.fit(X, y)


@pytest.mark.parametrize(
    ("early_stopping", "message"),
    [
        ({"patiense": 5}, r"^early_stopping\.patiense: unknown field"),
        ({"patience": 0}, r"^early_stopping\.patience: must be >= 1"),
        ("yes", r"^early_stopping: must be True, False, None or a dict"),
    ],
)
def test_invalid_early_stopping_raises_value_error_at_fit(early_stopping, message):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=message):
        BackpropLogisticRegression(early_stopping=early_stopping).fit(X, y)


# -- real data ---------------------------------------------------------------------------------
def test_breast_cancer_logistic_regression_matches_scikit_learn():
    X_train, X_test, y_train, y_test = held_out(load_breast_cancer)
    # The peer at its best: scaled, so lbfgs converges (the adapter standardizes by itself).
    peer = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
    ours = BackpropLogisticRegression().fit(X_train, y_train)
    assert ours.score(X_test, y_test) >= peer.score(X_test, y_test) - 0.01


def test_breast_cancer_mlp_reaches_95_percent():
    X_train, X_test, y_train, y_test = held_out(load_breast_cancer)
    assert BackpropMLPClassifier().fit(X_train, y_train).score(X_test, y_test) >= 0.95


def test_works_inside_a_pipeline_with_cross_val_score():
    X, y = load_breast_cancer(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), BackpropMLPClassifier(hidden_units=8))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.min() >= 0.93


def test_string_labels_round_trip_through_predict():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    estimator = BackpropLogisticRegression().fit(X, names)
    assert estimator.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    predicted = estimator.predict(X)
    assert predicted.dtype == names.dtype
    assert set(predicted) <= set(names)
    assert np.mean(predicted == names) >= 0.9


def test_object_string_labels_keep_their_dtype():
    X, y = load_breast_cancer(return_X_y=True)
    names = np.array(["malignant", "benign"], dtype=object)[y]
    predicted = BackpropMLPClassifier(hidden_units=8).fit(X, names).predict(X)
    assert predicted.dtype == object
    assert set(predicted) == {"malignant", "benign"}


def test_predict_proba_columns_follow_classes_and_agree_with_predict():
    X, y = load_iris(return_X_y=True)
    labels = np.array([30, 20, 10])[y]  # classes_ sorts them: 10, 20, 30
    estimator = BackpropMLPClassifier(hidden_units=8).fit(X, labels)
    proba = estimator.predict_proba(X)
    assert estimator.classes_.tolist() == [10, 20, 30]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(estimator.classes_[proba.argmax(axis=1)], estimator.predict(X))
    np.testing.assert_array_equal(estimator.predict(X), estimator.result_.classifier.predict(X))


# -- fitted attributes -------------------------------------------------------------------------
@pytest.mark.parametrize("estimator_class", ESTIMATORS)
def test_fitted_attributes_report_the_engine_run(estimator_class):
    X, y = load_breast_cancer(return_X_y=True)
    estimator = estimator_class(validation_fraction=0.2).fit(X, y)  # a validation curve too
    result = estimator.result_
    assert isinstance(result, FitResult)
    assert len(estimator.loss_curve_) == estimator.n_iter_ == len(result.history) >= 1
    assert estimator.loss_curve_ == [epoch.train_loss for epoch in result.history]
    assert estimator.validation_loss_curve_ == [epoch.val_loss for epoch in result.history]
    assert estimator.stop_reason_ == result.stop_reason
    assert estimator.stop_reason_ in STOP_REASONS
    assert 1 <= estimator.best_epoch_ <= estimator.n_iter_
    assert isinstance(estimator.diagnostics_, Diagnostics)
    assert estimator.n_features_in_ == X.shape[1]
    assert not hasattr(estimator, "feature_names_in_")  # arrays carry no names
    assert estimator.is_categorical_.tolist() == [False] * X.shape[1]  # numbers are numeric
    assert result.classifier.feature_names == [f"x{j}" for j in range(X.shape[1])]


def test_lbfgs_loss_curve_has_one_entry_per_iteration():
    X, y = load_breast_cancer(return_X_y=True)
    estimator = BackpropLogisticRegression(optimizer="lbfgs", epochs=30).fit(X, y)
    assert len(estimator.loss_curve_) == estimator.n_iter_ <= 30


def test_no_validation_split_leaves_the_validation_curve_empty():
    X, y = load_iris(return_X_y=True)
    estimator = BackpropLogisticRegression(validation_fraction=0.0, epochs=20).fit(X, y)
    assert estimator.validation_loss_curve_ == []
    assert len(estimator.loss_curve_) == estimator.n_iter_


def test_early_stopping_off_trains_for_every_epoch():
    X, y = load_iris(return_X_y=True)
    estimator = BackpropMLPClassifier(early_stopping=False, epochs=40, tolerance=0.0).fit(X, y)
    assert (estimator.n_iter_, estimator.stop_reason_) == (40, "max_epochs")


def test_divergence_warns_and_keeps_finite_parameters():
    X, y = load_breast_cancer(return_X_y=True)
    estimator = BackpropMLPClassifier(optimizer="gd", learning_rate=1e6, early_stopping=False)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        estimator.fit(X, y)
    assert estimator.stop_reason_ == "diverged"
    assert np.isfinite(estimator.predict_proba(X)).all()


def test_refit_on_clone_gives_identical_predictions():
    X, y = load_breast_cancer(return_X_y=True)
    first = BackpropMLPClassifier(hidden_units=8, seed=3).fit(X, y)
    second = clone(first).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_dataframe_column_names_become_the_engine_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = load_iris(return_X_y=True, as_frame=True)
    estimator = BackpropLogisticRegression(epochs=20).fit(X, y)
    assert estimator.feature_names_in_.tolist() == list(X.columns)
    assert estimator.result_.classifier.feature_names == list(X.columns)
    assert isinstance(X, pd.DataFrame)


# -- optional dependency -----------------------------------------------------------------------
def test_engine_imports_and_trains_without_scikit_learn():
    # sys.modules[name] = None makes every import of sklearn fail, as if it were not installed.
    program = """
import sys
sys.modules["sklearn"] = None
import engine
result = engine.fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
assert result.classifier.predict([[3.0]]).tolist() == [1]
try:
    import engine.sklearn
except ImportError:
    print("adapter needs sklearn")
"""
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "adapter needs sklearn\n"


def test_importing_engine_does_not_import_scikit_learn():
    program = "import sys, engine; print(any(m.split('.')[0] == 'sklearn' for m in sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert completed.stdout == "False\n"
