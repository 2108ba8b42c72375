"""Tables with string categories and missing cells: coding, the fitted transform, the file."""

import io
import math

import numpy as np
import pytest

from engine import ModelSpec, TrainingSpec, fit, load, save
from engine.columns import CATEGORICAL, NUMERIC, InputColumn, RecordError, code_records, code_table
from engine.encoding import ColumnTransform
from engine.specs import PreprocessingSpec, SpecError

palmerpenguins = pytest.importorskip("palmerpenguins")


def penguins() -> tuple[np.ndarray, list[InputColumn], np.ndarray, list[dict]]:
    """Palmer penguins coded: (X (344, 7), columns, species, the raw records)."""
    frame = palmerpenguins.load_penguins()
    species = frame.pop("species").to_numpy()
    X, columns = code_table({name: frame[name].to_numpy() for name in frame})
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return X, columns, species, records


def test_code_table_types_strings_as_categorical_and_marks_missing_cells_nan():
    X, columns, _, _ = penguins()
    kinds = {column.name: column.kind for column in columns}
    assert kinds == {
        "island": CATEGORICAL,
        "bill_length_mm": NUMERIC,
        "bill_depth_mm": NUMERIC,
        "flipper_length_mm": NUMERIC,
        "body_mass_g": NUMERIC,
        "sex": CATEGORICAL,
        "year": NUMERIC,
    }
    sex = columns[5]
    assert sex.levels == ("female", "male")
    assert int(np.isnan(X[:, 5]).sum()) == 11  # the set's 11 penguins of unknown sex
    assert int(np.isnan(X[:, 1]).sum()) == 2


@pytest.mark.parametrize("model_type", ["logistic_regression", "two_layer_network"])
def test_both_models_learn_penguins_with_every_default(model_type):
    X, columns, species, _ = penguins()
    result = fit(X, species, ModelSpec(type=model_type), columns=columns)
    assert (result.classifier.predict(X) == species).mean() > 0.97
    assert result.classifier.transform.output_names == [
        "island=Biscoe",
        "island=Dream",
        "island=Torgersen",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex=female",
        "sex=male",
        "sex=(missing)",
        "year",
    ]


def test_statistics_come_from_the_training_split_only():
    X, columns, species, _ = penguins()
    result = fit(
        X, species, None, TrainingSpec(epochs=1, seed=4, validation_fraction=0.2), columns=columns
    )
    body_mass = result.classifier.transform.encodings[4]
    assert body_mass.column.name == "body_mass_g"
    # Only the training split's rows inform the fill: the mean of all rows differs.
    assert body_mass.fill != pytest.approx(float(np.nanmean(X[:, 4])), rel=1e-12)
    assert result.n_train < len(X)


def test_a_saved_model_predicts_raw_records_bit_identically_after_loading():
    X, columns, species, records = penguins()
    for dtype in ("float64", "float32"):
        classifier = fit(
            X,
            species,
            ModelSpec(type="two_layer_network"),
            TrainingSpec(dtype=dtype),
            columns=columns,
        ).classifier
        buffer = io.BytesIO()
        save(classifier, buffer)
        loaded = load(buffer.getvalue())
        rows = classifier.code_records(records)
        np.testing.assert_array_equal(rows, loaded.code_records(records))
        before = classifier.predict_proba(rows)
        after = loaded.predict_proba(rows)
        assert before.tobytes() == after.tobytes()
        # and one record alone: the same bits as in the batch
        assert loaded.predict_proba(rows[7:8]).tobytes() == after[7:8].tobytes()
        assert loaded.transform.describe() == classifier.transform.describe()


def test_an_unseen_level_is_all_zeros_and_counted():
    X, columns, species, records = penguins()
    classifier = fit(X, species, None, TrainingSpec(epochs=5), columns=columns).classifier
    record = dict(records[0], island="Atlantis")
    rows = classifier.code_records([record, records[0]])
    features, unseen = classifier.features(rows)
    assert unseen.tolist() == [1, 0, 0, 0, 0, 0, 0]
    island = features[0, :3]
    assert island.tolist() == [0.0, 0.0, 0.0]  # one-hot features are not standardized
    assert features[1, :3].sum() == 1.0


def test_missing_is_its_own_level_when_training_saw_it_else_all_zeros():
    X, columns, species, records = penguins()
    classifier = fit(X, species, None, TrainingSpec(epochs=5), columns=columns).classifier
    rows = classifier.code_records([dict(records[0], sex=None, island=None)])
    features, unseen = classifier.features(rows)
    names = classifier.transform.output_names
    assert features[0, names.index("sex=(missing)")] == 1.0
    assert features[0, :3].tolist() == [0.0, 0.0, 0.0]  # island was never missing
    assert unseen.sum() == 0  # missing is not unseen


def test_imputation_fills_mean_median_or_constant_and_adds_an_indicator():
    X, columns, species, _ = penguins()
    for impute, expected in [
        ("median", lambda v: float(np.median(v))),
        ("constant", lambda v: -1.5),
    ]:
        spec = TrainingSpec(
            epochs=1,
            validation_fraction=0.0,
            preprocessing=PreprocessingSpec(impute=impute, fill_value=-1.5, missing_indicator=True),
        )
        transform = fit(X, species, None, spec, columns=columns).classifier.transform
        bill = transform.encodings[1]
        assert bill.fill == expected(X[~np.isnan(X[:, 1]), 1])
        assert bill.outputs == ["bill_length_mm", "bill_length_mm=(missing)"]
        assert transform.encodings[6].outputs == ["year"]  # never missing: no indicator


def test_rare_levels_share_the_infrequent_feature():
    X, columns, species, records = penguins()
    spec = TrainingSpec(epochs=1, preprocessing=PreprocessingSpec(max_categories=1))
    classifier = fit(X, species, None, spec, columns=columns).classifier
    island = classifier.transform.describe()[0]
    assert island["levels"] == ["Biscoe"]  # the most frequent island
    assert island["infrequent_levels"] == ["Dream", "Torgersen"]
    assert island["outputs"] == ["island=Biscoe", "island=(infrequent)"]
    rows = classifier.code_records([dict(records[0], island="Dream")])
    assert classifier.features(rows)[0][0, :2].tolist() == [0.0, 1.0]


def test_the_spec_can_make_numbers_categories_and_leave_columns_out():
    X, columns, species, records = penguins()
    spec = TrainingSpec(
        epochs=1, preprocessing=PreprocessingSpec(categorical=("year",), ignore=("sex",))
    )
    classifier = fit(X, species, None, spec, columns=columns).classifier
    assert "sex" not in classifier.feature_names
    assert classifier.transform.ignored == ("sex",)
    year = classifier.transform.describe()[-1]
    assert year["levels"] == ["2007", "2008", "2009"]
    record = {key: value for key, value in records[0].items() if key != "sex"}
    coded = classifier.code_records([record, dict(record, year="2008"), dict(record, year=2031)])
    features, unseen = classifier.features(coded)
    assert features[:, -3:].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert unseen[-1] == 1
    with pytest.raises(SpecError, match=r"preprocessing\.ignore"):
        fit(
            X,
            species,
            None,
            TrainingSpec(preprocessing=PreprocessingSpec(ignore=("beak",))),
            columns=columns,
        )


def test_a_record_without_a_column_or_with_text_in_a_numeric_column_is_refused():
    _, columns, _, records = penguins()
    absent = {key: value for key, value in records[3].items() if key != "body_mass_g"}
    with pytest.raises(RecordError, match="record 1, column 'body_mass_g': the key is absent"):
        code_records([records[0], absent], columns)
    with pytest.raises(RecordError, match="record 0, column 'bill_depth_mm': 'deep' is not"):
        code_records([dict(records[0], bill_depth_mm="deep")], columns)
    coded = code_records([dict(records[0], sex=True, island=" Dream ")], columns)
    assert coded[0, 0] == 1.0  # trimmed
    assert coded[0, 5] == -1.0  # a boolean is not a level of sex


def test_a_numeric_only_model_is_unchanged_by_the_transform():
    """With no missing cell and no category, features are the inputs: the old path."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int)
    classifier = fit(X, y, None, TrainingSpec(epochs=20)).classifier
    assert classifier.transform.keeps_width
    standardized = classifier.standardizer.transform(X, np.dtype(np.float64))
    np.testing.assert_array_equal(classifier.features(X)[0], standardized)


def test_code_table_levels_and_level_keys_agree():
    X, columns = code_table(
        {"flag": np.array([True, False, None], dtype=object), "n": np.array([7, 7.0, math.nan])},
        categorical=["n"],
    )
    assert columns[0].levels == ("false", "true")
    assert columns[1] == InputColumn("n", CATEGORICAL, ("7",))
    assert np.isnan(X[2]).all()
    assert ColumnTransform.identity(["a"], [0.0]).keeps_width
