"""`backprop evaluate MODEL_ID DATASET_ID` and `backprop batch-predict MODEL_ID DATASET_ID
--out FILE`: a model scoring a stored dataset (POST /v1/models/{id}/evaluations and
/batch-predictions). Both wait for a worker when the server queues the work (202): the
batch prediction with a progress bar on stderr (Rich on a terminal, a line per tenth
elsewhere), then its result is streamed to FILE (through a temporary file beside it, so
FILE is never left half written)."""

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from service.cli.client import DEFAULT_URL, SLOW_TIMEOUT, BackpropClient, check
from service.cli.common import (
    EXIT_JOB_FAILED,
    TERMINAL_STATES,
    ApiKeyOption,
    BackpropCommand,
    JsonOption,
    LocalError,
    UrlOption,
    connected,
    examples,
)
from service.cli.output import number, print_fields, print_json, print_table

POLL_SECONDS = 0.25
NOTTY_STEP = 0.1  # without a terminal, one progress line per tenth of the rows
ModelId = Annotated[str, typer.Argument(metavar="MODEL_ID", help="the model's id")]
DatasetId = Annotated[str, typer.Argument(metavar="DATASET_ID", help="a stored dataset's id")]


def register(app: typer.Typer) -> None:
    """`evaluate` and `batch-predict`, top-level commands of ``app``."""
    app.command(
        "evaluate",
        cls=BackpropCommand,
        epilog=examples(
            "backprop evaluate MODEL_ID DATASET_ID", "backprop evaluate MODEL_ID DATASET_ID --json"
        ),
    )(evaluate)
    app.command(
        "batch-predict",
        cls=BackpropCommand,
        epilog=examples(
            "backprop batch-predict MODEL_ID DATASET_ID --out scores.parquet",
            "backprop batch-predict MODEL_ID DATASET_ID --out scores.csv",
        ),
    )(batch_predict)


def _post(api: BackpropClient, path: str, dataset_id: str) -> httpx.Response:
    return api._send("POST", path, json={"dataset_id": dataset_id}, timeout=SLOW_TIMEOUT)


def _poll(api: BackpropClient, location: str, seen: Any = None) -> dict[str, Any]:
    """GET location until its status is final; ``seen`` is called with each answer."""
    while True:
        task = api._json("GET", location)
        if seen is not None:
            seen(task)
        if task["status"] in TERMINAL_STATES:
            return task
        time.sleep(POLL_SECONDS)


def _failed(task: dict[str, Any], what: str) -> None:
    print(f"error: {what} {task['id']} {task['status']}: {task['error']}", file=sys.stderr)
    raise typer.Exit(EXIT_JOB_FAILED)


def evaluate(
    model_id: ModelId,
    dataset_id: DatasetId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate a model on a stored, labelled dataset: accuracy, log-loss, ROC AUC, each
    class's precision, recall and F1, and the confusion matrix (scikit-learn's figures).

    A large dataset is scored by a worker: the command waits for it.
    """
    with connected(url, api_key) as api:
        response = _post(api, f"/v1/models/{model_id}/evaluations", dataset_id)
        report = response.json()
        if response.status_code == 202:
            print(f"evaluation {report['id']} queued; waiting for a worker", file=sys.stderr)
            task = _poll(api, response.headers["location"])
            if task["status"] != "succeeded":
                _failed(task, "evaluation")
            report = task["evaluation"]
        if json_output:
            print_json(report)
            return
        print_report(report)


def print_report(report: dict[str, Any]) -> None:
    """The headline figures as `key: value` lines, then per-class scores and confusion."""
    auc = report["roc_auc"]
    fields: list[tuple[str, Any]] = [
        ("model", report["model_id"]),
        ("dataset", report["dataset_id"]),
        ("rows", report["rows"]),
        ("accuracy", number(report["accuracy"])),
        ("log_loss", number(report["log_loss"])),
    ]
    if isinstance(auc, dict):
        fields += [
            ("roc_auc macro", number(auc["macro"])),
            ("roc_auc weighted", number(auc["weighted"])),
        ]
    else:
        fields.append(("roc_auc", number(auc)))
    print_fields(fields)
    print()
    classes = [str(scores["class"]) for scores in report["per_class"]]
    rows = [
        [c, number(s["precision"]), number(s["recall"]), number(s["f1"]), str(s["support"])]
        for c, s in zip(classes, report["per_class"], strict=True)
    ]
    print_table(["CLASS", "PRECISION", "RECALL", "F1", "SUPPORT"], rows)
    print()
    confusion = [
        [c, *map(str, counts)]
        for c, counts in zip(classes, report["confusion_matrix"], strict=True)
    ]
    print_table(["TRUE \\ PREDICTED", *classes], confusion)


class RowsProgress:
    """rows_done of rows_total on stderr: a Rich bar on a terminal, lines elsewhere."""

    def __init__(self, task_id: str):
        self.task_id = task_id
        self.bar: Progress | None = None
        self.printed = -1
        if sys.stderr.isatty():
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self.bar.start()
            self.row_task = self.bar.add_task(f"scoring ({task_id[:8]})", total=None)

    def __call__(self, task: dict[str, Any]) -> None:
        done, total = task["rows_done"], task["rows_total"]
        if self.bar is not None:
            self.bar.update(self.row_task, completed=done, total=total, description=task["status"])
            return
        step = int(done / total / NOTTY_STEP) if total else 10
        if step != self.printed:
            print(
                f"batch prediction {self.task_id}: {task['status']}, {done}/{total} rows",
                file=sys.stderr,
            )
            self.printed = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def batch_predict(
    model_id: ModelId,
    dataset_id: DatasetId,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="FILE",
            help="where the result goes: .parquet or .csv (row, label, p_<class>...)",
        ),
    ],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Score every row of a stored dataset in a worker and download the result to FILE.

    Shows the worker's progress while it scores; the file holds each row's index in the
    dataset, its predicted label and the probability of each class.
    """
    file_format = {".parquet": "parquet", ".csv": "csv"}.get(out.suffix.lower())
    with connected(url, api_key) as api:
        if file_format is None:
            raise LocalError(f"--out {out}: the name must end in .parquet or .csv")
        if not out.resolve().parent.is_dir():
            raise LocalError(f"--out {out}: no folder {out.resolve().parent}")
        response = _post(api, f"/v1/models/{model_id}/batch-predictions", dataset_id)
        location = response.headers["location"]
        progress = RowsProgress(response.json()["id"])
        try:
            task = _poll(api, location, progress)
        finally:
            progress.close()
        if task["status"] != "succeeded":
            _failed(task, "batch prediction")
        size = download(api, f"{location}/result", file_format, out)
        print(f"wrote {task['rows_total']} rows to {out} ({size} bytes)", file=sys.stderr)


def download(api: BackpropClient, path: str, file_format: str, out: Path) -> int:
    """Stream the result into ``out`` (replaced at once when complete); its bytes."""
    handle, partial = tempfile.mkstemp(dir=out.resolve().parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            params = {"format": file_format}
            with api._http.stream("GET", path, params=params, timeout=SLOW_TIMEOUT) as response:
                if response.is_error:
                    response.read()
                    check(response)
                for chunk in response.iter_bytes():
                    file.write(chunk)
                size = response.num_bytes_downloaded
        os.replace(partial, out)
        return size
    except httpx.TransportError as error:
        Path(partial).unlink(missing_ok=True)
        raise api._unreachable(error) from error
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
