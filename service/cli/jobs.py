"""Jobs: `backprop jobs`, `status`, `cancel` and `history` (and `train`, in
service.cli.training). Top-level commands, as they were before the other resources
got groups of their own: scripts already call them.
"""

import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from service.cli.api_types import Job
from service.cli.client import DEFAULT_URL, BackpropClient
from service.cli.common import (
    RICH_MARKUP_MODE,
    TERMINAL_STATES,
    ApiKeyOption,
    BackpropCommand,
    BackpropGroup,
    CursorOption,
    JsonOption,
    LimitOption,
    UrlOption,
    connected,
    examples,
)
from service.cli.output import (
    Column,
    duration,
    model_short,
    model_spec_shown,
    number,
    print_fields,
    print_json,
    print_page,
    print_table,
    spec_text,
    timestamp,
    training_spec_shown,
)
from service.cli.training import TRAIN_EXAMPLES, Follow, show_job, train

JobId = Annotated[str, typer.Argument(metavar="ID", help="the job's id")]


def register(app: typer.Typer) -> None:
    """train, jobs, status, cancel and history, as top-level commands of ``app``."""
    command = app.command
    command("train", cls=BackpropCommand, epilog=TRAIN_EXAMPLES)(train)
    # `backprop jobs` lists jobs, as it always did; `backprop jobs delete ID` is its command.
    jobs_app = typer.Typer(
        name="jobs",
        cls=BackpropGroup,
        help="List jobs, newest first; `jobs delete ID` deletes a finished one.",
        epilog=examples(
            "backprop jobs",
            "backprop jobs --status running,queued",
            "backprop jobs --dataset ID --status succeeded --json",
            "backprop jobs delete ID",
        ),
        rich_markup_mode=RICH_MARKUP_MODE,
        add_completion=False,
    )
    jobs_app.callback(invoke_without_command=True)(list_jobs)
    jobs_app.command("delete", cls=BackpropCommand, epilog=examples("backprop jobs delete ID"))(
        delete_job
    )
    app.add_typer(jobs_app)
    command(
        "status",
        cls=BackpropCommand,
        epilog=examples("backprop status ID", "backprop status ID --follow"),
    )(show_status)
    command("cancel", cls=BackpropCommand, epilog=examples("backprop cancel ID"))(cancel)
    command(
        "history",
        cls=BackpropCommand,
        epilog=examples(
            "backprop history ID --max-points 20",
            "backprop history ID --csv > losses.csv",
            "backprop history ID --since-epoch 100 --json",
        ),
    )(history)


JOB_COLUMNS: tuple[Column, ...] = (
    ("ID", lambda job: job["id"]),
    ("STATUS", lambda job: job["status"]),
    ("MODEL", lambda job: model_short(job["model"])),
    ("EPOCH", lambda job: f"{job['progress']['epoch']}/{job['progress']['epochs']}"),
    ("TRAIN LOSS", lambda job: number(job["progress"]["train_loss"])),
    ("VAL LOSS", lambda job: number(job["progress"]["val_loss"])),
    ("TRAIN ACC", lambda job: number(job["progress"].get("train_accuracy"))),
    ("VAL ACC", lambda job: number(job["progress"].get("val_accuracy"))),
    ("CREATED (UTC)", lambda job: timestamp(job["created_at"])),
)


def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            metavar="S",
            help="only jobs in this state (repeat, or comma-separate): queued, running, "
            "cancelling, succeeded, failed, cancelled",
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", metavar="ID", help="only jobs on this dataset")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", metavar="ID", help="only the trials of this sweep")
    ] = None,
    limit: LimitOption = None,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List jobs, newest first.

    One page of jobs: id, status, model, epoch, latest losses and accuracies.
    """
    if ctx.invoked_subcommand is not None:  # `jobs delete ...`: not a listing
        return
    with connected(url, api_key) as api:
        page = api.list_jobs(
            statuses=status, dataset_id=dataset, sweep_id=sweep, limit=limit, cursor=cursor
        )
    print_page(page, JOB_COLUMNS, command="jobs", json_output=json_output)


def show_status(
    job_id: JobId,
    follow: Follow = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a job's state, specs and progress.

    With --follow, its live progress until it ends.
    """
    with connected(url, api_key) as api:
        show_job(api, api.get_job(job_id), follow=follow, json_output=json_output)


def cancel(
    job_id: JobId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Cancel a job.

    A queued job is cancelled at once, a running one at its next epoch (its history is
    kept). Cancelling a finished job changes nothing.
    """
    with connected(url, api_key) as api:
        before = api.get_job(job_id)  # to tell "cancelled now" from "had already ended"
        job, stopping = api.cancel_job(job_id)
        if json_output:
            print_json(job)
            return
        if stopping:
            note = "cancelling: the worker stops it at its next epoch (its history is kept)"
        elif before["status"] in TERMINAL_STATES:
            note = f"already {before['status']}: nothing to cancel"
        else:
            note = "cancelled"
        print_fields([("job", job["id"]), ("cancel", note), ("status", job["status"])])


def delete_job(
    job_id: JobId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a finished job with its history, checkpoint and model (a queued or running
    job is refused: cancel it first; so is one whose model a registry alias points at)."""
    with connected(url, api_key) as api:
        api.delete_job(job_id)
        if json_output:
            print_json({"id": job_id, "deleted": True})
        else:
            print_fields([("job", job_id), ("deleted", "yes")])


def job_fields(job: Job) -> list[tuple[str, Any]]:
    """A job as `key: value` lines: what it trains, how far it got, how it ended."""
    progress = job["progress"]
    epochs = f"{progress['epoch']}/{progress['epochs']} ({progress['percent']:g}%)"
    lines: list[tuple[str, Any]] = [
        ("id", job["id"]),
        ("status", job["status"]),
        ("dataset", job["dataset_id"] or "- (deleted)"),
        ("warm start", (job.get("warm_start") or {}).get("model_id") or "-"),
        ("model", spec_text(model_spec_shown(job["model"]))),
        ("training", spec_text(training_spec_shown(job["training"]))),
        ("epoch", epochs),
        ("train loss", number(progress["train_loss"])),
        ("val loss", number(progress["val_loss"])),
        ("train acc", number(progress.get("train_accuracy"))),
        ("val acc", number(progress.get("val_accuracy"))),
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


HISTORY_COLUMNS = (
    ("EPOCH", "epoch"),
    ("TRAIN LOSS", "train_loss"),
    ("VAL LOSS", "val_loss"),
    ("TRAIN ACC", "train_accuracy"),
    ("VAL ACC", "val_accuracy"),
    ("GRAD NORM", "grad_norm"),
    ("MS", "seconds"),  # milliseconds: an epoch often takes well under one
)


def history(
    job_id: JobId,
    csv: Annotated[bool, typer.Option("--csv", help="print CSV with a header row")] = False,
    since_epoch: Annotated[
        int, typer.Option("--since-epoch", metavar="N", help="only epochs after N")
    ] = 0,
    max_points: Annotated[
        int | None,
        typer.Option(
            "--max-points",
            metavar="N",
            help="down-sample evenly to at most N points (keeps the first, last and best)",
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a job's loss history, per epoch.

    Losses, accuracies, gradient norm and milliseconds per epoch, as a table, CSV
    (--csv, as the server writes it) or JSON.
    """
    with connected(url, api_key) as api:
        if csv:
            for text in history_csv_pages(api, job_id, since_epoch, max_points):
                sys.stdout.write(text)
            sys.stdout.flush()  # a closed pipe shows here, where `connected` handles it
            return
        page = api.job_history(job_id, since_epoch=since_epoch, max_points=max_points)
        points = list(page["points"])
        while max_points is None and page["points"] and page["next_since_epoch"]:
            page = api.job_history(job_id, since_epoch=page["next_since_epoch"])
            points += page["points"]
        if json_output:
            print_json({**page, "points": points})
            return
        rows = [
            [
                str(point["epoch"]),
                *(number(point[key]) for _, key in HISTORY_COLUMNS[1:-1]),
                "-" if point["seconds"] is None else f"{point['seconds'] * 1000:.3f}",
            ]
            for point in points
        ]
        print_table([header for header, _ in HISTORY_COLUMNS], rows)


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
