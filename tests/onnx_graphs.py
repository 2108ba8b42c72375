"""Running an exported ONNX graph (engine.onnx_export) with onnxruntime, fed from records.

The graph says what it takes: one [N, 1] input per model column, ``tensor(string)`` for a
categorical (a cell's text, "" when missing) and ``tensor(float)`` or ``tensor(double)``
for a numeric one (NaN when missing). Records are JSON-like, as POST .../predictions takes.
"""

import math

import numpy as np

from engine.columns import level_key

Records = list[dict[str, object]]
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def graph_inputs(session, records: Records) -> dict[str, np.ndarray]:
    """The graph's inputs for ``records``: (N, 1) text or numbers per column."""
    inputs = {}
    for described in session.get_inputs():
        values = [record[described.name] for record in records]
        if described.type == "tensor(string)":
            texts = [level_key(value) or "" for value in values]
            inputs[described.name] = np.array(texts, dtype=object).reshape(-1, 1)
        else:
            numbers = [math.nan if value is None else value for value in values]
            dtype = FLOAT_TYPES[described.type]
            inputs[described.name] = np.array(numbers, dtype=dtype).reshape(-1, 1)
    return inputs


def run_graph(graph: bytes, records: Records) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, K), labels (N,)) of the serialized graph for ``records``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    probabilities, labels = session.run(None, graph_inputs(session, records))
    return probabilities, labels


def records_of(table: dict[str, np.ndarray]) -> Records:
    """A table's columns (by name) as JSON-like records: NaN (a missing cell) is None."""
    names = list(table)
    rows = zip(*(table[name].tolist() for name in names), strict=True)
    return [
        {
            n: None if isinstance(v, float) and math.isnan(v) else v
            for n, v in zip(names, row, strict=True)
        }
        for row in rows
    ]


def with_strangers(records: Records) -> Records:
    """Penguin records and two more: an island never seen in training with missing cells,
    and a body mass and a year beyond the training range."""
    first = records[0]
    return [
        *records,
        {**first, "island": "Atlantis", "sex": None, "bill_length_mm": None},
        {**first, "body_mass_g": 9000.0, "year": 2031},
    ]
