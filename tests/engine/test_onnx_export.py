"""engine.onnx_export: the exported graph, run by onnxruntime, gives the engine's probabilities.

Real data: breast cancer (30 numbers, integer classes), iris (three classes named by
text) and Palmer penguins (island and sex are words; sex and the measures have empty
cells), on both model types and every hidden activation. The graph's inputs are built
as a caller would: the numbers (NaN when missing) and each categorical cell's text ("" when
missing). A float64 graph agrees with ``predict_proba`` to 1e-9, a float32 graph to 1e-6.
"""

import json
import sys

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

import engine
from engine import (
    ACTIVATION_NAMES,
    Classifier,
    ModelSpec,
    PreprocessingSpec,
    TrainingSpec,
    code_table,
)
from engine.onnx_export import (
    MISSING_TEXT,
    ONNX_ACTIVATIONS,
    ONNX_OUTPUTS,
    ExportError,
    OnnxUnavailable,
    onnx_bytes,
    to_onnx,
)
from tests.onnx_graphs import Records, records_of, run_graph, with_strangers
from tests.real_tables import REAL_TABLES

ort = pytest.importorskip("onnxruntime")

TOLERANCE = {"float32": 1e-6, "float64": 1e-9}


def session(classifier: Classifier, dtype: str) -> "ort.InferenceSession":
    return ort.InferenceSession(
        onnx_bytes(classifier, dtype=dtype), providers=["CPUExecutionProvider"]
    )


def run(classifier: Classifier, records: Records, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, K), labels (N,)) from onnxruntime."""
    return run_graph(onnx_bytes(classifier, dtype=dtype), records)


Table = dict[str, np.ndarray]  # a table's feature columns by name, as pandas gives them


def fit_table(table: Table, y: np.ndarray, model: ModelSpec, **training) -> Classifier:
    """Fit on the table coded as an upload codes it (engine.code_table)."""
    X, columns = code_table(table)
    return engine.fit(X, y, model, TrainingSpec(seed=0, **training), columns=columns).classifier


# The data, and the records each model is checked on.


def cancer() -> tuple[Table, np.ndarray]:
    bunch = load_breast_cancer()
    return dict(zip(map(str, bunch.feature_names), bunch.data.T, strict=True)), bunch.target


def iris() -> tuple[Table, np.ndarray]:
    bunch = load_iris()
    table = dict(zip(map(str, bunch.feature_names), bunch.data.T, strict=True))
    return table, bunch.target_names[bunch.target]  # "setosa", "versicolor", "virginica"


def penguins() -> tuple[Table, np.ndarray]:
    frame = REAL_TABLES["penguins"].load()
    table = {c: frame[c].to_numpy() for c in frame.columns if c != "species"}
    return table, frame["species"].to_numpy()


DATA = {"cancer": cancer, "iris": iris, "penguins": penguins}
MODELS = [ModelSpec(type="logistic_regression")] + [
    ModelSpec(type="two_layer_network", hidden_units=6, activation=name)
    for name in ACTIVATION_NAMES
]
CASES = [(data, model) for data in DATA for model in MODELS]


def case_id(case: tuple[str, ModelSpec]) -> str:
    data, model = case
    return f"{data}-{model.activation if model.type == 'two_layer_network' else 'logistic'}"


@pytest.fixture(scope="module", params=CASES, ids=[case_id(c) for c in CASES])
def fitted(request) -> tuple[Classifier, Records]:
    data, model = request.param
    table, y = DATA[data]()
    classifier = fit_table(table, y, model, epochs=40)
    records = records_of(table)
    return classifier, with_strangers(records) if data == "penguins" else records


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_graph_gives_predict_proba_and_its_labels(fitted, dtype):
    classifier, records = fitted
    expected = classifier.predict_proba(classifier.code_records(records))
    probabilities, labels = run(classifier, records, dtype)
    assert probabilities.dtype == np.dtype(dtype)
    assert probabilities.shape == expected.shape
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOLERANCE[dtype])
    classes = np.array(classifier.classes)
    assert labels.tolist() == classes[probabilities.argmax(axis=1)].tolist()
    # Where the two best classes are further apart than the tolerance, the engine agrees.
    top = np.sort(expected, axis=1)
    clear = top[:, -1] - top[:, -2] > 10 * TOLERANCE[dtype]
    assert clear.mean() > 0.9
    engine_labels = classes[expected.argmax(axis=1)]
    assert labels[clear].tolist() == engine_labels[clear].tolist()


def test_penguins_bring_missing_cells_and_an_unseen_level():
    """The real table really exercises the fill, the (missing) level and an unseen level."""
    table, y = penguins()
    records = records_of(table)
    assert sum(r["sex"] is None for r in records) == 11
    assert sum(r["body_mass_g"] is None for r in records) == 2
    classifier = fit_table(table, y, MODELS[0], epochs=5)
    _, unseen = classifier.predict_proba_counting(classifier.code_records(with_strangers(records)))
    assert dict(zip(classifier.feature_names, unseen.tolist(), strict=True))["island"] == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_float32_model_exports_within_1e_6_in_either_dtype(dtype):
    table, y = cancer()
    records = records_of(table)
    classifier = fit_table(table, y, MODELS[2], epochs=40, dtype="float32")
    assert classifier.model.dtype == np.float32
    expected = classifier.predict_proba(classifier.code_records(records))
    probabilities, _ = run(classifier, records, dtype)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)


PREPROCESSING = {
    "indicator-median": PreprocessingSpec(missing_indicator=True, impute="median"),
    "infrequent-constant": PreprocessingSpec(min_frequency=60, impute="constant", fill_value=-1),
    "year-as-category": PreprocessingSpec(categorical=("year",), max_categories=2),
    "not-standardized": PreprocessingSpec(standardize=False),
}


@pytest.mark.parametrize("name", PREPROCESSING)
def test_every_preprocessing_step_is_in_the_graph(name):
    table, y = penguins()
    network = ModelSpec(type="two_layer_network", hidden_units=5)
    classifier = fit_table(table, y, network, epochs=30, preprocessing=PREPROCESSING[name])
    records = with_strangers(records_of(table))
    expected = classifier.predict_proba(classifier.code_records(records))
    probabilities, _ = run(classifier, records, "float64")
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-9)
    outputs = classifier.transform.output_names
    shown = {
        "indicator-median": "body_mass_g=(missing)",
        "infrequent-constant": "island=(infrequent)",
        "year-as-category": "year=(infrequent)",
        "not-standardized": "sex=(missing)",
    }
    assert shown[name] in outputs, outputs


def test_missing_texts_are_a_missing_cell_and_other_text_an_unseen_level():
    table, y = penguins()
    records = records_of(table)
    classifier = fit_table(table, y, MODELS[1], epochs=30)
    sexless = [{**records[0], "sex": None}, {**records[0], "sex": "unknown"}]
    missing, _ = run(classifier, sexless[:1], "float64")
    for token in MISSING_TEXT:
        probabilities, _ = run(classifier, [{**records[0], "sex": token}], "float64")
        np.testing.assert_array_equal(probabilities, missing)
    unseen = classifier.predict_proba(classifier.code_records(sexless[1:]))
    probabilities, _ = run(classifier, sexless[1:], "float64")
    np.testing.assert_allclose(probabilities, unseen, rtol=0, atol=1e-9)
    assert np.abs(unseen - missing).max() > 1e-6  # "(missing)" is a level of its own


def test_the_metadata_names_the_classes_columns_and_caller_fields():
    table, y = penguins()
    classifier = fit_table(table, y, MODELS[0], epochs=5)
    proto = to_onnx(classifier, dtype="float64", metadata={"model_id": "abc"})
    props = {p.key: p.value for p in proto.metadata_props}
    assert proto.producer_name == "backprop-service"
    assert props["model_id"] == "abc"
    assert json.loads(props["classes"]) == ["Adelie", "Chinstrap", "Gentoo"]
    assert props["label_type"] == "string"
    assert props["dtype"] == "float64"
    columns = {c["name"]: c for c in json.loads(props["columns"])}
    assert list(columns) == classifier.feature_names
    assert columns["island"] == {
        "name": "island",
        "kind": "categorical",
        "levels": ["Biscoe", "Dream", "Torgersen"],
    }
    assert columns["year"] == {"name": "year", "kind": "numeric"}
    assert [i.name for i in proto.graph.input] == classifier.feature_names
    assert [o.name for o in proto.graph.output] == ["probabilities", "label"]


def test_integer_classes_are_int64_labels():
    table, y = cancer()
    classifier = fit_table(table, y, MODELS[0], epochs=5)
    _, labels = run(classifier, records_of(table)[:3], "float32")
    assert labels.dtype == np.int64
    props = {p.key: p.value for p in to_onnx(classifier).metadata_props}
    assert props["label_type"] == "int64"


def test_an_empty_batch_gives_empty_outputs():
    table, y = iris()
    classifier = fit_table(table, y, MODELS[1], epochs=5)
    empty = {name: np.zeros((0, 1), dtype=np.float32) for name in classifier.feature_names}
    probabilities, labels = session(classifier, "float32").run(None, empty)
    assert probabilities.shape == (0, 3)
    assert labels.shape == (0,)


def test_every_activation_and_output_has_an_onnx_form():
    assert set(ONNX_ACTIVATIONS) == set(ACTIVATION_NAMES)
    assert set(ONNX_OUTPUTS) == {"sigmoid", "softmax"}


def test_a_column_named_as_an_output_is_refused_with_the_reason():
    table, y = iris()
    table["label"] = table.pop("sepal length (cm)")
    classifier = fit_table(table, y, MODELS[0], epochs=5)
    with pytest.raises(ExportError, match=r"input columns \['label'\] would share a name"):
        to_onnx(classifier)


def test_a_dtype_other_than_float32_or_float64_is_refused():
    table, y = iris()
    classifier = fit_table(table, y, MODELS[0], epochs=5)
    with pytest.raises(ValueError, match=r"dtype must be one of \['float32', 'float64'\]"):
        to_onnx(classifier, dtype="float16")


def test_without_the_onnx_package_the_error_says_how_to_install_it(monkeypatch):
    table, y = iris()
    classifier = fit_table(table, y, MODELS[0], epochs=5)
    monkeypatch.setitem(sys.modules, "onnx", None)  # what Python does for a missing package
    with pytest.raises(OnnxUnavailable, match=r"pip install 'backprop-service\[onnx\]'"):
        to_onnx(classifier)
