"""Specs refuse what cannot be trained, naming the field and the allowed values."""

from dataclasses import fields

import numpy as np
import pytest

from engine import (
    ACTIVATION_NAMES,
    MODEL_BOUNDS,
    STOPPING_BOUNDS,
    TRAINING_BOUNDS,
    EarlyStopping,
    ModelSpec,
    SpecError,
    TrainingSpec,
    fit,
)


def test_unknown_activation_names_the_field_and_the_allowed_names():
    with pytest.raises(SpecError) as error:
        ModelSpec(type="two_layer_network", activation="swish").validate()
    assert error.value.field == "activation"
    for name in ACTIVATION_NAMES:
        assert name in error.value.message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "lbfgs", "batch_size": 32}, "batch_size"),
        ({"l2": -1.0}, "l2"),
        ({"validation_fraction": 0.9}, "validation_fraction"),
        ({"early_stopping": EarlyStopping(patience=0)}, "early_stopping.patience"),
        ({"dtype": "float16"}, "dtype"),
        ({"time_limit": 0}, "time_limit"),
        ({"seed": -1}, "seed"),
        ({"momentum": 1.0}, "momentum"),
    ],
)
def test_invalid_training_spec_names_the_field(changes, field):
    with pytest.raises(SpecError) as error:
        TrainingSpec(**changes).validate()
    assert error.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hidden_units": 0}, "hidden_units"),
        ({"init": "ones"}, "init"),
        ({"type": "svm"}, "type"),
        ({"init_scale": 0.0}, "init_scale"),
    ],
)
def test_invalid_model_spec_names_the_field(changes, field):
    with pytest.raises(SpecError) as error:
        ModelSpec(**changes).validate()
    assert error.value.field == field


def test_learning_rate_defaults_per_optimizer_and_model_type():
    for model in ("logistic_regression", "two_layer_network"):
        assert TrainingSpec(optimizer="gd").step_size(model) == 0.5
        assert TrainingSpec(optimizer="adam", learning_rate=0.3).step_size(model) == 0.3
    assert TrainingSpec(optimizer="adam").step_size("logistic_regression") == 0.01
    assert TrainingSpec(optimizer="adam").step_size("two_layer_network") == 0.005


def test_a_network_trained_with_the_default_step_takes_adams_network_default():
    # The rate in force, not the spec's null, reaches the optimizer: the same fit with
    # learning_rate=0.005 given is the same model, bit for bit (0.01 is not).
    X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    network = ModelSpec(type="two_layer_network", hidden_units=4)
    fitted = {
        rate: fit(X, y, network, TrainingSpec(epochs=5, learning_rate=rate)).classifier
        for rate in (None, 0.005, 0.01)
    }
    theta = {rate: fitted[rate].model.parameters.theta for rate in fitted}
    assert np.array_equal(theta[None], theta[0.005])
    assert not np.array_equal(theta[None], theta[0.01])


def test_training_spec_round_trips_through_a_dict():
    spec = TrainingSpec(
        optimizer="momentum", early_stopping=EarlyStopping(patience=3), batch_size=7
    )
    assert TrainingSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError) as error:
        TrainingSpec.from_dict({"epochz": 3})
    assert error.value.field == "epochz"


# The ranges are data (engine.specs.Bounds): the API's document states them from the same
# tables, so every numeric field must have one, and validate() must hold to it exactly.

RANGE_TABLES = [
    (ModelSpec, MODEL_BOUNDS, ""),
    (TrainingSpec, TRAINING_BOUNDS, ""),
    (EarlyStopping, STOPPING_BOUNDS, "early_stopping."),
]


@pytest.mark.parametrize(("spec", "table", "prefix"), RANGE_TABLES)
def test_every_numeric_field_has_a_range_in_its_table(spec, table, prefix):
    numeric = {
        f.name
        for f in fields(spec)
        if (
            isinstance(getattr(spec(), f.name), int | float)
            and not isinstance(getattr(spec(), f.name), bool)
        )
        or f.name in ("learning_rate", "batch_size", "time_limit")
    }
    assert numeric == set(table)


def build(spec, name: str, value):
    """``spec`` with field ``name`` set to ``value`` (a TrainingSpec's early stopping too)."""
    if spec is EarlyStopping:
        return TrainingSpec(early_stopping=EarlyStopping(**{name: value}))
    return spec(**{name: value})


@pytest.mark.parametrize(
    ("spec", "name", "bounds", "prefix"),
    [
        (spec, name, bounds, prefix)
        for spec, table, prefix in RANGE_TABLES
        for name, bounds in table.items()
    ],
)
def test_validate_draws_each_range_where_its_bounds_say(spec, name, bounds, prefix):
    step = 1 if bounds.integer else 1e-9
    below = bounds.low if bounds.low_open else bounds.low - step
    with pytest.raises(SpecError) as error:
        build(spec, name, below).validate()
    assert error.value.field == prefix + name
    if bounds.high is not None:
        above = bounds.high if bounds.high_open else bounds.high + step
        with pytest.raises(SpecError):
            build(spec, name, above).validate()
    if not bounds.low_open:
        build(spec, name, bounds.low).validate()  # the closed end is allowed
