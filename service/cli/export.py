"""`backprop export MODEL_ID --format onnx`: a fitted model as a file another runtime runs."""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from service.cli.client import DEFAULT_URL
from service.cli.common import (
    ApiKeyOption,
    BackpropCommand,
    JsonOption,
    UrlOption,
    UsageProblem,
    connected,
    examples,
)
from service.cli.models import ModelId, save_download
from service.cli.output import print_fields, print_json, size

FORMATS = ("onnx",)  # what GET /v1/models/{id}/export writes
DTYPES = ("float32", "float64")


def choice(values: tuple[str, ...], option: str) -> Callable[[str], str]:
    """A Typer `parser` that accepts only ``values`` (argparse's wording)."""

    def parse(value: str) -> str:
        if value not in values:
            choices = ", ".join(repr(v) for v in values)
            raise UsageProblem(
                f"argument {option}: invalid choice: {value!r} (choose from {choices})"
            )
        return value

    return parse


def register(app: typer.Typer) -> None:
    """`export`, a top-level command of ``app``."""
    app.command(
        "export",
        cls=BackpropCommand,
        epilog=examples(
            "backprop export MODEL_ID --format onnx",
            "backprop export MODEL_ID --format onnx --dtype float64 --out penguins.onnx",
            'python -c \'import onnxruntime as ort; print(ort.InferenceSession("penguins.onnx")'
            ".get_inputs())'",
        ),
    )(export_model)


def export_model(
    model_id: ModelId,
    export_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="FORMAT",
            parser=choice(FORMATS, "--format"),
            help="the file format: onnx (the graph includes the preprocessing)",
        ),
    ],
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            metavar="DTYPE",
            parser=choice(DTYPES, "--dtype"),
            help="the graph's float type: float32 (the server's default) or float64",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", metavar="FILE", help="where to write it (default: model-ID.onnx)"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite FILE if it exists")] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export a model as an ONNX graph, preprocessing included.

    The graph takes one input per model column, named as the column, shape [N, 1]:
    numbers as floats (NaN when missing), categories as text ("" when missing); it gives
    `probabilities` [N, K] and `label` [N]. The server needs the onnx extra.
    """
    path = output or Path(f"model-{model_id}.{export_format}")
    with connected(url, api_key) as api:
        written = save_download(
            path,
            force,
            lambda file: api.export_model(model_id, file, export_format=export_format, dtype=dtype),
        )
    shown_dtype = dtype or DTYPES[0]
    if json_output:
        print_json(
            {
                "id": model_id,
                "format": export_format,
                "dtype": shown_dtype,
                "path": str(path),
                "bytes": written,
            }
        )
    else:
        print_fields(
            [
                ("model", model_id),
                ("format", f"{export_format} ({shown_dtype})"),
                ("saved", str(path)),
                ("size", size(written)),
            ]
        )
