"""Specs refuse what cannot be trained, naming the field and the allowed values."""

import pytest

from engine import ACTIVATION_NAMES, EarlyStopping, ModelSpec, SpecError, TrainingSpec


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


def test_learning_rate_defaults_per_optimizer():
    assert TrainingSpec(optimizer="gd").step_size == 0.5
    assert TrainingSpec(optimizer="adam").step_size == 0.01
    assert TrainingSpec(optimizer="adam", learning_rate=0.3).step_size == 0.3


def test_training_spec_round_trips_through_a_dict():
    spec = TrainingSpec(
        optimizer="momentum", early_stopping=EarlyStopping(patience=3), batch_size=7
    )
    assert TrainingSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError) as error:
        TrainingSpec.from_dict({"epochz": 3})
    assert error.value.field == "epochz"
