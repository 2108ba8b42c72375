"""The Arrow types an upload's columns arrive as, and the small conversions the column
readers (service.datasets.reader_columns, reader_labels) share.

Missing cells: an Arrow null (an empty CSV cell, a Parquet null), text that is blank or,
once trimmed, one of NULL_TOKENS, and a NaN number: IEEE's own "no value".
"""

from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# CSV cells (and Parquet text) that mean "missing", as R, pandas and spreadsheets write it.
NULL_TOKENS = ("NA", "N/A", "NaN", "nan", "null", "NULL", "None")
CSV_NULL_VALUES = ["", *NULL_TOKENS]  # Arrow's null_values for CSV cells


@cache
def null_tokens() -> pa.Array:
    """NULL_TOKENS as an Arrow array, made on first use: pa.array imports pandas (35 MB),
    which an API that has received no upload yet need not hold."""
    return pa.array(NULL_TOKENS, pa.string())


# The kinds a text column may be read as, in the order tried: the first that every cell
# is wins; text that is none of them is "string", a categorical.
TEXT_KINDS = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


class Retype(Exception):
    """A CSV column read as an Arrow number met a cell whose type the text rules decide."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class Restart(Exception):
    """A column's type was revised: the stream starts over from the first row."""


def numeric_kind(arrow_type: pa.DataType) -> str | None:
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return None


def is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def value_type(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def declared_type(arrow_type: pa.DataType) -> str:
    """The schema type of a column that is not read (named in ignore=): its Arrow type's."""
    return numeric_kind(value_type(arrow_type)) or "string"


def decoded(values: pa.Array) -> pa.Array:
    """Dictionary-encoded values as plain values."""
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def encoded(values: pa.Array) -> pa.DictionaryArray:
    """Values as a dictionary of the distinct ones and each cell's index into it."""
    return values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)


def cell_indices(values: pa.DictionaryArray) -> np.ndarray:
    """(b,) int64 each cell's index into its dictionary; a null cell's is len(dictionary)."""
    indices = values.indices
    if indices.null_count:
        indices = pc.fill_null(indices, len(values.dictionary))
    return indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def first_index(mask: Any) -> int | None:
    """The first index where ``mask`` is true, or None."""
    index = pc.index(mask, pa.scalar(True)).as_py()
    return None if index < 0 else index


def cast_or_none(values: Any, target: pa.DataType) -> Any:
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def as_floats(values: pa.Array) -> np.ndarray:
    """(b,) float64 values, NaN where null; a view where Arrow's are float64 without nulls."""
    if values.type != pa.float64():
        values = pc.cast(values, pa.float64(), safe=False)  # large integers round, as NumPy's
    if values.null_count:
        values = pc.fill_null(values, np.nan)
    # Array.to_numpy would do, through pyarrow's pandas conversion: tens of MB more.
    return np.frombuffer(values.buffers()[1], np.float64, len(values), values.offset * 8)
