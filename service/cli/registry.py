"""The model registry: `backprop registry create|list|show|register|alias|predict`."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.client import DEFAULT_URL
from service.cli.common import (
    ApiKeyOption,
    BackpropCommand,
    CursorOption,
    JsonOption,
    LimitOption,
    UrlOption,
    connected,
    examples,
    sub_app,
)
from service.cli.datasets import readable_file
from service.cli.models import PREDICT_BATCH_ROWS, predict_file, print_predictions
from service.cli.output import Column, print_fields, print_json, print_page, print_table, timestamp

registry_app = sub_app(
    "registry", "Name models: registered models, numbered versions, and aliases to predict with."
)
Name = Annotated[str, typer.Argument(metavar="NAME", help="the registered model's name")]
Alias = Annotated[str, typer.Argument(metavar="ALIAS", help="an alias, e.g. production")]


def aliases_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias} -> v{version}" for alias, version in aliases.items()) or "-"


REGISTERED_COLUMNS: tuple[Column, ...] = (
    ("NAME", lambda model: model["name"]),
    ("LATEST", lambda model: str(model["latest_version"] or "-")),
    ("ALIASES", lambda model: aliases_text(model["aliases"])),
    ("CREATED (UTC)", lambda model: timestamp(model["created_at"])),
)


@registry_app.command(
    "create",
    cls=BackpropCommand,
    epilog=examples("backprop registry create churn", "backprop registry create churn -d 'who'"),
)
def create(
    name: Name,
    description: Annotated[
        str | None, typer.Option("--description", "-d", metavar="TEXT", help="what it is for")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a registered model: a name for numbered versions of fitted models."""
    with connected(url, api_key) as api:
        model = api.create_registered_model(name, description)
    if json_output:
        print_json(model)
    else:
        print_fields([("name", model["name"]), ("created", timestamp(model["created_at"]))])


@registry_app.command(
    "list",
    cls=BackpropCommand,
    epilog=examples("backprop registry list", "backprop registry list --limit 10 --json"),
)
def list_registered(
    limit: LimitOption = None,
    cursor: CursorOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """List registered models, newest first: name, latest version, aliases."""
    with connected(url, api_key) as api:
        page = api.list_registered_models(limit=limit, cursor=cursor)
    print_page(page, REGISTERED_COLUMNS, command="registry list", json_output=json_output)


@registry_app.command(
    "show",
    cls=BackpropCommand,
    epilog=examples("backprop registry show churn", "backprop registry show churn --json"),
)
def show(
    name: Name,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """A registered model: its aliases, then every version (newest first) and its model."""
    with connected(url, api_key) as api:
        model = api.get_registered_model(name)
    if json_output:
        print_json(model)
        return
    print_fields(
        [
            ("name", model["name"]),
            ("description", model["description"] or "-"),
            ("aliases", aliases_text(model["aliases"])),
            ("created", timestamp(model["created_at"])),
            ("created by", model["created_by"] or "-"),
        ]
    )
    print()
    rows = [version_row(version) for version in model["versions"]]
    print_table(["VERSION", "MODEL", "ALIASES", "REGISTERED (UTC)", "BY"], rows)


def version_row(version: dict[str, Any]) -> list[str]:
    return [
        str(version["version"]),
        version["model_id"],
        ", ".join(version["aliases"]) or "-",
        timestamp(version["created_at"]),
        version["created_by"] or "-",
    ]


@registry_app.command(
    "register",
    cls=BackpropCommand,
    epilog=examples("backprop registry register churn MODEL_ID"),
)
def register(
    name: Name,
    model_id: Annotated[str, typer.Argument(metavar="MODEL_ID", help="a fitted model's id")],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Register a fitted model as NAME's next version; prints the version number."""
    with connected(url, api_key) as api:
        version = api.register_version(name, model_id)
    if json_output:
        print_json(version)
    else:
        print_fields(
            [("name", name), ("version", version["version"]), ("model", version["model_id"])]
        )


@registry_app.command(
    "alias",
    cls=BackpropCommand,
    epilog=examples("backprop registry alias churn production 2"),
)
def alias(
    name: Name,
    alias_name: Alias,
    version: Annotated[int, typer.Argument(metavar="VERSION", min=1, help="a version number")],
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Point ALIAS at VERSION (creates or moves it); its predictions follow at once."""
    with connected(url, api_key) as api:
        moved = api.set_alias(name, alias_name, version)
    if json_output:
        print_json(moved)
        return
    last = moved["moves"][0] if moved["moves"] else None
    previous = f"v{last['from_version']}" if last and last["from_version"] else "-"
    print_fields(
        [
            ("alias", f"{name}@{alias_name}"),
            ("version", moved["version"]),
            ("model", moved["model_id"]),
            ("was", previous),
        ]
    )


@registry_app.command(
    "predict",
    cls=BackpropCommand,
    epilog=examples(
        "backprop registry predict churn production customers.csv | head",
        "backprop registry predict churn production rows.parquet --json",
    ),
)
def predict(
    name: Name,
    alias_name: Alias,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a .csv or .parquet file")],
    batch_rows: Annotated[
        int,
        typer.Option("--batch-rows", metavar="N", min=1, help="rows per request"),
    ] = PREDICT_BATCH_ROWS,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Predict the rows of a CSV or Parquet file with the model ALIAS points at (as
    `backprop predict` does by model id); a note on stderr names the model that answered."""
    with connected(url, api_key) as api:
        path = readable_file(file)
        model = api.get_model(api.get_alias(name, alias_name)["model_id"])
        responses = predict_file(
            model, path, batch_rows, lambda records: api.predict_alias(name, alias_name, records)
        )
        answered = sorted({response["model_id"] for response in responses})
        if not json_output:  # on stderr, as `predict`'s notes: stdout stays the table
            print(f"note: answered by model {', '.join(answered)}", file=sys.stderr)
        print_predictions(responses, model["classes"], json_output=json_output)
