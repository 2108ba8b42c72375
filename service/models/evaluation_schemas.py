"""How a model's evaluation reads in the API: engine.metrics.classification_metrics' report,
typed, and the split it was measured on (engine.evaluation.evaluate_fit)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A label is the dataset's own value: ints stay ints, strings stay strings.
Label = int | float | str | bool
ClassField = Field(alias="class", description="the class, in the dataset's own values")


class Scores(BaseModel):
    """Precision, recall and F1 averaged over the classes (0 where a class has none)."""

    precision: float
    recall: float
    f1: float


class ClassScores(Scores):
    """One class's precision, recall, F1 and rows (support)."""

    model_config = ConfigDict(populate_by_name=True)

    class_: Label = ClassField
    support: int = Field(description="rows of this class")


class OneVsRestAuc(BaseModel):
    """More than two classes: each class's ROC AUC against the rest, averaged."""

    macro: float | None = Field(description="the plain mean; null if a class has no AUC")
    weighted: float | None = Field(description="weighted by each class's rows")


class RocCurve(BaseModel):
    """A ROC curve, thinned to at most 101 points (first and last kept)."""

    fpr: list[float] | None = Field(description="false positive rates; null with no negatives")
    tpr: list[float] | None = Field(description="true positive rates; null with no positives")
    thresholds: list[float | None] = Field(
        description="the probability at each point; the first is null (no row is positive)"
    )


class ClassRocCurve(RocCurve):
    model_config = ConfigDict(populate_by_name=True)

    class_: Label = ClassField


class CalibrationBin(BaseModel):
    """One of ten uniform bins of predicted probability that holds rows."""

    mean_predicted: float
    fraction_positive: float
    count: int


class ClassCalibration(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: Label = ClassField
    bins: list[CalibrationBin]


class ModelEvaluation(BaseModel):
    """The model's metrics on its validation split, or on its training split when the job
    held none out (the default): measured with the parameters the model holds, as it
    predicts. Two classes: the positive class is the second of `classes`."""

    split: Literal["validation", "training"] = Field(
        description="which rows: `training` says how well it fits its own rows, not how it "
        "generalizes"
    )
    rows: int
    accuracy: float
    log_loss: float = Field(description="mean -log P(true class), probabilities clipped to eps")
    roc_auc: float | OneVsRestAuc | None = Field(
        description="two classes: a number (null if the split holds one class); more: "
        "one-vs-rest `macro` and `weighted`"
    )
    per_class: list[ClassScores]
    macro: Scores
    weighted: Scores = Field(description="averaged weighing each class by its rows")
    confusion_matrix: list[list[int]] = Field(
        description="rows: the true class, columns: the predicted one, in `classes` order"
    )
    roc_curve: RocCurve | list[ClassRocCurve] | None = Field(
        default=None,
        description="two classes: one curve; more: one per class against the rest. "
        "null in listings",
    )
    calibration: list[CalibrationBin] | list[ClassCalibration] | None = Field(
        default=None,
        description="predicted probability against the observed fraction, per bin (per "
        "class against the rest with more than two). null in listings",
    )


# What GET /v1/models/{id} shows for a two-class network (OpenAPI example).
EXAMPLE_EVALUATION: dict[str, Any] = {
    "split": "validation",
    "rows": 114,
    "accuracy": 0.8772,
    "log_loss": 0.2971,
    "roc_auc": 0.9431,
    "per_class": [
        {"class": 0, "precision": 0.8571, "recall": 0.8095, "f1": 0.8326, "support": 42},
        {"class": 1, "precision": 0.8919, "recall": 0.9167, "f1": 0.9041, "support": 72},
    ],
    "macro": {"precision": 0.8745, "recall": 0.8631, "f1": 0.8684},
    "weighted": {"precision": 0.8791, "recall": 0.8772, "f1": 0.8778},
    "confusion_matrix": [[34, 8], [6, 66]],
    "roc_curve": {
        "fpr": [0.0, 0.0, 0.1429, 1.0],
        "tpr": [0.0, 0.4167, 0.9167, 1.0],
        "thresholds": [None, 0.9812, 0.4983, 0.0121],
    },
    "calibration": [
        {"mean_predicted": 0.0613, "fraction_positive": 0.0588, "count": 17},
        {"mean_predicted": 0.9402, "fraction_positive": 0.9524, "count": 42},
    ],
}
