"""A table's input columns, and their values coded as one float matrix.

The engine takes a table as a float64 matrix (m, n_in), one column per input column:

* a **numeric** column holds its numbers, NaN where a cell is missing;
* a **categorical** column with ``levels`` holds each cell's code, the index of its
  level in ``levels`` (NaN: missing; -1: a level the table does not list, as a
  record at prediction time may bring);
* a **categorical** column without levels holds numbers that are categories (a
  store id): each distinct number is a level (+inf: a value that is not a number).

Codes are exact in float64 (integers up to 2**53), so one dense matrix carries a
table of any mix of kinds, and NaN, IEEE's own "no value", is its missing mask.
``code_table`` builds it from columns of any NumPy dtype (a pandas frame's columns);
``code_records`` from JSON-like records.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)
UNSEEN_CODE = -1.0  # a coded categorical's value that is not one of its levels
UNSEEN_NUMBER = math.inf  # an uncoded categorical's value that is not a number


@dataclass(frozen=True)
class InputColumn:
    """One input column: its name, its kind and, for coded categoricals, its levels."""

    name: str
    kind: str = NUMERIC
    levels: tuple[str, ...] | None = None  # categorical: code i is levels[i]; None: numbers

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.kind == NUMERIC and self.levels is not None:
            raise ValueError(f"column {self.name!r}: a numeric column has no levels")

    @property
    def coded(self) -> bool:
        """Whether the column's values are codes into ``levels``."""
        return self.levels is not None

    def level_name(self, value: float) -> str:
        """The level a (non-missing) value stands for, as shown."""
        if self.levels is not None:
            return self.levels[int(value)]
        return number_key(value)

    def to_dict(self) -> dict[str, object]:
        levels = None if self.levels is None else list(self.levels)
        return {"name": self.name, "kind": self.kind, "levels": levels}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "InputColumn":
        levels = data.get("levels")
        return cls(
            name=str(data["name"]),
            kind=str(data.get("kind", NUMERIC)),
            levels=None if levels is None else tuple(str(level) for level in levels),
        )


def number_key(value: float) -> str:
    """A number as a level's name: 7.0 is "7" (an integer category), 0.5 is "0.5"."""
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def level_key(value: object) -> str | None:
    """The level name a raw cell stands for; None when the cell is missing.

    Text is trimmed; booleans are "true" and "false" (as a CSV's boolean column reads);
    numbers by ``number_key``, so 7, 7.0 and "7" are one level.
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else number_key(float(value))
    text = str(value).strip()
    return text or None


def code_table(
    columns: Mapping[str, np.ndarray | Sequence[object]],
    *,
    categorical: Sequence[str] = (),
) -> tuple[np.ndarray, list[InputColumn]]:
    """A table's columns as the coded matrix X (m, n_in) float64 and their InputColumns.

    Numbers (and booleans) are numeric unless named in ``categorical``; anything else
    (strings, objects, pandas categories as arrays) is categorical, its levels the sorted
    distinct level keys. None, NaN and empty text are missing.
    """
    names = list(columns)
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise ValueError(f"categorical names columns that are not in the table: {unknown}")
    arrays = [np.asarray(columns[name]) for name in names]
    m = len(arrays[0]) if arrays else 0
    X = np.empty((m, len(names)), dtype=np.float64)
    described = []
    for j, (name, values) in enumerate(zip(names, arrays, strict=True)):
        if values.ndim != 1 or len(values) != m:
            raise ValueError(f"column {name!r} has shape {values.shape}; expected ({m},)")
        if values.dtype.kind in "biuf" and name not in categorical:
            X[:, j] = values.astype(np.float64)
            if np.isinf(X[:, j]).any():
                raise ValueError(f"column {name!r} holds an infinite value")
            described.append(InputColumn(name, NUMERIC))
            continue
        keys = [level_key(value) for value in values.tolist()]
        levels = tuple(sorted({key for key in keys if key is not None}))
        index = {level: code for code, level in enumerate(levels)}
        X[:, j] = [math.nan if key is None else index[key] for key in keys]
        described.append(InputColumn(name, CATEGORICAL, levels))
    return X, described


class RecordError(ValueError):
    """A record that cannot be coded: ``column`` names the column, ``index`` the record."""

    def __init__(self, column: str, index: int, message: str):
        super().__init__(f"record {index}, column {column!r}: {message}")
        self.column = column
        self.index = index
        self.message = message


def code_records(
    records: Sequence[Mapping[str, object]], columns: Sequence[InputColumn]
) -> np.ndarray:
    """Records (JSON objects: strings, numbers, booleans, null) as the coded matrix (m, n_in).

    Every record must carry every column's key (null when the cell is missing): an absent
    key is more often a misspelt name than a missing value. A numeric column takes numbers
    and null; a categorical one any value, a level it does not list coded UNSEEN_CODE.
    Raises RecordError for the first record that breaks a rule.
    """
    coder = RecordCoder(columns)
    X = np.empty((len(records), len(columns)), dtype=np.float64)
    for i, record in enumerate(records):
        X[i] = coder.code(record, i)
    return X


class RecordCoder:
    """Codes one record at a time into a row (n_in,), by ``code_records``' rules."""

    def __init__(self, columns: Sequence[InputColumn]):
        self.columns = list(columns)
        self.indices = [_code_index(column) for column in self.columns]

    def code(self, record: Mapping[str, object], index: int) -> np.ndarray:
        """The coded row of ``record``, the ``index``-th of its request (for errors)."""
        row = np.empty(len(self.columns), dtype=np.float64)
        for j, column in enumerate(self.columns):
            if column.name not in record:
                raise RecordError(column.name, index, "the key is absent (null is a missing value)")
            row[j] = _code(record[column.name], column, self.indices[j], index)
        return row


def _code_index(column: InputColumn) -> dict[str, int] | None:
    if column.levels is None:
        return None
    return {level: code for code, level in enumerate(column.levels)}


def _code(value: object, column: InputColumn, index: dict[str, int] | None, row: int) -> float:
    if value is None:
        return math.nan
    if column.kind == NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecordError(column.name, row, f"{value!r} is not a number (a numeric column)")
        if not math.isfinite(value):
            if math.isnan(value):
                return math.nan
            raise RecordError(column.name, row, f"{value!r} is not finite")
        return float(value)
    key = level_key(value)
    if key is None:
        return math.nan
    if index is not None:
        return float(index.get(key, UNSEEN_CODE))
    try:  # numbers that are categories: "7" is the level 7
        number = float(key)
    except ValueError:
        return UNSEEN_NUMBER  # cannot be one of the numbers
    return number if math.isfinite(number) else UNSEEN_NUMBER


def recode(values: np.ndarray, source: InputColumn, target: InputColumn) -> np.ndarray:
    """A column coded as ``source`` describes it, coded as ``target`` does: (m,) float64.

    A stored dataset's codes index its own levels, which another upload of similar data
    lists in another order; a model's columns index the levels it was trained with. Text
    levels map by name (a name ``target`` lacks: UNSEEN_CODE); numbers that are categories
    map to and from their level names. Text cannot become numbers: ValueError.
    """
    values = np.asarray(values, dtype=np.float64)
    if source.levels == target.levels and (source.kind == target.kind or not source.coded):
        return values
    present = ~np.isnan(values)
    out = np.full(len(values), math.nan)
    if source.coded:
        if target.kind == NUMERIC:
            raise ValueError(
                f"column {target.name!r} holds text in the data but numbers in the model"
            )
        names = source.levels  # the name of each source code
        if target.coded:
            index = {level: code for code, level in enumerate(target.levels)}
            lookup = np.array([index.get(name, UNSEEN_CODE) for name in names] + [UNSEEN_CODE])
        else:
            lookup = np.array([_as_number(name) for name in names] + [UNSEEN_NUMBER])
        codes = values[present].astype(np.intp)
        codes[(codes < 0) | (codes >= len(names))] = len(names)  # unseen stays unseen
        out[present] = lookup[codes]
        return out
    # numbers, to a coded categorical: each distinct number by its level name
    distinct, inverse = np.unique(values[present], return_inverse=True)
    index = {level: code for code, level in enumerate(target.levels or ())}
    codes = np.array([index.get(number_key(v), UNSEEN_CODE) for v in distinct.tolist()])
    out[present] = codes[inverse] if len(distinct) else []
    return out


def _as_number(name: str) -> float:
    try:
        number = float(name)
    except ValueError:
        return UNSEEN_NUMBER
    return number if math.isfinite(number) else UNSEEN_NUMBER
