"""How well a fitted model does on the rows it was fitted with, measured as it predicts.

The validation split when the fit held one out; else the training split, labelled so
(the defaults train on every row: then this is how well the model fits its own rows, not
how it generalizes). Probabilities come from the model's own prediction path
(Classifier.proba_of_features: the bits predict_proba gives for those rows), with the
parameters the model keeps (the restored best epoch's, if it restored one), so the
figures are those of the model that is stored. ``fit(..., evaluate=True)`` calls it.
"""

from typing import Any

from engine.classifier import Classifier
from engine.data import TrainingData
from engine.metrics import classification_metrics


def evaluate_splits(classifier: Classifier, data: TrainingData) -> dict[str, Any]:
    """engine.metrics.classification_metrics of ``classifier`` on the validation split of
    ``data`` (or its training split), with ``"split"``: "validation" or "training"."""
    split, name = (data.validation, "validation") if data.validation.m else (data.train, "training")
    probabilities = classifier.proba_of_features(split.rows)  # (m, K)
    report = classification_metrics(split.labels, probabilities, classifier.classes)
    return {"split": name, **report}
