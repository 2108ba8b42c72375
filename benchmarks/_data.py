"""Data sets of the service benchmark: written with pyarrow into the run's temporary folder.

Every set is two classes from a noisy linear rule, so every model has something to
learn, and is seeded, so a run sees the same bytes on both databases.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

LABEL = "label"
CSV_DECIMALS = 5  # standard normal values keep ~6 significant digits: 1.23456, -0.123456
CSV_CHUNK_ROWS = 100_000  # rows generated and written at a time (the file can be 200 MB)
NOISE = 0.5  # std of the noise added to the linear rule's score (which has std ~1)


@dataclass(frozen=True)
class Table:
    """A data set on disk and, for the small ones, in memory as the engine takes it."""

    path: Path
    rows: int
    features: int
    X: np.ndarray | None = None  # (m, n_x), as the service stores it
    y: np.ndarray | None = None  # (m,) 0/1 int64

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) as kept in memory; an error for a table written without them."""
        if self.X is None or self.y is None:
            raise ValueError(f"{self.path.name} was written without keeping its rows")
        return self.X, self.y


def feature_names(features: int) -> list[str]:
    return [f"x{index}" for index in range(features)]


def noisy_labels(rng: np.random.Generator, X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """0/1 labels of (m, n_x) rows: the sign of a normalized linear score plus noise."""
    score = X @ w / np.sqrt(X.shape[1])  # (m,) = (m, n_x)(n_x,)
    return (score + NOISE * rng.standard_normal(X.shape[0]) > 0).astype(np.int64)


def _csv_table(X: np.ndarray, y: np.ndarray) -> pa.Table:
    columns = {name: X[:, index] for index, name in enumerate(feature_names(X.shape[1]))}
    return pa.table({**columns, LABEL: y})


def write_csv(path: Path, rows: int, features: int, seed: int, keep: bool = True) -> Table:
    """A CSV of ``rows`` x ``features`` rounded floats and an integer 0/1 label column.

    Written in chunks of CSV_CHUNK_ROWS; with ``keep`` the rows are also returned in memory
    (as float64 parsed back from the rounded text: exactly what the service stores).
    """
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(features)
    options = pa_csv.WriteOptions(quoting_style="none")
    kept_X, kept_y = [], []
    writer = None
    try:
        for start in range(0, rows, CSV_CHUNK_ROWS):
            count = min(CSV_CHUNK_ROWS, rows - start)
            X = np.round(rng.standard_normal((count, features)), CSV_DECIMALS)
            y = noisy_labels(rng, X, w)
            table = _csv_table(X, y)
            if writer is None:
                writer = pa_csv.CSVWriter(path, table.schema, write_options=options)
            writer.write_table(table)
            if keep:
                kept_X.append(X)
                kept_y.append(y)
    finally:
        if writer is not None:
            writer.close()
    if not keep:
        return Table(path, rows, features)
    return Table(path, rows, features, np.concatenate(kept_X), np.concatenate(kept_y))


MIXED_CARDINALITIES = (3, 12, 50, 200, 1000)  # levels of the mixed CSV's string columns
MIXED_MISSING = 0.02  # the share of each string column's cells left empty


def mixed_names(numeric: int) -> list[str]:
    """The mixed CSV's feature columns: x0... numbers, then one word column per cardinality."""
    return [*feature_names(numeric), *(f"w{levels}" for levels in MIXED_CARDINALITIES)]


def write_mixed_csv(path: Path, rows: int, numeric: int, seed: int) -> Table:
    """A CSV of ``numeric`` rounded float columns, one string column per MIXED_CARDINALITIES
    (words like "l17", a share MIXED_MISSING of them empty) and an integer 0/1 label; the
    label follows the numbers and the first word column. Written in chunks; nothing kept."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(numeric)
    options = pa_csv.WriteOptions(quoting_style="none")
    writer = None
    try:
        for start in range(0, rows, CSV_CHUNK_ROWS):
            count = min(CSV_CHUNK_ROWS, rows - start)
            X = np.round(rng.standard_normal((count, numeric)), CSV_DECIMALS)
            columns = {name: X[:, j] for j, name in enumerate(feature_names(numeric))}
            first = None
            for levels in MIXED_CARDINALITIES:
                codes = rng.integers(0, levels, count)
                first = codes if first is None else first
                words = pa.array(np.char.add("l", codes.astype(str)))
                empty = pa.array(rng.random(count) < MIXED_MISSING)
                columns[f"w{levels}"] = pc.if_else(empty, "", words)
            y = noisy_labels(rng, X + (first == 0)[:, None], w)
            table = pa.table({**columns, LABEL: y})
            if writer is None:
                writer = pa_csv.CSVWriter(path, table.schema, write_options=options)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return Table(path, rows, numeric + len(MIXED_CARDINALITIES))


def write_parquet_float32(path: Path, rows: int, features: int, seed: int) -> Table:
    """A Parquet file of float32 feature columns and an int8 label; X (m, n_x) float32 kept."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(features)
    XT = rng.standard_normal((features, rows), dtype=np.float32)  # one contiguous row per column
    y = noisy_labels(rng, XT.T, w)
    columns = {name: XT[index] for index, name in enumerate(feature_names(features))}
    # Random floats have no repeats: a dictionary would be built, abandoned, and left in the
    # file, 50% larger (past the 512 MiB upload limit at 1M rows). Plain pages: ~4 B a value.
    pq.write_table(pa.table({**columns, LABEL: y.astype(np.int8)}), path, use_dictionary=False)
    X = np.ascontiguousarray(XT.T)  # (m, n_x): the rows, as a caller hands them to the engine
    del XT
    return Table(path, rows, features, X, y)
