"""The client commands of `backprop`: upload, train, jobs, status, cancel, history, predict.

Each talks to the API at --url (BACKPROP_URL, else http://127.0.0.1:8000) through
service.client, and prints an aligned table or a `key: value` block, or with
--json the server's JSON. Progress bars and notes go to stderr, so stdout stays
clean for pipes.

Exit status: 0 done; 1 the server refused (its problem detail is printed) or a local
file is unusable; 2 the server could not be reached (argparse also exits 2 on a usage
error); 3 a followed job ended failed or cancelled; 130 interrupted.
"""

import argparse
import importlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from service.client import (
    DEFAULT_URL,
    ApiError,
    BackpropClient,
    HistoryPoint,
    Job,
    Predictions,
    Unreachable,
    file_format,
)

if TYPE_CHECKING:
    import numpy as np

EXIT_OK = 0
EXIT_ERROR = 1  # the server refused the request, or a local file is unusable
EXIT_UNREACHABLE = 2
EXIT_JOB_FAILED = 3  # a followed job ended failed or cancelled
EXIT_INTERRUPTED = 130

# service.core.states.TERMINAL_STATES, restated: importing SQLAlchemy would slow every command.
TERMINAL_STATES = ("succeeded", "failed", "cancelled")
PREDICT_BATCH_ROWS = 1_000  # rows per prediction request (the server allows up to its limit)
REDRAW_SECONDS = 0.1  # a TTY progress bar redraws at most this often
NOTTY_STEP_PERCENT = 10  # without a TTY, one progress line per this many percent

Handler = Callable[[argparse.Namespace, BackpropClient], int]


class LocalError(Exception):
    """A problem on this side (a missing or unreadable file): printed as ``error: ...``."""


class EngineNames(Sequence[str]):
    """One of the engine's name tables (e.g. ACTIVATION_NAMES), imported on first use.

    Importing the engine (NumPy, SciPy) takes a quarter of a second that `backprop jobs`
    has no use for; argparse reads choices only to check or show `train`'s options.
    """

    def __init__(self, table: str):
        self.table = table

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module("engine"), self.table))

    def __getitem__(self, index: Any) -> Any:
        return self.names[index]

    def __len__(self) -> int:
        return len(self.names)


# ---------------------------------------------------------------------------------------
# Commands


def add_client_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register upload, train, jobs, status, cancel, history and predict on ``commands``."""
    common = argparse.ArgumentParser(add_help=False)
    server = common.add_argument_group("server and output")
    server.add_argument(
        "--url",
        default=os.environ.get("BACKPROP_URL") or DEFAULT_URL,
        help="the API's base URL (BACKPROP_URL, else %(default)s)",
    )
    server.add_argument(
        "--api-key",
        default=os.environ.get("BACKPROP_API_KEY"),
        metavar="KEY",
        help="sent as `Authorization: Bearer KEY` (BACKPROP_API_KEY)",
    )
    server.add_argument(
        "--json", action="store_true", help="print the server's JSON instead of a table"
    )

    def command(name: str, handler: Handler, summary: str, description: str) -> Any:
        parser = commands.add_parser(name, parents=[common], help=summary, description=description)
        parser.set_defaults(run=partial(run_client, handler))
        return parser

    upload = command(
        "upload",
        run_upload,
        "upload a CSV or Parquet file as a dataset",
        "Stream FILE to the server, which validates and stores it. The same file with the "
        "same label column again answers the dataset stored before.",
    )
    upload.add_argument("file", metavar="FILE", type=Path, help="a .csv or .parquet file")
    upload.add_argument("--label", metavar="COL", help="the label column (default: the last)")
    upload.add_argument("--name", help="the dataset's name (default: the file's name)")

    train = command(
        "train",
        run_train,
        "queue a training job on a dataset",
        "Queue a job; a worker trains it. Only the options given are sent: the server fills "
        "in the engine's defaults for the rest. --follow shows its progress until it ends.",
    )
    train.add_argument("--dataset", required=True, metavar="ID", help="the dataset to train on")
    add_spec_options(train)
    train.add_argument("--follow", action="store_true", help=FOLLOW_HELP)

    jobs = command(
        "jobs",
        run_jobs,
        "list jobs, newest first",
        "One page of jobs, newest first: id, status, model, epoch, latest losses.",
    )
    jobs.add_argument(
        "--status",
        action="append",
        metavar="S",
        help="only jobs in this state (repeat, or comma-separate): queued, running, "
        "cancelling, succeeded, failed, cancelled",
    )
    jobs.add_argument("--dataset", metavar="ID", help="only jobs on this dataset")
    jobs.add_argument("--limit", type=int, metavar="N", help="jobs per page (server default 50)")
    jobs.add_argument("--cursor", help="the next page: the cursor a previous listing printed")

    status = command(
        "status",
        run_status,
        "a job's state, specs and progress",
        "A job's details and progress; with --follow, its live progress until it ends.",
    )
    status.add_argument("job_id", metavar="ID")
    status.add_argument("--follow", action="store_true", help=FOLLOW_HELP)

    cancel = command(
        "cancel",
        run_cancel,
        "cancel a job",
        "Cancel a job: a queued one at once, a running one at its next epoch (its history "
        "is kept). Cancelling a finished job changes nothing.",
    )
    cancel.add_argument("job_id", metavar="ID")

    history = command(
        "history",
        run_history,
        "a job's loss history, per epoch",
        "The job's per-epoch losses, accuracies, gradient norm and seconds, as a table, "
        "CSV (--csv, as the server writes it) or JSON.",
    )
    history.add_argument("job_id", metavar="ID")
    history.add_argument("--csv", action="store_true", help="print CSV with a header row")
    history.add_argument(
        "--since-epoch", type=int, default=0, metavar="N", help="only epochs after N"
    )
    history.add_argument(
        "--max-points",
        type=int,
        metavar="N",
        help="down-sample evenly to at most N points (keeps the first, last and best)",
    )

    predict = command(
        "predict",
        run_predict,
        "predict labels for the rows of a CSV or Parquet file",
        "Read FILE here, keep the model's feature columns (others, such as a label column, "
        "are left out) and print each row's predicted label and class probabilities. "
        "Rows are sent in batches.",
    )
    predict.add_argument("model_id", metavar="MODEL_ID")
    predict.add_argument("file", metavar="FILE", type=Path, help="a .csv or .parquet file")
    predict.add_argument(
        "--batch-rows",
        type=positive_int,
        default=PREDICT_BATCH_ROWS,
        metavar="N",
        help="rows per request (default: %(default)s; the server's limit is "
        "BACKPROP_MAX_PREDICTION_ROWS)",
    )


FOLLOW_HELP = (
    "show a live progress bar until the job ends; exit 0 if it succeeded, "
    f"{EXIT_JOB_FAILED} if it failed or was cancelled"
)


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """The job spec's options; the allowed names are the engine's own tables."""
    model = parser.add_argument_group("model (default: the server's)")
    model.add_argument(
        "--model", choices=EngineNames("MODEL_TYPES"), metavar="TYPE", help="%(choices)s"
    )
    model.add_argument("--hidden-units", type=int, metavar="N", help="n[1] (two_layer_network)")
    model.add_argument(
        "--activation",
        choices=EngineNames("ACTIVATION_NAMES"),
        metavar="G",
        help="hidden-layer g: %(choices)s",
    )
    model.add_argument(
        "--init",
        choices=EngineNames("INIT_NAMES"),
        metavar="NAME",
        help="weight initialization: %(choices)s",
    )
    model.add_argument("--init-scale", type=float, metavar="X", help="std of `random` init")

    training = parser.add_argument_group("training (default: the server's)")
    training.add_argument(
        "--optimizer", choices=EngineNames("OPTIMIZER_NAMES"), metavar="NAME", help="%(choices)s"
    )
    training.add_argument("--learning-rate", type=float, metavar="X")
    training.add_argument("--epochs", type=int, metavar="N")
    training.add_argument("--batch-size", type=int, metavar="N", help="default: full batch")
    training.add_argument("--l2", type=float, metavar="X", help="L2 penalty λ")
    training.add_argument("--validation-fraction", type=float, metavar="X")
    stopping = training.add_mutually_exclusive_group()
    stopping.add_argument(
        "--patience", type=int, metavar="N", help="early stopping after N epochs without gain"
    )
    stopping.add_argument(
        "--no-early-stopping", action="store_true", help="train every epoch asked for"
    )
    training.add_argument("--min-delta", type=float, metavar="X", help="smallest gain counted")
    training.add_argument("--tolerance", type=float, metavar="X", help="gradient-norm stop")
    training.add_argument("--seed", type=int, metavar="N")
    training.add_argument(
        "--dtype", choices=EngineNames("DTYPE_NAMES"), metavar="NAME", help="%(choices)s"
    )
    training.add_argument("--time-limit", type=float, metavar="S", help="seconds of training")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def run_client(handler: Handler, args: argparse.Namespace) -> int:
    """Run a client command; expected failures become one line on stderr and an exit code."""
    # httpx logs every request at INFO, which `backprop`'s logging shows: not for a client.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with BackpropClient(args.url, api_key=args.api_key) as api:
            return handler(args, api)
    except ApiError as error:
        print_problem(error)
        return EXIT_ERROR
    except Unreachable as error:
        print(f"error: {error.url} could not be reached: {error.reason}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except LocalError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `backprop history ID --csv | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def print_problem(error: ApiError) -> None:
    line = f"error: {error.title}: {error.detail}" if error.detail else f"error: {error.title}"
    print(line, file=sys.stderr)
    for field_error in error.errors:
        said = (field_error["message"], f"{field_error['field']}: {field_error['message']}")
        if error.detail not in said:  # a single-field problem says it once
            print(f"  {field_error['field']}: {field_error['message']}", file=sys.stderr)


# upload


def run_upload(args: argparse.Namespace, api: BackpropClient) -> int:
    """`backprop upload FILE`: the stored dataset, new (201) or found (200)."""
    path = readable_file(args.file)
    uploaded = api.upload_dataset(path, label=args.label, name=args.name)
    dataset = uploaded.dataset
    if args.json:
        print_json(dataset)
        return EXIT_OK
    if uploaded.created:
        outcome = "new dataset (201 Created)"
    else:
        outcome = "already stored (200 OK: the same file and label were uploaded before)"
    counts = ", ".join(f"{label}: {count}" for label, count in dataset["class_counts"].items())
    print_fields(
        [
            ("upload", outcome),
            ("id", dataset["id"]),
            ("name", dataset["name"]),
            ("rows", dataset["rows"]),
            ("features", len(dataset["features"])),
            ("label", dataset["label"]),
            ("classes", ", ".join(str(c) for c in dataset["classes"])),
            ("class counts", counts),
        ]
    )
    return EXIT_OK


def readable_file(path: Path) -> Path:
    if not path.is_file():
        raise LocalError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise LocalError(f"{path}: not readable")
    return path


# train, status, cancel


def run_train(args: argparse.Namespace, api: BackpropClient) -> int:
    """`backprop train --dataset ID ...`: queue the job; with --follow, watch it end."""
    job = api.create_job(job_request(args))
    if args.follow:
        return follow_job(api, job, json_output=args.json)
    if args.json:
        print_json(job)
    else:
        print_fields(job_fields(job))
    return EXIT_OK


def job_request(args: argparse.Namespace) -> dict[str, Any]:
    """A JobCreate body with the options given; the server fills in every other field."""
    model = given(
        type=args.model,
        hidden_units=args.hidden_units,
        activation=args.activation,
        init=args.init,
        init_scale=args.init_scale,
    )
    training = given(
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        batch_size=args.batch_size,
        l2=args.l2,
        validation_fraction=args.validation_fraction,
        tolerance=args.tolerance,
        seed=args.seed,
        dtype=args.dtype,
        time_limit=args.time_limit,
    )
    if args.no_early_stopping:
        training["early_stopping"] = None
    elif stopping := given(patience=args.patience, min_delta=args.min_delta):
        training["early_stopping"] = stopping
    body: dict[str, Any] = {"dataset_id": args.dataset}
    if model:  # a model spec names its type; the API's default is a logistic regression
        body["model"] = {"type": "logistic_regression", **model}
    if training:
        body["training"] = training
    return body


def given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def run_status(args: argparse.Namespace, api: BackpropClient) -> int:
    """`backprop status ID [--follow]`."""
    job = api.get_job(args.job_id)
    if args.follow:
        return follow_job(api, job, json_output=args.json)
    if args.json:
        print_json(job)
    else:
        print_fields(job_fields(job))
    return EXIT_OK


def run_cancel(args: argparse.Namespace, api: BackpropClient) -> int:
    """`backprop cancel ID`: idempotent; a running job stops at its next epoch."""
    before = api.get_job(args.job_id)  # to tell "cancelled now" from "had already ended"
    job, stopping = api.cancel_job(args.job_id)
    if args.json:
        print_json(job)
        return EXIT_OK
    if stopping:
        note = "cancelling: the worker stops it at its next epoch (its history is kept)"
    elif before["status"] in TERMINAL_STATES:
        note = f"already {before['status']}: nothing to cancel"
    else:
        note = "cancelled"
    print_fields([("job", job["id"]), ("cancel", note), ("status", job["status"])])
    return EXIT_OK


def job_fields(job: Job) -> list[tuple[str, Any]]:
    """A job as `key: value` lines: what it trains, how far it got, how it ended."""
    progress = job["progress"]
    epochs = f"{progress['epoch']}/{progress['epochs']} ({progress['percent']:g}%)"
    lines: list[tuple[str, Any]] = [
        ("id", job["id"]),
        ("status", job["status"]),
        ("dataset", job["dataset_id"] or "- (deleted)"),
        ("model", spec_text(model_spec_shown(job["model"]))),
        ("training", spec_text(training_spec_shown(job["training"]))),
        ("epoch", epochs),
        ("train loss", number(progress["train_loss"])),
        ("val loss", number(progress["val_loss"])),
        ("best epoch", progress["best_epoch"] if progress["best_epoch"] is not None else "-"),
        ("elapsed", duration(progress["elapsed_seconds"])),
    ]
    if job["status"] not in TERMINAL_STATES:
        lines.append(("remaining", duration(progress["remaining_seconds"])))
    lines.append(("stop reason", job["stop_reason"] or "-"))
    if job.get("error"):
        lines.append(("error", job["error"]))
    lines += [
        ("model id", job["model_id"] or "-"),
        ("created", timestamp(job["created_at"])),
        ("started", timestamp(job.get("started_at"))),
        ("finished", timestamp(job.get("finished_at"))),
    ]
    return lines


def model_spec_shown(spec: dict[str, Any]) -> dict[str, Any]:
    """The model spec without the fields its type ignores."""
    shown = dict(spec)
    if shown.get("type") == "logistic_regression":
        shown.pop("hidden_units", None)
        shown.pop("activation", None)
    if shown.get("init") != "random":
        shown.pop("init_scale", None)
    return shown


SHOWN_TRAINING = (
    "optimizer",
    "learning_rate",
    "epochs",
    "batch_size",
    "l2",
    "validation_fraction",
    "early_stopping",
    "seed",
    "dtype",
    "time_limit",
)


def training_spec_shown(spec: dict[str, Any]) -> dict[str, Any]:
    """The training fields people choose; null ones read as what they mean."""
    shown: dict[str, Any] = {}
    for name in SHOWN_TRAINING:
        value = spec.get(name)
        if name == "learning_rate" and value is None:
            value = "default"
        elif name == "batch_size" and value is None:
            value = "full"
        elif name == "early_stopping":
            if value:
                shown["patience"] = value["patience"]
                continue
            value = "off"
        elif name == "time_limit" and value is None:
            continue
        shown[name] = value
    return shown


def spec_text(spec: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in spec.items())


# --follow


def follow_job(api: BackpropClient, job: Job, *, json_output: bool) -> int:
    """Draw the job's progress from its event stream until it ends; the exit code says how."""
    final = job if job["status"] in TERMINAL_STATES else stream_progress(api, job)
    if final is None:
        return EXIT_INTERRUPTED
    if json_output:
        print_json(final)
    elif final.get("status") is None:
        print(f"job {final['id']}: {final.get('detail') or 'deleted'}")
    else:
        print_fields(outcome_fields(final))
    return EXIT_OK if final.get("status") == "succeeded" else EXIT_JOB_FAILED


def stream_progress(api: BackpropClient, job: Job) -> Job | None:
    """The job as its `end` event tells it, after showing its progress; None on Ctrl-C."""
    display = ProgressDisplay(sys.stderr, epochs=job["progress"]["epochs"])
    # Start from the current epoch: a long-running job's earlier epochs are not replayed.
    start = job["progress"]["epoch"]
    events = api.job_events(
        job["id"], last_event_id=str(start) if start else None, on_reconnect=display.reconnecting
    )
    try:
        for event in events:
            if event.event == "status":
                display.status(event.data)
            elif event.event == "epoch":
                display.epoch(event.data)
            elif event.event == "end":
                display.close()
                return event.data
    except KeyboardInterrupt:
        display.close()
        print(
            f"stopped following; the job goes on (backprop status {job['id']} --follow)",
            file=sys.stderr,
        )
        return None
    finally:
        events.close()
    # job_events returns after `end` only; say so should it ever not.
    raise LocalError(f"the event stream of job {job['id']} ended without its end event")


def outcome_fields(job: Job) -> list[tuple[str, Any]]:
    progress = job["progress"]
    lines: list[tuple[str, Any]] = [
        ("job", job["id"]),
        ("status", job["status"]),
        ("stop reason", job["stop_reason"] or "-"),
        ("epochs", f"{progress['epoch']} of {progress['epochs']}"),
        ("train loss", number(progress["train_loss"])),
        ("val loss", number(progress["val_loss"])),
    ]
    if job.get("error"):
        lines.append(("error", job["error"]))
    lines.append(("model", job["model_id"] or "-"))
    return lines


class ProgressDisplay:
    """A progress line: epoch/epochs, a bar, train and val loss, and the time left.

    On a terminal it redraws in place (carriage return); elsewhere (a log, a pipe) it
    prints a line each time another NOTTY_STEP_PERCENT of the epochs is done, and the
    last epoch when the stream ends.
    """

    def __init__(self, stream: TextIO, *, epochs: int):
        self.stream = stream
        self.tty = stream.isatty()
        self.epochs = max(epochs, 1)
        self.time_limit: float | None = None
        self.point: HistoryPoint | None = None
        self.seconds = 0.0  # training seconds of the epochs seen
        self.timed = 0  # epochs seen with their seconds
        self.remaining: float | None = None  # the server's estimate, until epochs arrive
        self.last_status: str | None = None
        self.drawn_at = 0.0
        self.on_line = False  # a TTY bar is on the current line
        self.printed_step = -1  # the last NOTTY_STEP_PERCENT step printed
        self.shown_epoch = 0  # the epoch of the last line printed

    def status(self, job: dict[str, Any]) -> None:
        self.epochs = max(job["progress"]["epochs"], 1)
        self.time_limit = (job.get("training") or {}).get("time_limit")
        self.remaining = job["progress"]["remaining_seconds"]
        if job["status"] != self.last_status and job["status"] not in TERMINAL_STATES:
            self._note(f"job {job['id']}: {job['status']}")
        self.last_status = job["status"]

    def epoch(self, point: HistoryPoint) -> None:
        self.point = point
        if point["seconds"] is not None:
            self.seconds += point["seconds"]
            self.timed += 1
        if self.tty:
            now = time.monotonic()
            if now - self.drawn_at >= REDRAW_SECONDS or point["epoch"] >= self.epochs:
                self._draw()
                self.drawn_at = now
            return
        step = min(point["epoch"], self.epochs) * 100 // self.epochs // NOTTY_STEP_PERCENT
        if step > self.printed_step:
            self.printed_step = step
            self._print_line()

    def reconnecting(self, attempt: int, reason: str) -> None:
        self._note(f"event stream lost ({reason}); reconnecting (attempt {attempt})")

    def close(self) -> None:
        """Show the last epoch received, and leave the cursor on a fresh line."""
        if self.point is not None and self.point["epoch"] != self.shown_epoch:
            if self.tty:
                self._draw()
            else:
                self._print_line()
        if self.on_line:
            self.stream.write("\n")
            self.on_line = False
        self.stream.flush()

    def line(self) -> str:
        point = self.point
        epoch = point["epoch"] if point else 0
        done = min(epoch / self.epochs, 1.0)
        width = self._bar_width()
        filled = round(done * width)
        bar = "#" * filled + "." * (width - filled)
        losses = ""
        if point:
            losses = f"  train {number(point['train_loss'])}  val {number(point['val_loss'])}"
        digits = len(str(self.epochs))
        return (
            f"epoch {epoch:>{digits}}/{self.epochs} [{bar}] {done * 100:3.0f}%"
            f"{losses}  ETA {duration(self.eta(epoch))}"
        )

    def eta(self, epoch: int) -> float | None:
        """Seconds left at the mean seconds per epoch seen (capped by the time limit)."""
        if not self.timed:
            return self.remaining
        left = self.seconds / self.timed * max(self.epochs - epoch, 0)
        if self.time_limit is not None and self.point is not None:
            # The stream may have started mid-job: seconds seen are not all seconds spent.
            spent = self.seconds if epoch == self.timed else self.seconds / self.timed * epoch
            left = min(left, max(self.time_limit - spent, 0.0))
        return left

    def _bar_width(self) -> int:
        if not self.tty:
            return 30
        columns = shutil.get_terminal_size((80, 24)).columns
        return max(10, min(30, columns - 60))

    def _draw(self) -> None:
        """The bar, in place of the one drawn before (TTY)."""
        self.stream.write("\r" + self.line() + "\033[K")
        self.stream.flush()
        self.on_line = True
        self.shown_epoch = self.point["epoch"] if self.point else 0

    def _print_line(self) -> None:
        """The bar as a line of its own (not a TTY)."""
        self.stream.write(self.line() + "\n")
        self.stream.flush()
        self.shown_epoch = self.point["epoch"] if self.point else 0

    def _note(self, text: str) -> None:
        """A line above the bar: the bar is erased, the note printed, the bar drawn again."""
        if self.on_line:
            self.stream.write("\r\033[K")
            self.on_line = False
        self.stream.write(text + "\n")
        self.stream.flush()
        if self.tty and self.point is not None:
            self._draw()


# jobs, history


def run_jobs(args: argparse.Namespace, api: BackpropClient) -> int:
    """`backprop jobs`: a page of jobs, newest first."""
    page = api.list_jobs(
        statuses=args.status, dataset_id=args.dataset, limit=args.limit, cursor=args.cursor
    )
    if args.json:
        print_json(page)
        return EXIT_OK
    rows = [
        [
            job["id"],
            job["status"],
            model_short(job["model"]),
            f"{job['progress']['epoch']}/{job['progress']['epochs']}",
            number(job["progress"]["train_loss"]),
            number(job["progress"]["val_loss"]),
            timestamp(job["created_at"]),
        ]
        for job in page["data"]
    ]
    headers = ["ID", "STATUS", "MODEL", "EPOCH", "TRAIN LOSS", "VAL LOSS", "CREATED (UTC)"]
    print_table(headers, rows)
    if page["next_cursor"]:
        print(f"more: backprop jobs --cursor {page['next_cursor']}", file=sys.stderr)
    return EXIT_OK


def model_short(spec: dict[str, Any]) -> str:
    if spec.get("type") == "two_layer_network":
        return f"network {spec.get('hidden_units')} {spec.get('activation')}"
    return "logistic" if spec.get("type") == "logistic_regression" else str(spec.get("type"))


HISTORY_COLUMNS = (
    ("EPOCH", "epoch"),
    ("TRAIN LOSS", "train_loss"),
    ("VAL LOSS", "val_loss"),
    ("TRAIN ACC", "train_accuracy"),
    ("VAL ACC", "val_accuracy"),
    ("GRAD NORM", "grad_norm"),
    ("MS", "seconds"),  # milliseconds: an epoch often takes well under one
)


def run_history(args: argparse.Namespace, api: BackpropClient) -> int:
    """`backprop history ID`: every page after --since-epoch, as one table, CSV or JSON."""
    if args.csv:
        for text in history_csv_pages(api, args.job_id, args.since_epoch, args.max_points):
            sys.stdout.write(text)
        return EXIT_OK
    history = api.job_history(args.job_id, since_epoch=args.since_epoch, max_points=args.max_points)
    points = list(history["points"])
    while args.max_points is None and history["points"] and history["next_since_epoch"]:
        history = api.job_history(args.job_id, since_epoch=history["next_since_epoch"])
        points += history["points"]
    if args.json:
        print_json({**history, "points": points})
        return EXIT_OK
    rows = [
        [
            str(point["epoch"]),
            *(number(point[key]) for _, key in HISTORY_COLUMNS[1:-1]),
            "-" if point["seconds"] is None else f"{point['seconds'] * 1000:.3f}",
        ]
        for point in points
    ]
    print_table([header for header, _ in HISTORY_COLUMNS], rows)
    return EXIT_OK


def history_csv_pages(
    api: BackpropClient, job_id: str, since_epoch: int, max_points: int | None
) -> Iterator[str]:
    """The server's CSV pages, the header row once."""
    page = api.job_history_csv(job_id, since_epoch=since_epoch, max_points=max_points)
    yield page.text
    while max_points is None and page.next_since_epoch is not None:
        page = api.job_history_csv(job_id, since_epoch=page.next_since_epoch)
        _header, _, rows = page.text.partition("\n")
        if not rows.strip():
            return
        yield rows


# predict


def run_predict(args: argparse.Namespace, api: BackpropClient) -> int:
    """`backprop predict MODEL_ID FILE`: each row's label and class probabilities."""
    path = readable_file(args.file)
    model = api.get_model(args.model_id)
    features, classes = model["feature_names"], model["classes"]
    responses: list[Predictions] = []
    for matrix in feature_batches(path, features, args.batch_rows):
        records = [dict(zip(features, row, strict=True)) for row in matrix.tolist()]
        responses += predict_records(api, args.model_id, records)
    if args.json:
        print_json(responses)
        return EXIT_OK
    headers = ["ROW", "LABEL", *(f"P({c})" for c in classes)]
    rows = []
    for prediction in (p for response in responses for p in response["predictions"]):
        probabilities = prediction["probabilities"]
        row = [str(len(rows) + 1), str(prediction["label"])]
        rows.append(row + [f"{probabilities[str(c)]:.4f}" for c in classes])
    print_table(headers, rows)
    return EXIT_OK


def predict_records(
    api: BackpropClient, model_id: str, records: list[dict[str, float]]
) -> list[Predictions]:
    """One request, or several if the server's row limit is lower than the batch."""
    try:
        return [api.predict(model_id, records)]
    except ApiError as error:
        limit = error.problem.get("limit")
        if error.status != 413 or not isinstance(limit, int) or not 0 < limit < len(records):
            raise
    return [api.predict(model_id, records[i : i + limit]) for i in range(0, len(records), limit)]


def feature_batches(path: Path, features: Sequence[str], batch_rows: int) -> "Iterator[np.ndarray]":
    """The file's feature columns, in ``features`` order, as float matrices (rows, features)
    of at most ``batch_rows`` rows; read a block at a time with pyarrow."""
    import numpy as np
    import pyarrow as pa

    blocks = parquet_blocks if file_format(path) == "parquet" else csv_blocks
    pending = np.empty((0, len(features)))
    first_row = 1  # data rows count from 1, as the server's upload errors do
    rows_seen = 0
    try:
        for block in blocks(path, features, batch_rows):
            matrix = finite_matrix(block, features, path, first_row + rows_seen)
            rows_seen += len(matrix)
            pending = np.concatenate([pending, matrix]) if len(pending) else matrix
            while len(pending) >= batch_rows:
                yield pending[:batch_rows]
                pending = pending[batch_rows:]
    except (pa.ArrowException, OSError) as error:
        raise LocalError(f"{path}: {error}") from error
    if len(pending):
        yield pending
    if rows_seen == 0:
        raise LocalError(f"{path}: no data rows")


def check_columns(path: Path, names: Sequence[str], features: Sequence[str]) -> None:
    missing = [name for name in features if name not in names]
    if missing:
        raise LocalError(
            f"{path} lacks {len(missing)} of the model's {len(features)} feature columns: "
            f"{listed(missing)}; its columns are {listed(names)}"
        )
    extra = [name for name in names if name not in features]
    if extra:
        note = f"note: leaving out column(s) the model does not take: {listed(extra)}"
        print(note, file=sys.stderr)


def listed(names: Sequence[str], most: int = 5) -> str:
    """Quoted names, the first ``most`` of them: 'a', 'b', ... (and 3 more)."""
    shown = ", ".join(repr(name) for name in names[:most])
    return shown + (f", ... (and {len(names) - most} more)" if len(names) > most else "")


def csv_blocks(path: Path, features: Sequence[str], batch_rows: int) -> Iterator[Any]:
    import pyarrow as pa
    from pyarrow import csv

    with csv.open_csv(path) as header_reader:
        check_columns(path, header_reader.schema.names, features)
    options = csv.ConvertOptions(
        include_columns=list(features), column_types={name: pa.float64() for name in features}
    )
    with csv.open_csv(path, convert_options=options) as reader:
        yield from reader


def parquet_blocks(path: Path, features: Sequence[str], batch_rows: int) -> Iterator[Any]:
    from pyarrow import parquet

    with parquet.ParquetFile(path) as file:
        check_columns(path, file.schema_arrow.names, features)
        yield from file.iter_batches(batch_size=batch_rows, columns=list(features))


def finite_matrix(block: Any, features: Sequence[str], path: Path, first_row: int) -> "np.ndarray":
    """A record batch's feature columns as a float64 matrix; every cell a finite number."""
    import numpy as np
    import pyarrow as pa

    columns = []
    for name in features:
        column = block.column(name)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise LocalError(f"{path}: column {name!r} is {column.type}, not numbers")
        columns.append(column.cast(pa.float64()).to_numpy(zero_copy_only=False))
    matrix = np.column_stack(columns) if columns else np.empty((block.num_rows, 0))
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise LocalError(
            f"{path}: row {first_row + row}, column {features[column]!r} is empty or not a "
            "finite number (row 1 is the first data row)"
        )
    return matrix


# ---------------------------------------------------------------------------------------
# Output


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """`key: value` lines, the values aligned."""
    width = max(len(key) for key, _ in fields) + 1
    for key, value in fields:
        print(f"{key + ':':<{width}} {value}")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """An aligned table; columns of numbers are right-aligned."""
    if not rows:
        print("(none)")
        return
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    numeric = [all(is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    print(line(headers))
    for row in rows:
        print(line(row))


def is_number(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text.split("/")[0])
    except ValueError:
        return False
    return True


def number(value: float | None) -> str:
    """A loss or an accuracy: 4 decimals, or scientific when tiny or huge; "-" for null."""
    if value is None or not math.isfinite(value):
        return "-"
    if value != 0 and not 1e-3 <= abs(value) < 1e5:
        return f"{value:.3e}"
    return f"{value:.4f}"


def duration(seconds: float | None) -> str:
    """0.04s under a second, 12.3s under a minute, else M:SS or H:MM:SS; "-" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 0.995:
        return f"{max(seconds, 0.0):.2f}s"
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def timestamp(value: str | None) -> str:
    """An API timestamp (UTC) to the second: 2025-05-01 09:30:00."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S")
