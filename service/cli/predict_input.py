"""The rows of a local CSV or Parquet file as prediction records, for `backprop predict`.

Read a block at a time with pyarrow (never the whole file), only the model's input
columns: a numeric column's cells must be numbers (an empty cell, NA or NaN is missing:
null), a categorical column's are sent as text (a level the model never saw is the
server's to count). A problem names the file, and the row and column, as a LocalError
(exit 1).
"""

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from service.cli.client import file_format
from service.cli.common import LocalError


def record_batches(
    path: Path, columns: Sequence[dict[str, Any]], batch_rows: int
) -> Iterator[list[dict[str, Any]]]:
    """The file's rows as records of the model's ``columns`` ({"name", "kind"}), in
    lists of at most ``batch_rows``; read a block at a time with pyarrow."""
    import pyarrow as pa

    names = [column["name"] for column in columns]
    numeric = {column["name"] for column in columns if column["kind"] == "numeric"}
    blocks = parquet_blocks if file_format(path) == "parquet" else csv_blocks
    pending: list[dict[str, Any]] = []
    first_row = 1  # data rows count from 1, as the server's upload errors do
    rows_seen = 0
    try:
        for block in blocks(path, names, numeric, batch_rows):
            pending += block_records(block, names, numeric, path, first_row + rows_seen)
            rows_seen += block.num_rows
            while len(pending) >= batch_rows:
                yield pending[:batch_rows]
                pending = pending[batch_rows:]
    except (pa.ArrowException, OSError) as error:
        raise LocalError(f"{path}: {error}") from error
    if pending:
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


def csv_blocks(
    path: Path, features: Sequence[str], numeric: set[str], batch_rows: int
) -> Iterator[Any]:
    import pyarrow as pa
    from pyarrow import csv

    with csv.open_csv(path) as header_reader:
        check_columns(path, header_reader.schema.names, features)
    types = {name: pa.float64() if name in numeric else pa.string() for name in features}
    options = csv.ConvertOptions(
        include_columns=list(features), column_types=types, strings_can_be_null=True
    )
    with csv.open_csv(path, convert_options=options) as reader:
        yield from reader


def parquet_blocks(
    path: Path, features: Sequence[str], numeric: set[str], batch_rows: int
) -> Iterator[Any]:
    from pyarrow import parquet

    with parquet.ParquetFile(path) as file:
        check_columns(path, file.schema_arrow.names, features)
        yield from file.iter_batches(batch_size=batch_rows, columns=list(features))


def block_records(
    block: Any, features: Sequence[str], numeric: set[str], path: Path, first_row: int
) -> list[dict[str, Any]]:
    """A record batch as records: numbers (None when missing) or text, by column kind."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = {}
    for name in features:
        column = block.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if name not in numeric:
            values[name] = pc.cast(column, pa.string()).to_pylist()
            continue
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            raise LocalError(f"{path}: column {name!r} is {column.type}, not numbers")
        numbers = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        infinite = np.isinf(numbers)
        if infinite.any():
            row = int(np.argmax(infinite))
            raise LocalError(
                f"{path}: row {first_row + row}, column {name!r} is not a finite number "
                "(row 1 is the first data row)"
            )
        values[name] = [None if np.isnan(x) else x for x in numbers.tolist()]
    columns = [values[name] for name in features]
    return [dict(zip(features, cells, strict=True)) for cells in zip(*columns, strict=True)]
