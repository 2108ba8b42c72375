"""A fitted Classifier as one ONNX graph: its preprocessing, its network and its output.

    from engine.onnx_export import to_onnx
    proto = to_onnx(classifier, dtype="float32", metadata={"model_id": "..."})
    # onnxruntime.InferenceSession(proto.SerializeToString()).run(None, {"age": ..., ...})

The graph, for N rows (``onnx`` builds it; it is imported here, inside ``to_onnx``, so the
engine runs without the optional extra ``backprop-service[onnx]``):

* **inputs**: one per input column the model reads, named as the column, shape [N, 1].
  A numeric column is a float tensor of the graph's dtype, NaN where a cell is missing.
  A categorical column is a ``string`` tensor holding each cell's level as text, exactly
  as the model lists it (its ``levels``; numbers that are categories by their names:
  "7", "0.5"; booleans "true"/"false"). The text is compared as it is, not trimmed. A
  missing cell is "" or one of ``MISSING_TEXT`` (the CSV reader's null tokens: "NA",
  "null"...), unless the model holds such a text as a level. Any other text is a level
  never seen in training: all zeros, as the service encodes it.
* **outputs**: ``probabilities`` [N, K] in the graph's dtype, columns in the order of
  the metadata's ``classes``; ``label`` [N], the most probable class: int64 when every
  class is an integer, otherwise a string, ``str(class)`` (the service's probability keys).

Every step is the engine's: a numeric cell filled (``Where(IsNaN)``) and its optional
0/1 "(missing)" indicator; a categorical cell to its one-hot slot (ai.onnx.ml
``LabelEncoder`` text -> slot, ``Equal`` with the slot numbers -> 0/1); the features
standardized (``Sub``, ``Div``); Z = X Wᵀ + bᵀ per layer (``MatMul``, ``Add``; rows are
samples here, the transpose of the note's X); the hidden activation; the sigmoid (two
classes, P = [1 - σ(z), σ(z)]) or ``Softmax``. σ is the engine's (1 + tanh(z/2)) / 2
and leaky ReLU is max(z, 0.01 z), so float64 graphs agree with the engine to ~1e-15.
"""

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.activations import LEAKY_RELU_SLOPE
from engine.classifier import Classifier
from engine.encoding import CategoricalEncoding, NumericEncoding

if TYPE_CHECKING:
    import onnx

DTYPES = ("float32", "float64")
PRODUCER = "backprop-service"
OPSET = 18  # ai.onnx: every op used here exists in this form since opset 13 (Softmax 13)
ML_OPSET = 3  # ai.onnx.ml: LabelEncoder 2 (string keys, int64 values)
IR_VERSION = 8  # the IR that goes with opset 18: onnxruntime >= 1.14 loads it
OUTPUTS = ("probabilities", "label")
# What a missing categorical cell may be: "" and the CSV reader's null tokens
# (service.datasets.reader_types.NULL_TOKENS; tests/service/models/test_export.py checks).
MISSING_TEXT = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")
INSTALL_HINT = "pip install 'backprop-service[onnx]'"
MISSING_PACKAGE = f"exporting to ONNX needs the onnx package: {INSTALL_HINT}"


class OnnxUnavailable(ImportError):
    """The ``onnx`` package is not installed: the export needs the optional extra."""


class ExportError(ValueError):
    """The model cannot be written as an ONNX graph (the reason says why)."""


def to_onnx(
    classifier: Classifier, *, dtype: str = "float32", metadata: Mapping[str, str] | None = None
) -> "onnx.ModelProto":
    """The ONNX model of ``classifier`` (see the module docstring), checked by onnx's checker.

    ``dtype`` is the graph's float type, end to end (parameters, numeric inputs,
    probabilities); ``metadata`` is added to the model's metadata_props (a model id).
    Raises OnnxUnavailable without the ``onnx`` package, ExportError for a model the
    graph cannot express, ValueError for a dtype not in DTYPES.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    try:
        import onnx
    except ImportError as error:
        raise OnnxUnavailable(MISSING_PACKAGE) from error
    names = classifier.feature_names
    clashes = sorted(set(names) & set(OUTPUTS))
    if clashes:
        raise ExportError(f"input columns {clashes} would share a name with the graph's outputs")
    graph = _Graph(onnx, np.dtype(dtype), reserved={*names, *OUTPUTS})
    features = _features(graph, classifier)
    probabilities = _network(graph, classifier, features)
    graph.op("Identity", [probabilities], output="probabilities")
    labels, label_type = _label_values(classifier.classes)
    index = graph.op("ArgMax", [probabilities], axis=1, keepdims=0)  # (N,) int64: first maximum
    graph.op("Gather", [graph.const("classes", labels), index], output="label", axis=0)
    model = onnx.helper.make_model(
        graph.proto(classifier, label_type),
        producer_name=PRODUCER,
        opset_imports=[
            onnx.helper.make_opsetid("", OPSET),
            onnx.helper.make_opsetid("ai.onnx.ml", ML_OPSET),
        ],
        ir_version=IR_VERSION,
        doc_string=(__doc__ or "").split("\n\n")[0],
    )
    props = _metadata(classifier, dtype, label_type) | dict(metadata or {})
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def _label_values(classes: list[object]) -> tuple[np.ndarray, str]:
    """(the class labels as a tensor (K,), "int64" or "string")."""
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return np.array(classes, dtype=np.int64), "int64"
    return np.array([str(c) for c in classes], dtype=object), "string"


class _Graph:
    """Nodes and initializers as they are added; every value gets a fresh, unique name."""

    def __init__(self, onnx: Any, dtype: np.dtype, reserved: set[str]):
        self.onnx = onnx
        self.dtype = dtype
        self.reserved = set(reserved)  # the inputs' and outputs' names
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.inputs: list[Any] = []
        self.count = 0

    def name(self, hint: str) -> str:
        """A value name no column can hold: a counter, skipping any name already taken."""
        while True:
            self.count += 1
            name = f"{hint}.{self.count}"
            if name not in self.reserved:
                self.reserved.add(name)
                return name

    def const(self, hint: str, value: np.ndarray | float) -> str:
        """An initializer; a Python float becomes a scalar of the graph's dtype."""
        array = np.asarray(value, dtype=self.dtype) if isinstance(value, float) else value
        name = self.name(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(
        self,
        op_type: str,
        inputs: list[str],
        *,
        output: str | None = None,
        domain: str = "",
        **attrs,
    ) -> str:
        """Add one node; its single output's name (``output`` when given)."""
        output = output or self.name(op_type)
        node = self.onnx.helper.make_node(op_type, inputs, [output], domain=domain, **attrs)
        self.nodes.append(node)
        return output

    def input(self, name: str, element_type: int) -> str:
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, element_type, ["N", 1]))
        return name

    @property
    def float_type(self) -> int:
        return self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype)

    def proto(self, classifier: Classifier, label_type: str) -> Any:
        helper, TensorProto = self.onnx.helper, self.onnx.TensorProto
        k = len(classifier.classes)
        label_element = TensorProto.INT64 if label_type == "int64" else TensorProto.STRING
        outputs = [
            helper.make_tensor_value_info("probabilities", self.float_type, ["N", k]),
            helper.make_tensor_value_info("label", label_element, ["N"]),
        ]
        return helper.make_graph(
            self.nodes, "backprop_classifier", self.inputs, outputs, self.initializers
        )


def _features(graph: _Graph, classifier: Classifier) -> str:
    """The network's standardized inputs (N, n_x), from one graph input per column."""
    string = graph.onnx.TensorProto.STRING
    pieces: list[str] = []
    for encoding in classifier.transform.encodings:
        name = encoding.column.name
        if isinstance(encoding, NumericEncoding):
            x = graph.input(name, graph.float_type)  # (N, 1)
            missing = graph.op("IsNaN", [x])
            pieces.append(graph.op("Where", [missing, graph.const("fill", encoding.fill), x]))
            if encoding.indicator:
                pieces.append(graph.op("Cast", [missing], to=graph.float_type))
        else:
            pieces.append(_one_hot(graph, encoding, graph.input(name, string)))
    X = pieces[0] if len(pieces) == 1 else graph.op("Concat", pieces, axis=1)  # (N, n_x)
    mean, scale = classifier.standardizer.mean, classifier.standardizer.scale
    if not (np.any(mean != 0.0) or np.any(scale != 1.0)):
        return X
    # The engine's own arithmetic: (x - mean) / scale, both cast to the dtype first.
    high = mean.astype(graph.dtype)
    X = graph.op("Sub", [X, graph.const("mean", high)])
    low = (mean - high).astype(graph.dtype)  # what float32 loses of a float64 model's mean
    if classifier.model.dtype == np.float64 and np.any(low != 0.0):
        # x - mean in two steps: x - high is exact near the mean (Sterbenz), so a year
        # (mean 2008.03, sd 0.82) keeps its digits instead of a 1e-4 error, which shows in
        # the probabilities at 1e-6. A float32 model subtracts high alone, as the engine does.
        X = graph.op("Sub", [X, graph.const("mean_low", low)])
    return graph.op("Div", [X, graph.const("scale", scale.astype(graph.dtype))])


def _one_hot(graph: _Graph, encoding: CategoricalEncoding, text: str) -> str:
    """(N, outputs) 0/1 features of a categorical column's text (N, 1).

    LabelEncoder maps each text to its feature's slot: a kept level to its own, an
    infrequent level to the "(infrequent)" slot, a missing cell to the "(missing)" slot
    (or -1 when the training split had none), anything else to -1. ``Equal`` against the
    slot numbers 0..outputs-1 then sets one feature, or none.
    """
    width = len(encoding.outputs)
    column = encoding.column
    slots: dict[str, int] = {name: i for i, name in enumerate(encoding.level_names)}
    k = len(slots)
    slots |= {column.level_name(value): k for value in encoding.infrequent}
    missing_slot = width - 1 if encoding.missing else -1
    for token in MISSING_TEXT:
        slots.setdefault(token, missing_slot)  # a level that reads "NA" stays that level
    slot = graph.op(
        "LabelEncoder",
        [text],
        domain="ai.onnx.ml",
        keys_strings=list(slots),
        values_int64s=list(slots.values()),
        default_int64=-1,
    )  # (N, 1) int64
    numbers = graph.const("slots", np.arange(width, dtype=np.int64).reshape(1, width))
    hot = graph.op("Equal", [slot, numbers])  # (N, 1) == (1, width) -> (N, width) bool
    return graph.op("Cast", [hot], to=graph.float_type)


def _sigmoid(graph: _Graph, z: str) -> str:
    """σ(z) as the engine computes it: (1 + tanh(z / 2)) / 2, no overflow for any z."""
    half = graph.const("half", 0.5)
    tanh = graph.op("Tanh", [graph.op("Mul", [z, half])])
    return graph.op("Mul", [graph.op("Add", [tanh, graph.const("one", 1.0)]), half])


def _leaky_relu(graph: _Graph, z: str) -> str:
    """max(z, slope z): the engine's leaky ReLU, with the slope in the graph's dtype
    (LeakyRelu's alpha attribute is a float32, 0.00999999977 in a float64 graph)."""
    return graph.op("Max", [z, graph.op("Mul", [z, graph.const("slope", LEAKY_RELU_SLOPE)])])


# The hidden activations, keyed as engine.activations.ACTIVATIONS is.
ONNX_ACTIVATIONS: dict[str, Callable[[_Graph, str], str]] = {
    "sigmoid": _sigmoid,
    "tanh": lambda graph, z: graph.op("Tanh", [z]),
    "relu": lambda graph, z: graph.op("Relu", [z]),
    "leaky_relu": _leaky_relu,
}


def _binary(graph: _Graph, z: str) -> str:
    """[1 - σ(z), σ(z)] (N, 2) for the logit z (N, 1), as Classifier._probabilities_into."""
    a = _sigmoid(graph, z)
    return graph.op("Concat", [graph.op("Sub", [graph.const("one", 1.0), a]), a], axis=1)


# The output layers, keyed by engine.outputs' names: logits (N, n_y) -> probabilities (N, K).
ONNX_OUTPUTS: dict[str, Callable[[_Graph, str], str]] = {
    "sigmoid": _binary,
    "softmax": lambda graph, z: graph.op("Softmax", [z], axis=1),
}


def _network(graph: _Graph, classifier: Classifier, X: str) -> str:
    """Probabilities (N, K) for standardized inputs X (N, n_x): the model's layers in turn."""
    model = classifier.model
    activation = getattr(model, "activation", None)
    if activation is not None and activation not in ONNX_ACTIVATIONS:
        raise ExportError(f"the activation {activation!r} has no ONNX form here")
    if model.output.name not in ONNX_OUTPUTS:
        raise ExportError(f"the output layer {model.output.name!r} has no ONNX form here")
    A = X
    for W, b, g in model.layers():
        # Rows are samples: Z = A Wᵀ + bᵀ, (N, n_out) = (N, n_in)(n_in, n_out) + (1, n_out).
        weights = graph.const("W", np.ascontiguousarray(W.T, dtype=graph.dtype))
        bias = graph.const("b", np.ascontiguousarray(b.T, dtype=graph.dtype))
        A = graph.op("Add", [graph.op("MatMul", [A, weights]), bias])
        if g is not None:
            A = ONNX_ACTIVATIONS[activation](graph, A)
    return ONNX_OUTPUTS[model.output.name](graph, A)


def _metadata(classifier: Classifier, dtype: str, label_type: str) -> dict[str, str]:
    """The model's metadata_props: what a user of the file needs to feed and read it."""
    columns = []
    for encoding in classifier.transform.encodings:
        column: dict[str, Any] = {"name": encoding.column.name, "kind": encoding.column.kind}
        if isinstance(encoding, CategoricalEncoding):
            infrequent = [encoding.column.level_name(v) for v in encoding.infrequent]
            column["levels"] = encoding.level_names + infrequent
        columns.append(column)
    spec = classifier.model_spec
    return {
        "classes": json.dumps(classifier.classes),
        "label_type": label_type,
        "columns": json.dumps(columns),
        "input_names": json.dumps(classifier.feature_names),
        "dtype": dtype,
        "model_dtype": str(classifier.model.dtype),
        "model_type": spec.type,
        "activation": spec.activation if spec.type == "two_layer_network" else "",
        "missing_text": json.dumps(list(MISSING_TEXT)),
        "outputs": json.dumps(list(OUTPUTS)),
    }


def onnx_bytes(
    classifier: Classifier, *, dtype: str = "float32", metadata: Mapping[str, str] | None = None
) -> bytes:
    """``to_onnx`` serialized: the .onnx file's bytes."""
    return to_onnx(classifier, dtype=dtype, metadata=metadata).SerializeToString()
