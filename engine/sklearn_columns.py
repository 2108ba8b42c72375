"""X's columns as the engine's coded table (engine.columns), for engine.sklearn.

A column arrives as a pandas Series (from a frame) or a NumPy array (a column of an
array), and leaves as (n_samples,) float64: numbers with NaN, or level codes with NaN
(missing) and UNSEEN_CODE (a level the training data did not hold). pandas is never
imported here: a frame's columns are recognized by their attributes.
"""

import math
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from engine.columns import CATEGORICAL, NUMERIC, UNSEEN_CODE, InputColumn, level_key


def learn_column(name: str, values: Any, *, categorical: bool) -> tuple[np.ndarray, InputColumn]:
    """(codes (n_samples,), its InputColumn) of one training column: typed as the module
    docstring says, the levels those the column holds."""
    kind = values.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported (column {name!r})")
    if _is_category(values):
        levels = _distinct(level_key(level) for level in values.cat.categories.tolist())
        column = InputColumn(name, CATEGORICAL, levels)
        return _category_codes(values, column), column
    if kind in "iuf" and not categorical:
        return _numbers(values, name), InputColumn(name)
    cells = _cells(values)
    if values.dtype == np.dtype(object) and not categorical and _all_numbers(cells):
        return _numbers(values, name), InputColumn(name)
    keys = [level_key(cell) for cell in cells]
    column = InputColumn(name, CATEGORICAL, tuple(sorted({k for k in keys if k is not None})))
    return _key_codes(keys, column), column


def code_column(values: Any, column: InputColumn) -> np.ndarray:
    """(n_samples,) codes of a column of X for the training ``column`` it stands in for."""
    if column.kind == NUMERIC:
        return _numbers(values, column.name)
    if _is_category(values):
        return _category_codes(values, column)
    return _key_codes([level_key(cell) for cell in _cells(values)], column)


def _numbers(values: Any, name: str) -> np.ndarray:
    """(n_samples,) float64 of a numeric column, NaN where a cell is missing."""
    if values.dtype.kind in "iufb" and not _is_category(values):
        if hasattr(values, "to_numpy"):  # a Series: nullable dtypes have pd.NA for missing
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(values, dtype=np.float64)
    numbers = np.full(len(values), np.nan)
    for i, cell in enumerate(_cells(values)):
        if cell is None:
            continue
        if not _is_number(cell):
            raise ValueError(f"column {name!r} held numbers in fit, but a cell holds {cell!r}")
        numbers[i] = cell
    return numbers


def _category_codes(values: Any, column: InputColumn) -> np.ndarray:
    """(n_samples,) codes of a pandas ``category`` column: its categories are looked up by
    level name once, so its own codes need not be the training frame's."""
    index = _level_index(column)
    lookup = [_code(level_key(level), index) for level in values.cat.categories.tolist()]
    lookup.append(math.nan)  # the category code -1 is a missing cell
    return np.array(lookup, dtype=np.float64)[values.cat.codes.to_numpy()]


def _key_codes(keys: list[str | None], column: InputColumn) -> np.ndarray:
    """(n_samples,) codes of level names (None: a missing cell)."""
    index = _level_index(column)
    return np.fromiter((_code(key, index) for key in keys), dtype=np.float64, count=len(keys))


def _level_index(column: InputColumn) -> dict[str, int]:
    return {level: code for code, level in enumerate(column.levels or ())}


def _code(key: str | None, index: dict[str, int]) -> float:
    return math.nan if key is None else float(index.get(key, UNSEEN_CODE))


def _cells(values: Any) -> list[object]:
    """The column's cells as Python objects, None where one is missing (NaN, None, pd.NA)."""
    if hasattr(values, "to_numpy"):  # a Series
        return values.to_numpy(dtype=object, na_value=None).tolist()
    cells = np.asarray(values, dtype=object)
    pandas = sys.modules.get("pandas")
    if pandas is not None:  # an array from a frame's to_numpy() may hold pd.NA
        cells = np.where(pandas.isna(cells), None, cells)
    return [None if _is_nan(cell) else cell for cell in cells.tolist()]


def _all_numbers(cells: list[object]) -> bool:
    """Whether the cells hold numbers and nothing else but missing cells (None)."""
    present = [cell for cell in cells if cell is not None]
    return bool(present) and all(_is_number(cell) for cell in present)


def _is_number(cell: object) -> bool:
    """A real number; not a boolean, which is a category ("true", "false")."""
    return isinstance(cell, int | float | np.integer | np.floating) and not isinstance(
        cell, bool | np.bool_
    )


def _is_nan(cell: object) -> bool:
    return isinstance(cell, float | np.floating) and math.isnan(cell)


def _is_category(values: Any) -> bool:
    """Whether ``values`` is a pandas Series of ``category`` dtype."""
    return getattr(values.dtype, "name", None) == "category" and hasattr(values, "cat")


def is_dataframe(X: object) -> bool:
    """Whether X is a pandas DataFrame; pandas is not imported unless the caller did."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(X, pandas.DataFrame)


def _distinct(keys: Iterable[str | None]) -> tuple[str, ...]:
    """The level names, each once, in order; None (a missing category) left out."""
    return tuple(dict.fromkeys(key for key in keys if key is not None))
