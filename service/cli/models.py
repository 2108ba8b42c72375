"""Models: `backprop predict MODEL_ID FILE` (top level, as before) and `backprop models
list|show|download`."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from service.cli.api_types import Model, Predictions
from service.cli.client import DEFAULT_URL, ApiError
from service.cli.common import (
    ApiKeyOption,
    BackpropCommand,
    CursorOption,
    JsonOption,
    LimitOption,
    LocalError,
    UrlOption,
    complete_names,
    connected,
    engine_choice,
    examples,
    sub_app,
)
from service.cli.datasets import readable_file
from service.cli.output import (
    Column,
    first_of,
    model_short,
    model_spec_shown,
    number,
    print_fields,
    print_json,
    print_page,
    print_table,
    size,
    spec_text,
    timestamp,
    training_spec_shown,
)
from service.cli.predict_input import record_batches

PREDICT_BATCH_ROWS = 1_000  # rows per prediction request (the server allows up to its limit)

models_app = sub_app("models", "List, show, download (.npz) and delete fitted models.")
ModelId = Annotated[str, typer.Argument(metavar="MODEL_ID", help="the model's id")]


def register(app: typer.Typer) -> None:
    """`predict`, a top-level command of ``app`` (the group is added by service.cli.app)."""
    app.command(
        "predict",
        cls=BackpropCommand,
        epilog=examples(
            "backprop predict MODEL_ID cancer.csv | head",
            "backprop predict MODEL_ID rows.parquet --batch-rows 500 --json",
        ),
    )(predict)


def predict(
    model_id: ModelId,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a .csv or .parquet file")],
    batch_rows: Annotated[
        int,
        typer.Option(
            "--batch-rows",
            metavar="N",
            min=1,
            help="rows per request (the server's limit is BACKPROP_MAX_PREDICTION_ROWS)",
        ),
    ] = PREDICT_BATCH_ROWS,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Predict labels for the rows of a CSV or Parquet file.

    Reads FILE here, keeps the model's input columns (others, such as a label column,
    are left out; an empty cell is sent as missing) and prints each row's predicted
    label and class probabilities. Rows are sent in batches.
    """
    with connected(url, api_key) as api:
        path = readable_file(file)
        model = api.get_model(model_id)
        responses = predict_file(
            model, path, batch_rows, lambda records: api.predict(model_id, records)
        )
        print_predictions(responses, model["classes"], json_output=json_output)


Send = Callable[[list[dict[str, Any]]], Predictions]


def predict_file(model: Model, path: Path, batch_rows: int, send: Send) -> list[Predictions]:
    """The answers to the file's rows, read as ``model``'s input columns and sent in batches
    through ``send`` (by model id, or through a registry alias)."""
    columns = model.get("columns") or [
        {"name": name, "kind": "numeric"} for name in model["feature_names"]
    ]
    responses: list[Predictions] = []
    for records in record_batches(path, columns, batch_rows):
        responses += predict_records(send, records)
    return responses


def print_predictions(responses: list[Predictions], classes: list[Any], json_output: bool) -> None:
    """Each row's label and class probabilities as a table (or the answers as JSON)."""
    if json_output:
        print_json(responses)
        return
    headers = ["ROW", "LABEL", *(f"P({c})" for c in classes)]
    rows = []
    for prediction in (p for response in responses for p in response["predictions"]):
        probabilities = prediction["probabilities"]
        row = [str(len(rows) + 1), str(prediction["label"])]
        rows.append(row + [f"{probabilities[str(c)]:.4f}" for c in classes])
    print_table(headers, rows)


def predict_records(send: Send, records: list[dict[str, Any]]) -> list[Predictions]:
    """One request, or several if the server's row limit is lower than the batch."""
    try:
        return [send(records)]
    except ApiError as error:
        limit = error.problem.get("limit")
        if error.status != 413 or not isinstance(limit, int) or not 0 < limit < len(records):
            raise
    return [send(records[i : i + limit]) for i in range(0, len(records), limit)]


MODEL_COLUMNS: tuple[Column, ...] = (
    ("ID", lambda model: model["id"]),
    ("MODEL", lambda model: model_short(model["model"])),
    ("JOB", lambda model: model["job_id"]),
    ("EPOCHS", lambda model: str(model["metrics"].get("epochs_run") or "-")),
    ("TRAIN LOSS", lambda model: number(model["metrics"].get("final_train_loss"))),
    ("VAL LOSS", lambda model: number(model["metrics"].get("final_val_loss"))),
    ("CREATED (UTC)", lambda model: timestamp(model["created_at"])),
)


@models_app.command(
    "list",
    cls=BackpropCommand,
    epilog=examples(
        "backprop models list",
        "backprop models list --dataset ID --type two_layer_network",
        "backprop models list --job ID --json",
    ),
)
def list_models(
    dataset: Annotated[
        str | None, typer.Option("--dataset", metavar="ID", help="only models of this dataset")
    ] = None,
    job: Annotated[
        str | None, typer.Option("--job", metavar="ID", help="only the model of this job")
    ] = None,
    model_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            parser=engine_choice("MODEL_TYPES", "--type"),
            autocompletion=complete_names("MODEL_TYPES"),
            help="only models of this type: {MODEL_TYPES}",
        ),
    ] = None,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List fitted models, newest first: id, model, job, epochs, final losses."""
    with connected(url, api_key) as api:
        page = api.list_models(
            dataset_id=dataset, job_id=job, model_type=model_type, limit=limit, cursor=cursor
        )
    print_page(page, MODEL_COLUMNS, command="models list", json_output=json_output)


@models_app.command(
    "show",
    cls=BackpropCommand,
    epilog=examples("backprop models show MODEL_ID", "backprop models show MODEL_ID --json"),
)
def show_model(
    model_id: ModelId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """A model's specs, classes, features and metrics (--json: without its parameter
    arrays; `models download` gets those)."""
    with connected(url, api_key) as api:
        model = api.get_model(model_id)
        if json_output:
            print_json(model)
            return
        print_fields(model_fields(model))


def model_fields(model: Model) -> list[tuple[str, Any]]:
    metrics: dict[str, Any] = model["metrics"]
    return [
        ("id", model["id"]),
        ("job", model["job_id"]),
        ("dataset", model["dataset_id"] or "- (deleted)"),
        *lineage_fields(model),
        ("model", spec_text(model_spec_shown(model["model"]))),
        ("training", spec_text(training_spec_shown(model["training"]))),
        ("classes", ", ".join(str(c) for c in model["classes"])),
        ("features", first_of(model["feature_names"])),
        ("stop reason", metrics.get("stop_reason") or "-"),
        ("epochs", metrics.get("epochs_run") or "-"),
        ("best epoch", metrics.get("best_epoch") or "-"),
        ("parameters", parameters_of(metrics)),
        # The figures of the parameters it holds (older models: of the last epoch).
        ("train loss", number(held(metrics, "train_loss"))),
        ("val loss", number(held(metrics, "val_loss"))),
        ("train acc", number(held(metrics, "train_accuracy"))),
        ("val acc", number(held(metrics, "val_accuracy"))),
        ("created", timestamp(model["created_at"])),
    ]


def parameters_of(metrics: dict[str, Any]) -> str:
    """ "epoch 29 (best)": which epoch's parameters the model holds; "-" for older models."""
    if metrics.get("model_epoch") is None:
        return "-"
    return f"epoch {metrics['model_epoch']} ({metrics.get('model_parameters') or 'last'})"


def held(metrics: dict[str, Any], name: str) -> float | None:
    """A figure of the epoch the model holds: model_<name>, else final_<name> (older models)."""
    if metrics.get("model_epoch") is not None:
        return metrics.get(f"model_{name}")
    return metrics.get(f"final_{name}")


def lineage_fields(model: Model) -> list[tuple[str, Any]]:
    """ "parent": the model it was fine-tuned from ("-": fresh weights); "lineage": every
    ancestor, parent first, when there is more than one."""
    lineage = model.get("lineage") or []
    lines: list[tuple[str, Any]] = [("parent", model.get("parent_model_id") or "-")]
    if len(lineage) > 1:
        lines.append(("lineage", " <- ".join(lineage)))
    return lines


@models_app.command(
    "download",
    cls=BackpropCommand,
    epilog=examples(
        "backprop models download MODEL_ID",
        "backprop models download MODEL_ID -o cancer.npz",
        "python -c 'import engine; print(engine.load(\"cancer.npz\"))'",
    ),
)
def download_model(
    model_id: ModelId,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="where to write it (default: model-ID.npz)"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite FILE if it exists")] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Download a model as the engine's portable .npz (engine.load reads it; no pickle)."""
    path = output or Path(f"model-{model_id}.npz")
    with connected(url, api_key) as api:
        written = save_download(path, force, lambda file: api.download_model(model_id, file))
        if json_output:
            print_json({"id": model_id, "path": str(path), "bytes": written})
        else:
            print_fields([("model", model_id), ("saved", str(path)), ("size", size(written))])


def save_download(path: Path, force: bool, download: Callable[[BinaryIO], int]) -> int:
    """Write what ``download`` streams into ``path``; the bytes written. LocalError when
    ``path`` exists (unless ``force``) or its folder does not."""
    if path.exists() and not force:
        raise LocalError(f"{path} exists; --force overwrites it")
    if not path.parent.is_dir():
        raise LocalError(f"{path.parent}: no such folder")
    # A partial download never takes the file's name: written aside, renamed when whole.
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.chmod(partial, 0o666 & ~current_umask())  # mkstemp's 0600 is for secrets, not this
        with os.fdopen(handle, "wb") as file:
            written = download(file)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return written


@models_app.command(
    "delete",
    cls=BackpropCommand,
    epilog=examples("backprop models delete MODEL_ID", "backprop models delete MODEL_ID --json"),
)
def delete_model(
    model_id: ModelId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a model and its registered versions (refused while a registry alias points at
    one of them: move the alias first). Its job and history stay."""
    with connected(url, api_key) as api:
        api.delete_model(model_id)
        if json_output:
            print_json({"id": model_id, "deleted": True})
        else:
            print_fields([("model", model_id), ("deleted", "yes")])


def current_umask() -> int:
    """The process's umask (reading it means setting it: set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
