"""The label column as it streams by: a 4-byte code per row, typed and made classes at the end.

Labels may be numbers, strings or booleans; every row needs one. Missing labels (a null
cell, an empty one, spaces alone or a CSV null token such as NA) are refused with their
count and first rows, once the file is read.
"""

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.core.errors import Unprocessable
from service.datasets.reader_errors import ROW_NOTE, cell_error, count
from service.datasets.reader_types import (
    TEXT_KINDS,
    cast_or_none,
    is_text,
    null_tokens,
    numeric_kind,
    value_type,
)

INT64_MAX = 2**63 - 1  # labels are stored and served as int64
ROWS_SHOWN = 5  # missing labels: the first rows named


class LabelColumn:
    """The label column as it streams by: each row's code (4 bytes) into the distinct raw
    labels seen (-1: a null cell), typed and made classes once the file is read."""

    def __init__(self, name: str, arrow_type: pa.DataType, *, from_text: bool):
        self.name = name
        self.type = value_type(arrow_type)
        self.from_text = from_text  # CSV: the type is read from the text
        self.usable = numeric_kind(self.type) is not None or is_text(self.type)
        self.code_of: dict[Any, int] = {}  # a raw label -> its code
        self.chunks: list[np.ndarray] = []  # (b,) int32 codes of each batch's rows

    def take(self, values: pa.Array, start: int) -> None:
        if not self.usable:
            return  # refused at the end: the codes are not needed
        if not pa.types.is_dictionary(values.type):
            values = pc.dictionary_encode(values)
        # The batch's own dictionary is small: map it onto ours (and a null cell to -1).
        ours = [
            self.code_of.setdefault(v, len(self.code_of)) for v in values.dictionary.to_pylist()
        ]
        lookup = np.asarray([*ours, -1], dtype=np.int32)
        indices = pc.fill_null(values.indices.cast(pa.int32()), len(ours))
        self.chunks.append(lookup[indices.to_numpy(zero_copy_only=False)])

    def classes(self, *, max_classes: int) -> tuple[list[Any], np.ndarray, str]:
        """(sorted distinct labels as JSON values, (m,) int32 class of each row, the type)."""
        if not self.usable:
            raise Unprocessable(
                f'label column "{self.name}" has the type {self.type}; '
                "labels must be numbers, strings or booleans",
                field="label",
                column=self.name,
            )
        codes = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int32)
        raw = list(self.code_of)
        distinct = pa.array(raw, type=self.type)
        blank = np.zeros(len(raw) + 1, dtype=bool)  # by code; the last: a null cell (-1)
        blank[-1] = True
        if is_text(self.type):
            trimmed = pc.utf8_trim_whitespace(distinct)
            blank[:-1] = pc.or_(pc.equal(trimmed, ""), pc.is_in(trimmed, null_tokens())).to_numpy(
                zero_copy_only=False
            )
        elif pa.types.is_floating(self.type):  # NaN: IEEE's own missing value
            blank[:-1] = np.isnan(distinct.to_numpy(zero_copy_only=False))
        missing = np.flatnonzero(blank[codes])
        if len(missing):
            raise missing_labels(self.name, missing)
        # A Parquet dictionary may hold values no row uses (an unused category): not labels.
        used = np.flatnonzero(np.bincount(codes, minlength=len(raw)))
        renumbered = np.zeros(len(raw), dtype=np.int32)
        renumbered[used] = np.arange(len(used), dtype=np.int32)
        distinct = distinct.take(pa.array(used))
        codes = renumbered[codes]
        values, kind, problem = self._typed(distinct)
        if problem is not None:
            bad, reason = problem  # bad: (d,) which distinct labels are refused
            row = int(np.flatnonzero(bad[codes])[0])
            raise cell_error(self.name, row, reason(int(codes[row])))
        classes, class_of_distinct = classes_of(self.name, values, max_classes=max_classes)
        return classes, class_of_distinct[codes].astype(np.int32, copy=False), kind

    def _typed(self, distinct: pa.Array) -> tuple[pa.Array, str, Any]:
        """The distinct labels in the column's type, the type, and (mask, reason) of the
        labels refused, if any: the rules above, applied to the distinct values."""
        kind = numeric_kind(distinct.type)
        if kind is None and not self.from_text:
            return pc.utf8_trim_whitespace(distinct.cast(pa.string())), "string", None
        if kind is None:
            trimmed = pc.utf8_trim_whitespace(distinct)
            for kind in ("integer", "number"):
                if (numbers := cast_or_none(trimmed, TEXT_KINDS[kind])) is not None:
                    return self._numbers(numbers, kind)
            words = pc.utf8_lower(trimmed)
            if pc.all(pc.is_in(words, value_set=pa.array(["true", "false"]))).as_py():
                return pc.equal(words, "true"), "boolean", None
            return trimmed, "string", None
        return self._numbers(distinct, kind)

    def _numbers(self, values: pa.Array, kind: str) -> tuple[pa.Array, str, Any]:
        if kind == "integer" and len(values) and pc.max(values).as_py() > INT64_MAX:
            raise Unprocessable(
                f'label column "{self.name}" has integers past 2**63 - 1; '
                "use smaller codes or text",
                field="label",
            )
        if kind != "number":
            return values, kind, None
        floats = pc.cast(values, pa.float64(), safe=False)
        finite = pc.is_finite(floats).to_numpy(zero_copy_only=False)
        if not finite.all():
            # NaN is a missing label: said as such, with the rest of them.
            nan = pc.is_nan(floats).to_numpy(zero_copy_only=False)
            if nan.any():
                return floats, kind, (nan, lambda i: "label is missing")
            return floats, kind, (~finite, lambda i: f"label {floats[i].as_py()} is not finite")
        return pc.add(floats, 0.0), kind, None  # -0.0 and 0.0 are the same class


def missing_labels(name: str, rows: np.ndarray) -> Unprocessable:
    """The label column's missing cells, by their (0-based) rows: the count and the first few."""
    shown = [int(row) + 1 for row in rows[:ROWS_SHOWN]]
    listed = ", ".join(map(str, shown))
    if len(rows) > ROWS_SHOWN:
        listed += f" and {len(rows) - ROWS_SHOWN:,} more"
    which = "row" if len(rows) == 1 else "rows"
    return Unprocessable(
        f'label column "{name}" is missing in {count(len(rows), "row")}: {which} {listed} '
        f"({ROW_NOTE}); every row needs its label: fill them in or leave those rows out",
        field="file",
        column=name,
        rows=shown,
        missing=len(rows),
    )


def classes_of(name: str, labels: pa.Array, *, max_classes: int) -> tuple[list[Any], np.ndarray]:
    """(sorted distinct labels as JSON values, each label's (d,) int32 index into them)."""
    distinct = pc.unique(labels)
    if len(distinct) > max_classes:
        raise Unprocessable(
            f'label column "{name}" has {len(distinct):,} distinct values; at most '
            f"{max_classes:,} classes are allowed (BACKPROP_MAX_CLASSES, max_classes). "
            "Is it the right label column?",
            field="label",
            limit=max_classes,
            setting="max_classes",
        )
    if len(distinct) < 2:
        raise Unprocessable(
            f'label column "{name}" has a single value ({distinct[0].as_py()!r}); '
            "training needs at least 2 classes",
            field="label",
        )
    distinct = distinct.take(pc.sort_indices(distinct))
    index = pc.index_in(labels, value_set=distinct).to_numpy(zero_copy_only=False)
    classes = distinct.to_pylist()
    if pa.types.is_floating(distinct.type) and all(
        c.is_integer() and abs(c) <= 2**53 for c in classes
    ):
        classes = [int(c) for c in classes]  # 0.0 and 1.0 read as the classes 0 and 1
    return classes, index.astype(np.int32)
