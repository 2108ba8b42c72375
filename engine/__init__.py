"""The NumPy engine: the seed note's logistic regression and two-layer network.

Pure NumPy (SciPy for L-BFGS); knows nothing of HTTP or SQL.

    from engine import ModelSpec, TrainingSpec, fit
    result = fit(rows, labels, ModelSpec(type="two_layer_network"), TrainingSpec())
    result.classifier.predict(new_rows)

A table with string categories and empty cells: ``X, columns = code_table(frame_columns)``
then ``fit(X, y, columns=columns)``; ``classifier.code_records(records)`` codes new rows.
"""

from engine.activations import ACTIVATION_NAMES, ACTIVATIONS, DERIVATIVES
from engine.checkpoint import CheckpointError
from engine.classifier import Classifier
from engine.columns import (
    CATEGORICAL,
    NUMERIC,
    InputColumn,
    RecordError,
    code_records,
    code_table,
    recode,
)
from engine.diagnostics import Diagnostics
from engine.encoding import ColumnTransform
from engine.gradcheck import GradientCheck, gradient_check
from engine.history import STOP_REASONS, EpochMetrics
from engine.initializers import INIT_NAMES, INITIALIZERS
from engine.metrics import CALIBRATION_BINS, CURVE_POINTS, classification_metrics
from engine.models import LogisticRegression, Model, TwoLayerNetwork
from engine.optimizers import OPTIMIZERS
from engine.persistence import ModelFileError, load, save, to_bytes
from engine.specs import (
    DEFAULT_LEARNING_RATES,
    DTYPE_NAMES,
    HIDDEN_LAYER_FIELDS,
    IMPUTE_NAMES,
    MODEL_BOUNDS,
    MODEL_TYPES,
    NETWORK_LEARNING_RATES,
    OPTIMIZER_NAMES,
    PREPROCESSING_BOUNDS,
    STOPPING_BOUNDS,
    TRAINING_BOUNDS,
    Bounds,
    EarlyStopping,
    ModelSpec,
    PreprocessingSpec,
    SpecError,
    TrainingSpec,
)
from engine.training import FitResult, Progress, fit

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_NAMES",
    "CALIBRATION_BINS",
    "CATEGORICAL",
    "CURVE_POINTS",
    "DEFAULT_LEARNING_RATES",
    "DERIVATIVES",
    "DTYPE_NAMES",
    "HIDDEN_LAYER_FIELDS",
    "IMPUTE_NAMES",
    "INITIALIZERS",
    "INIT_NAMES",
    "MODEL_BOUNDS",
    "MODEL_TYPES",
    "NETWORK_LEARNING_RATES",
    "NUMERIC",
    "OPTIMIZERS",
    "OPTIMIZER_NAMES",
    "PREPROCESSING_BOUNDS",
    "STOPPING_BOUNDS",
    "STOP_REASONS",
    "TRAINING_BOUNDS",
    "Bounds",
    "CheckpointError",
    "Classifier",
    "ColumnTransform",
    "Diagnostics",
    "EarlyStopping",
    "EpochMetrics",
    "FitResult",
    "GradientCheck",
    "InputColumn",
    "LogisticRegression",
    "Model",
    "ModelFileError",
    "ModelSpec",
    "PreprocessingSpec",
    "Progress",
    "RecordError",
    "SpecError",
    "TrainingSpec",
    "TwoLayerNetwork",
    "classification_metrics",
    "code_records",
    "code_table",
    "fit",
    "gradient_check",
    "load",
    "recode",
    "save",
    "to_bytes",
]
