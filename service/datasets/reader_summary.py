"""What a column turned out to hold, gathered batch by batch in bounded memory, and the
rules that follow from it: its schema entry, whether training leaves it out, whether
the upload is refused because of it.

A numeric column keeps its missing count, min, max, sum and (up to a bound) its distinct
values; a categorical one its level table: each level's code (the order it was first
seen in, or an order given up front), its row count, and the missing count. Past
``max_levels`` distinct values (BACKPROP_MAX_LEVELS) a column stops collecting: its
``distinct`` is then null ("more than counted"), and a categorical is left out of
training with a warning.
"""

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.columns import level_key
from service.core.errors import Unprocessable

NUMERIC, CATEGORICAL = "numeric", "categorical"
TOP_LEVELS = 10  # the most frequent levels a categorical column's entry lists
UNIQUE_MIN_ROWS = 10  # fewer rows than this: a column unique per row may be a coincidence
BOOLEAN_LEVELS = ["false", "true"]  # a boolean column's levels, codes 0 and 1
UNIQUE_WARNING = "unique per row (names or ids): left out of training"
ROW_NUMBER_WARNING = "a row number (each value is the previous one + 1): left out of training"


def too_many_levels_warning(max_levels: int) -> str:
    return (
        f"more than {max_levels:,} distinct levels (BACKPROP_MAX_LEVELS, max_levels): "
        "left out of training"
    )


class NumberSummary:
    """A numeric column's missing count, min, max, mean, distinct values (up to
    ``max_distinct``) and whether it counts rows (each value the previous + 1)."""

    def __init__(self, *, max_distinct: int, integer: bool):
        self.max_distinct = max_distinct
        self.missing = 0
        self.count = 0  # values present
        self.total = 0.0
        self.mean: float | None = None  # kept instead of total once a sum overflows
        self.low, self.high = np.inf, -np.inf
        self.distinct: pa.Array | None = None  # the distinct values so far (null among them)
        self.counting = True  # False: more than max_distinct
        self.counts_rows = integer  # still possibly a row number
        self.last: float | None = None  # the last value, for the row number test

    def add(self, floats: np.ndarray, values: pa.Array) -> int | None:
        """Take a batch's (b,) values (NaN: missing) and, for counting distinct values,
        the Arrow array they came from (any numeric type; the batch's or its dictionary's);
        the index of the batch's first infinite value, if any (the caller refuses it).
        Sums past float64's range are inf without a warning (the caller's np.errstate)."""
        total = float(np.add.reduce(floats))
        if total != total or abs(total) == np.inf:  # a NaN or an infinity somewhere (or overflow)
            missing = np.isnan(floats)
            infinite = np.flatnonzero(np.isinf(floats))
            if len(infinite):
                return int(infinite[0])
            n_missing = int(np.count_nonzero(missing))
            if n_missing:
                self.missing += n_missing
                self.counts_rows = False
                floats = floats[~missing]
                total = float(np.add.reduce(floats))
        if len(floats) == 0:
            return None
        self._sum(floats, total)
        self.low = min(self.low, float(np.fmin.reduce(floats)))
        self.high = max(self.high, float(np.fmax.reduce(floats)))
        if self.counting:
            self._count(values)
        if self.counts_rows:
            follows = self.last is None or floats[0] == self.last + 1
            self.counts_rows = follows and bool(np.all(np.diff(floats) == 1))
            self.last = float(floats[-1])
        return None

    def _count(self, values: pa.Array) -> None:
        """Gather a batch's distinct values, by Arrow's hash tables (no Python objects)."""
        found = pc.unique(values)
        if self.distinct is not None:
            new = found.filter(pc.invert(pc.is_in(found, value_set=self.distinct)))
            found = pa.concat_arrays([self.distinct, new]) if len(new) else self.distinct
        self.distinct = found
        if len(found) > self.max_distinct + 2:  # + a null and a NaN, which do not count
            self.counting, self.distinct = False, None

    def _sum(self, floats: np.ndarray, total: float) -> None:
        """Add a batch's values (none missing) and their ``total`` to the running sum; past
        float64's range, to a running mean of weighted means (no term past the largest)."""
        if self.mean is None and abs(self.total + total) < np.inf:
            self.total += total
            self.count += len(floats)
            return
        mean = self.total / max(self.count, 1) if self.mean is None else self.mean
        batch_mean = float(np.add.reduce(floats / len(floats)))
        count = self.count + len(floats)
        self.mean = mean * (self.count / count) + batch_mean * (len(floats) / count)
        self.count = count

    def entry(self, rows: int) -> dict[str, Any]:
        """The schema entry's statistics."""
        present = self.count > 0
        distinct = None
        if self.counting:  # as Python floats -0.0 is 0.0; null and NaN are missing
            found = [] if self.distinct is None else self.distinct.to_pylist()
            distinct = len({float(x) for x in found if x is not None and x == x})
        mean = self.mean if self.mean is not None else self.total / max(self.count, 1)
        return {
            "kind": NUMERIC,
            "missing": self.missing,
            "distinct": distinct if distinct is None or distinct <= self.max_distinct else None,
            "levels": None,
            "top_levels": None,
            "min": self.low if present else None,
            "max": self.high if present else None,
            "mean": mean if present else None,
            "warning": self.warning(rows),
        }

    def warning(self, rows: int) -> str | None:
        if self.counts_rows and self.missing == 0 and rows >= UNIQUE_MIN_ROWS:
            return ROW_NUMBER_WARNING
        return None


class LevelTable:
    """A categorical column's levels as they stream by: a code per level (first seen
    first, or ``preset`` order), rows per level, missing cells. Past ``max_levels`` it
    forgets them all and codes nothing more (``overflowed``)."""

    def __init__(self, *, max_levels: int, preset: list[str] | None = None):
        self.max_levels = max_levels
        self.code_of: dict[str, int] = {level: i for i, level in enumerate(preset or [])}
        self.known = pa.array(list(self.code_of), pa.string())  # the levels, for look-ups
        self.counts = np.zeros(len(self.code_of), dtype=np.int64)
        self.missing = 0
        self.overflowed = False

    def take(self, keys: pa.Array, indices: np.ndarray) -> np.ndarray:
        """A batch's (b,) values (codes, NaN where missing) and counts, from its d distinct
        cells' ``keys`` (d,) (level names; null: missing) and each cell's index into them
        (``indices`` (b,), d for a null cell)."""
        blank = keys.is_null().to_numpy(zero_copy_only=False)  # (d,)
        per_key = np.bincount(indices, minlength=len(keys) + 1)  # (d + 1,) cells per key
        self.missing += int(per_key[-1]) + int(per_key[:-1][blank].sum())
        codes = np.full(len(keys) + 1, np.nan)  # (d + 1,): the last for null cells
        if self.overflowed:
            return codes[indices]
        if self.code_of:  # the levels met before, found by Arrow's hash table
            known = pc.index_in(keys, value_set=self.known)
            codes[:-1] = known.to_numpy(zero_copy_only=False)
        new = np.flatnonzero(np.isnan(codes[:-1]) & ~blank)
        if len(new):  # in the batch's order, which is the order first met
            code_of = self.code_of
            for i, key in zip(new, keys.take(pa.array(new)).to_pylist(), strict=True):
                codes[i] = code_of.setdefault(key, len(code_of))
            if len(code_of) > self.max_levels:
                self.overflowed = True
                self.code_of, self.counts = {}, np.zeros(0, dtype=np.int64)
                return np.full(len(indices), np.nan)
            self.known = pa.array(list(code_of), pa.string())
            grown = np.zeros(len(code_of), dtype=np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown
        coded = ~np.isnan(codes[:-1])
        np.add.at(self.counts, codes[:-1][coded].astype(np.int64), per_key[:-1][coded])
        return codes[indices]

    @property
    def levels(self) -> list[str]:
        return list(self.code_of)

    def entry(self, rows: int) -> dict[str, Any]:
        """The schema entry's statistics."""
        if self.overflowed:
            return {
                "kind": CATEGORICAL,
                "missing": self.missing,
                "distinct": None,
                "levels": None,
                "top_levels": None,
                **dict.fromkeys(("min", "max", "mean")),
                "warning": too_many_levels_warning(self.max_levels),
            }
        levels = self.levels
        present = np.flatnonzero(self.counts)
        # Most frequent first; ties in code order (stable sort).
        top = present[np.argsort(-self.counts[present], kind="stable")][:TOP_LEVELS]
        unique = len(present) == rows and self.missing == 0 and rows >= UNIQUE_MIN_ROWS
        return {
            "kind": CATEGORICAL,
            "missing": self.missing,
            "distinct": len(present),
            "levels": levels,
            "top_levels": [{"level": levels[i], "count": int(self.counts[i])} for i in top],
            **dict.fromkeys(("min", "max", "mean")),
            "warning": UNIQUE_WARNING if unique else None,
        }


def column_problem(name: str, entry: dict[str, Any], rows: int) -> Unprocessable | None:
    """A feature column the upload is refused for, by its entry: every cell missing, or a
    categorical of one level and no missing cell (a numeric constant is kept: a blank
    pixel of an image set is one)."""
    leave_out = f"leave it out with ignore={name}"
    if entry["missing"] == rows:
        return Unprocessable(
            f'column "{name}" has no values: all {rows:,} of its cells are missing; {leave_out}',
            field="file",
            column=name,
        )
    if entry["kind"] == CATEGORICAL and entry["distinct"] == 1 and entry["missing"] == 0:
        level = entry["top_levels"][0]["level"]
        return Unprocessable(
            f'column "{name}" holds one level ("{level}") in every row: a column of one '
            f"level tells no rows apart; {leave_out}",
            field="file",
            column=name,
        )
    return None


def label_entry(name: str, type: str, classes: list[Any], counts: np.ndarray) -> dict[str, Any]:
    """The label column's schema entry, from its classes and their (k,) row counts: numbers
    are numeric (min, max, mean), strings and booleans categorical (levels: the classes)."""
    entry: dict[str, Any] = {
        "name": name,
        "role": "label",
        "type": type,
        "kind": NUMERIC if type in ("integer", "number") else CATEGORICAL,
        "missing": 0,
        "distinct": len(classes),
        "levels": None,
        "top_levels": None,
        **dict.fromkeys(("min", "max", "mean")),
        "warning": None,
    }
    if entry["kind"] == CATEGORICAL:
        levels = [level_key(c) for c in classes]
        top = np.argsort(-counts, kind="stable")[:TOP_LEVELS]
        entry["levels"] = levels
        entry["top_levels"] = [{"level": levels[i], "count": int(counts[i])} for i in top]
    else:
        values = np.asarray(classes, dtype=np.float64)
        entry["min"], entry["max"] = float(values.min()), float(values.max())
        entry["mean"] = float(values @ counts / counts.sum())
    return entry


def unread_entry(name: str, type: str) -> dict[str, Any]:
    """The schema entry of a column named in ignore=: not read, so nothing counted."""
    return {
        "name": name,
        "role": "ignored",
        "type": type,
        "kind": NUMERIC if type in ("integer", "number") else CATEGORICAL,
        **dict.fromkeys(("missing", "distinct", "levels", "top_levels", "min", "max", "mean")),
        "warning": None,
    }
