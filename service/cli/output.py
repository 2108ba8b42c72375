"""How results read: Rich tables, `key: value` blocks, JSON, and the number formats.

Results go to stdout; notes and progress (service.cli.progress) go to stderr, so a
pipe gets the results alone. Rich draws nothing but text when stdout is not a
terminal (no colours, no control codes), and NO_COLOR is honoured.
"""

import json
import math
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

# Off a terminal a table is as wide as its cells: a pipe or a log never wraps a row.
UNWRAPPED_WIDTH = 10_000


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """`key: value` lines, the values aligned (plain text: `cut -d:` and grep work)."""
    width = max(len(key) for key, _ in fields) + 1
    for key, value in fields:
        print(f"{key + ':':<{width}} {value}")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Rich table: a rule under the header, columns of numbers right-aligned."""
    if not rows:
        print("(none)")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for i, header in enumerate(headers):
        numeric = all(is_number(row[i]) for row in rows)
        # Ids and timestamps are copied by hand: never folded or cut.
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    sys.stdout.flush()  # what print() wrote comes first
    if sys.stdout.isatty():
        console = Console(highlight=False)
        # Never narrower than the table: an id cut to fit a small terminal is useless.
        wide = console.options.update_width(UNWRAPPED_WIDTH)
        console.width = max(console.width, Measurement.get(console, wide, table).maximum)
        console.print(table)
        return
    console = Console(width=UNWRAPPED_WIDTH, highlight=False, color_system=None)
    with console.capture() as captured:
        console.print(table)
    # Rich pads every line to the table's width: the padding is no part of a result.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


# A listing's column: its header, and how to read its cell from an item of the page.
Column = tuple[str, Callable[[dict[str, Any]], str]]


def print_page(
    page: dict[str, Any], columns: Sequence[Column], *, command: str, json_output: bool
) -> None:
    """One page of a listing: the server's JSON as it came, or a table of ``columns`` and,
    on stderr, how to ask for the next page (``backprop <command> --cursor ...``)."""
    if json_output:
        print_json(page)
        return
    rows = [[cell(item) for _, cell in columns] for item in page["data"]]
    print_table([header for header, _ in columns], rows)
    next_page(command, page["next_cursor"])


def next_page(command: str, cursor: str | None) -> None:
    """Tell the person how to see the next page (stderr: not part of the listing)."""
    if cursor:
        print(f"more: backprop {command} --cursor {cursor}", file=sys.stderr)


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


def size(n_bytes: int) -> str:
    """A file size: 912 B, 48.3 KB, 1.2 MB (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000  # type: ignore[assignment]
    raise AssertionError("unreachable")


def first_of(names: list[str], most: int = 4) -> str:
    """A long list in a `key: value` line: its first names, then how many in all."""
    return ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def model_short(spec: dict[str, Any]) -> str:
    """A model spec in a table cell: `logistic`, or `network 16 tanh`."""
    if spec.get("type") == "two_layer_network":
        return f"network {spec.get('hidden_units')} {spec.get('activation')}"
    return "logistic" if spec.get("type") == "logistic_regression" else str(spec.get("type"))


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
