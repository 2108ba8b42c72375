"""`backprop train`: queue a job with the spec options given; --follow watches it end.

The spec options are shared with `backprop sweeps create` (service.cli.sweeps), whose
base job they describe. Following reads the job's event stream (service.cli.client).
"""

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from service.cli.api_types import Job
from service.cli.client import DEFAULT_URL, BackpropClient
from service.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    TERMINAL_STATES,
    ApiKeyOption,
    JsonOption,
    LocalError,
    UrlOption,
    UsageProblem,
    complete_names,
    connected,
    engine_choice,
    examples,
    given,
)
from service.cli.output import number, print_fields, print_json
from service.cli.progress import ProgressDisplay

FOLLOW_HELP = (
    "show a live progress bar until the job ends; exit 0 if it succeeded, "
    f"{EXIT_JOB_FAILED} if it failed or was cancelled"
)


def _names(table: str, option: str, text: str, metavar: str) -> Any:
    """An option that takes one of the engine's names (checked and completed lazily)."""
    return typer.Option(
        option,
        metavar=metavar,
        parser=engine_choice(table, option),
        autocompletion=complete_names(table),
        help=text + ": {" + table + "}",
    )


# The job spec's options; the allowed names are the engine's own tables.
ModelType = Annotated[str | None, _names("MODEL_TYPES", "--model", "model type", "TYPE")]
HiddenUnits = Annotated[
    int | None, typer.Option("--hidden-units", metavar="N", help="n[1] (two_layer_network)")
]
Activation = Annotated[
    str | None, _names("ACTIVATION_NAMES", "--activation", "hidden-layer g", "G")
]
Init = Annotated[str | None, _names("INIT_NAMES", "--init", "weight initialization", "NAME")]
InitScale = Annotated[
    float | None, typer.Option("--init-scale", metavar="X", help="std of `random` init")
]
Optimizer = Annotated[str | None, _names("OPTIMIZER_NAMES", "--optimizer", "optimizer", "NAME")]
LearningRate = Annotated[
    float | None, typer.Option("--learning-rate", metavar="X", help="the gradient step size")
]
Epochs = Annotated[int | None, typer.Option("--epochs", metavar="N", help="passes over the data")]
BatchSize = Annotated[
    int | None, typer.Option("--batch-size", metavar="N", help="default: full batch")
]
L2 = Annotated[float | None, typer.Option("--l2", metavar="X", help="L2 penalty λ")]
ValidationFraction = Annotated[
    float | None,
    typer.Option("--validation-fraction", metavar="X", help="rows held out for val loss"),
]
Patience = Annotated[
    int | None,
    typer.Option("--patience", metavar="N", help="early stopping after N epochs without gain"),
]
NoEarlyStopping = Annotated[
    bool, typer.Option("--no-early-stopping", help="train every epoch asked for")
]
MinDelta = Annotated[
    float | None, typer.Option("--min-delta", metavar="X", help="smallest gain counted")
]
Tolerance = Annotated[
    float | None, typer.Option("--tolerance", metavar="X", help="gradient-norm stop")
]
Seed = Annotated[
    int | None, typer.Option("--seed", metavar="N", help="seeds the split, init and batches")
]
Dtype = Annotated[str | None, _names("DTYPE_NAMES", "--dtype", "float type", "NAME")]
TimeLimit = Annotated[
    float | None, typer.Option("--time-limit", metavar="S", help="seconds of training")
]
Follow = Annotated[bool, typer.Option("--follow", help=FOLLOW_HELP)]
WarmStart = Annotated[
    str | None,
    typer.Option(
        "--warm-start",
        metavar="MODEL_ID",
        help="fine-tune this model: its parameters and preprocessing are the start "
        "(without --model: its model spec too)",
    ),
]

# The job spec's options, shared by `train` and `sweeps create`: name, type, default.
SPEC_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("model", ModelType, None),
    ("hidden_units", HiddenUnits, None),
    ("activation", Activation, None),
    ("init", Init, None),
    ("init_scale", InitScale, None),
    ("optimizer", Optimizer, None),
    ("learning_rate", LearningRate, None),
    ("epochs", Epochs, None),
    ("batch_size", BatchSize, None),
    ("l2", L2, None),
    ("validation_fraction", ValidationFraction, None),
    ("patience", Patience, None),
    ("no_early_stopping", NoEarlyStopping, False),
    ("min_delta", MinDelta, None),
    ("tolerance", Tolerance, None),
    ("seed", Seed, None),
    ("dtype", Dtype, None),
    ("time_limit", TimeLimit, None),
)
SpecOptions = dict[str, Any]  # SPEC_OPTIONS' values, by name (see with_spec_options)
NO_SPEC: SpecOptions = {}  # a spec parameter's stand-in default; with_spec_options fills it


def with_spec_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with SPEC_OPTIONS in its signature where its ``spec`` parameter stands.

    Typer reads a command's options from its signature; this states the eighteen spec
    options once for both commands that take them, and hands them to ``command`` as one
    dict, ``spec``.
    """
    signature = inspect.signature(command)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "spec":
            parameters.append(parameter)
            continue
        parameters += [
            inspect.Parameter(name, parameter.kind, default=default, annotation=annotation)
            for name, annotation, default in SPEC_OPTIONS
        ]

    @functools.wraps(command)
    def with_options(**options: Any) -> None:
        spec = {name: options.pop(name) for name, _, _ in SPEC_OPTIONS}
        command(**options, spec=spec)

    with_options.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    with_options.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_options


TRAIN_EXAMPLES = examples(
    "backprop train --dataset ID",
    "backprop train --dataset ID --model two_layer_network --hidden-units 16 \\",
    "    --optimizer gd --learning-rate 0.5 --epochs 300 --follow",
    "backprop train --dataset ID --no-early-stopping --epochs 50 --json",
    "backprop train --dataset NEW_ID --warm-start MODEL_ID --epochs 50 --follow",
)


@with_spec_options
def train(
    dataset: Annotated[str, typer.Option("--dataset", metavar="ID", help="the dataset")],
    spec: SpecOptions = NO_SPEC,  # the spec options, given by with_spec_options
    warm_start: WarmStart = None,
    follow: Follow = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Queue a training job on a dataset; a worker trains it.

    Only the options given are sent: the server fills in the engine's defaults for the
    rest. --warm-start fine-tunes an existing model. --follow shows its progress until
    it ends.
    """
    body = {"dataset_id": dataset, **job_specs(spec)}
    if warm_start is not None:
        body["warm_start"] = {"model_id": warm_start}
    with connected(url, api_key) as api:
        show_job(api, api.create_job(body), follow=follow, json_output=json_output)


def show_job(api: BackpropClient, job: Job, *, follow: bool, json_output: bool) -> None:
    """A job just queued or read: followed to its end (exit 0, or 3 if it failed or was
    cancelled), or its JSON, or its fields."""
    if follow:
        raise typer.Exit(follow_job(api, job, json_output=json_output))
    if json_output:
        print_json(job)
    else:
        from service.cli.jobs import job_fields  # service.cli.jobs imports this module

        print_fields(job_fields(job))


def job_specs(options: dict[str, Any]) -> dict[str, Any]:
    """The `model` and `training` of a JobCreate (or SweepCreate) body: the options given."""
    if options["patience"] is not None and options["no_early_stopping"]:
        raise UsageProblem("argument --no-early-stopping: not allowed with argument --patience")
    model_names = ("model", "hidden_units", "activation", "init", "init_scale")
    model = given(**{name: options[name] for name in model_names})
    if "model" in model:
        model["type"] = model.pop("model")
    training_names = ("optimizer", "learning_rate", "epochs", "batch_size", "l2")
    training_names += ("validation_fraction", "tolerance", "seed", "dtype", "time_limit")
    training = given(**{name: options[name] for name in training_names})
    if options["no_early_stopping"]:
        training["early_stopping"] = None
    elif stopping := given(patience=options["patience"], min_delta=options["min_delta"]):
        training["early_stopping"] = stopping
    body: dict[str, Any] = {}
    if model:  # a model spec names its type; the API's default is a logistic regression
        body["model"] = {"type": "logistic_regression", **model}
    if training:
        body["training"] = training
    return body


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
    display = ProgressDisplay.open(job["progress"]["epochs"])
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
