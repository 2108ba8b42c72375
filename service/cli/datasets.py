"""Datasets: `backprop upload FILE` (top level, as before) and `backprop datasets
list|show|delete`."""

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.api_types import Dataset
from service.cli.client import DEFAULT_URL
from service.cli.common import (
    ApiKeyOption,
    BackpropCommand,
    CursorOption,
    JsonOption,
    LimitOption,
    LocalError,
    UrlOption,
    connected,
    examples,
    sub_app,
)
from service.cli.output import (
    Column,
    print_fields,
    print_json,
    print_page,
    print_table,
    size,
    timestamp,
)

datasets_app = sub_app("datasets", "List, show and delete the datasets stored on the server.")
DatasetId = Annotated[str, typer.Argument(metavar="ID", help="the dataset's id")]


def register(app: typer.Typer) -> None:
    """`upload`, a top-level command of ``app`` (the group is added by service.cli.app)."""
    app.command(
        "upload",
        cls=BackpropCommand,
        epilog=examples(
            "backprop upload penguins.csv --label species",
            "backprop upload sales.csv --categorical store_id --ignore order_id",
            "backprop upload points.parquet --name points --json",
        ),
    )(upload)


def upload(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a .csv or .parquet file")],
    label: Annotated[
        str | None, typer.Option("--label", metavar="COL", help="the label column (default: last)")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="the dataset's name (default: the file's name)")
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option(
            "--categorical", metavar="COLS", help="numeric columns that are categories: a,b"
        ),
    ] = None,
    ignore: Annotated[
        str | None, typer.Option("--ignore", metavar="COLS", help="columns to leave out: a,b")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Upload a CSV or Parquet file as a dataset.

    Streams FILE to the server, which types each column (numeric or categorical; empty
    cells are missing), validates and stores it, and prints its columns. The same file
    with the same label column and options again answers the dataset stored before.
    """
    with connected(url, api_key) as api:
        path = readable_file(file)
        uploaded = api.upload_dataset(
            path, label=label, name=name, categorical=categorical, ignore=ignore
        )
        dataset = uploaded.dataset
        if json_output:
            print_json(dataset)
            return
        if uploaded.created:
            outcome = "new dataset (201 Created)"
        else:
            outcome = "already stored (200 OK: the same file and label were uploaded before)"
        print_fields([("upload", outcome), *dataset_fields(dataset)])
        print_schema(dataset)


def print_schema(dataset: Dataset) -> None:
    """The dataset's columns as a table (role, kind, missing cells, distinct values, the
    most frequent levels or the range), then its warnings."""
    print()
    print_table(
        ["COLUMN", "ROLE", "KIND", "MISSING", "DISTINCT", "LEVELS / RANGE"],
        [
            [
                column["name"],
                column.get("role", "feature"),
                column.get("kind") or column.get("type", ""),
                str(column.get("missing", 0)),
                "" if column.get("distinct") is None else str(column["distinct"]),
                summary(column),
            ]
            for column in dataset["schema"]
        ],
    )
    for warning in dataset.get("warnings") or []:
        print(f"warning: {warning}")


def summary(column: Column, most: int = 3) -> str:
    """'Biscoe 168, Dream 124, Torgersen 52' or '32.1 .. 59.6 (mean 43.9)'."""
    if column.get("top_levels"):
        levels = column["top_levels"]
        shown = ", ".join(f"{level['level']} {level['count']}" for level in levels[:most])
        more = (column.get("distinct") or len(levels)) - min(most, len(levels))
        return shown + (f", +{more} more" if more > 0 else "")
    if column.get("min") is not None and column.get("max") is not None:
        return f"{column['min']:g} .. {column['max']:g} (mean {column['mean']:.4g})"
    return ""


def readable_file(path: Path) -> Path:
    """``path`` if it is a file this process may read, else LocalError (exit 1)."""
    if not path.is_file():
        raise LocalError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise LocalError(f"{path}: not readable")
    return path


def dataset_fields(dataset: Dataset) -> list[tuple[str, Any]]:
    counts = ", ".join(f"{label}: {count}" for label, count in dataset["class_counts"].items())
    return [
        ("id", dataset["id"]),
        ("name", dataset["name"]),
        ("rows", dataset["rows"]),
        ("features", len(dataset["features"])),
        ("label", dataset["label"]),
        ("classes", ", ".join(str(c) for c in dataset["classes"])),
        ("class counts", counts),
    ]


DATASET_COLUMNS: tuple[Column, ...] = (
    ("ID", lambda dataset: dataset["id"]),
    ("NAME", lambda dataset: dataset["name"]),
    ("ROWS", lambda dataset: str(dataset["rows"])),
    ("FEATURES", lambda dataset: str(len(dataset["features"]))),
    ("LABEL", lambda dataset: dataset["label"]),
    ("CLASSES", lambda dataset: str(len(dataset["classes"]))),
    ("CREATED (UTC)", lambda dataset: timestamp(dataset["created_at"])),
)


@datasets_app.command(
    "list",
    cls=BackpropCommand,
    epilog=examples("backprop datasets list", "backprop datasets list --limit 5 --json"),
)
def list_datasets(
    limit: LimitOption = None,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List datasets, newest first: id, name, rows, features, label, classes."""
    with connected(url, api_key) as api:
        page = api.list_datasets(limit=limit, cursor=cursor)
    print_page(page, DATASET_COLUMNS, command="datasets list", json_output=json_output)


@datasets_app.command(
    "show",
    cls=BackpropCommand,
    epilog=examples("backprop datasets show ID", "backprop datasets show ID --json"),
)
def show_dataset(
    dataset_id: DatasetId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """A dataset's rows, columns, label and classes."""
    with connected(url, api_key) as api:
        dataset = api.get_dataset(dataset_id)
        if json_output:
            print_json(dataset)
            return
        print_fields(
            [
                *dataset_fields(dataset),
                ("label type", dataset["label_type"]),
                ("format", dataset["format"]),
                ("size", size(dataset["size_bytes"])),
                ("sha256", dataset["sha256"]),
                ("created", timestamp(dataset["created_at"])),
            ]
        )
        print_schema(dataset)


@datasets_app.command("delete", cls=BackpropCommand, epilog=examples("backprop datasets delete ID"))
def delete_dataset(
    dataset_id: DatasetId,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a dataset that no queued or running job uses (finished jobs and their
    models are kept). --json prints {"id": ..., "deleted": true}."""
    with connected(url, api_key) as api:
        api.delete_dataset(dataset_id)
        if json_output:
            print_json({"id": dataset_id, "deleted": True})
        else:
            print_fields([("dataset", dataset_id), ("deleted", "yes")])
