"""The rows of a local CSV or Parquet file as feature matrices, for `backprop predict`.

Read a block at a time with pyarrow (never the whole file), only the model's feature
columns, in the model's order; every cell must be a finite number. A problem names
the file, and the row and column, as a LocalError (exit 1).
"""

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.client import file_format
from service.cli.common import LocalError

if TYPE_CHECKING:
    import numpy as np


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
