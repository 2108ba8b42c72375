"""POST /v1/jobs with `warm_start`: the parent model checked against the request.

A job may fine-tune an existing model. Its parameters are the start, its fitted
preprocessing is used as it is and the optimizer starts fresh (engine.warm), so the
request must fit the parent, and every way it does not is listed in one 422, each
entry at ``warm_start.model_id`` (or ``training.preprocessing``):

- the model type and architecture (type; hidden_units, activation for a network; the
  output layer follows from the classes, which are the parent's);
- the dataset's input columns: missing ones, extra ones (not read by the parent and not
  left out by the upload), kind changes (numbers <-> categories);
- the label column (when the parent's is known: its dataset, or its .npz's metadata);
- classes the parent does not know: its output layer is fixed, it cannot learn them.

A request with no ``model`` takes the parent's model spec (the API's default, a logistic
regression, would rarely be the parent's).

Preprocessing: the parent's is used as it is, so ``training.preprocessing`` must be left
out (or the default, or the parent's own, as GET /v1/models/{id} shows it); any other is
a 422 rather than silently ignored. The stored job shows the parent's preprocessing.

An unknown parent id is a 422 at ``warm_start.model_id``, as an unknown ``dataset_id`` is
(service.core.errors: an id in the body). The jobs room reads the models table directly:
service.models sits above it (pyproject's layers), and this is one SELECT and a load.
"""

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

import engine
from engine import Classifier, ModelFileError, ModelSpec, TrainingSpec
from engine.warm import differences, warm_training_spec
from service.core.errors import ServiceError, Unprocessable, unknown_reference
from service.core.tables import Dataset, Model, could_be_id
from service.datasets.input_columns import training_columns

FIELD = "warm_start.model_id"
PREPROCESSING_FIELD = "training.preprocessing"


def parent_model(session: Session, model_id: str) -> tuple[Classifier, str | None]:
    """(the parent's Classifier, its label column if known); 422 at warm_start.model_id
    when no model has the id."""
    row = None
    if could_be_id(model_id):
        row = session.execute(
            select(Model.artifact, Model.dataset_id).where(Model.id == model_id)
        ).first()
    if row is None:
        raise unknown_reference(FIELD, "model", model_id)
    try:
        classifier = engine.load(row.artifact)
    except ModelFileError as error:  # stored by a worker: the server's fault, said plainly
        raise ServiceError(f"model {model_id}'s stored file cannot be loaded: {error}") from error
    label = None
    if row.dataset_id is not None:
        label = session.scalar(select(Dataset.label).where(Dataset.id == row.dataset_id))
    return classifier, label or classifier.metadata.get("label")


def check_warm_start(
    *,
    session: Session,
    model_id: str,
    dataset: Dataset,
    model_spec: ModelSpec | None,
    training_spec: TrainingSpec,
) -> tuple[ModelSpec, TrainingSpec]:
    """The specs the job runs with: ``model_spec`` (None: the parent's, when the request
    gave no model) and the training spec with the parent's preprocessing in it; one 422
    listing every difference between the parent and the request otherwise."""
    parent, parent_label = parent_model(session, model_id)
    model_spec = model_spec or parent.model_spec
    table = training_columns(dataset)
    found = differences(parent, model_spec, table.columns, dataset.classes, table.left_out)
    errors = [{"field": FIELD, "message": message} for message in found.messages()]
    if parent_label is not None and parent_label != dataset.label:
        errors.append(
            {
                "field": FIELD,
                "message": f"label column: the parent model predicts {parent_label!r}, "
                f"dataset {dataset.id!r} labels {dataset.label!r}",
            }
        )
    try:
        spec = warm_training_spec(parent, training_spec)
    except ValueError:
        shown = parent.training_spec.to_dict()["preprocessing"]
        message = (
            "a warm start uses its parent's fitted preprocessing as it is: leave "
            f"preprocessing out, or give the parent's own {shown}"
        )
        errors.append({"field": PREPROCESSING_FIELD, "message": message})
        spec = training_spec
    if errors:
        detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
        raise Unprocessable(
            f"model {model_id!r} cannot be fine-tuned on this request: {detail}", errors=errors
        )
    return model_spec, replace(spec, preprocessing=parent.training_spec.preprocessing)
