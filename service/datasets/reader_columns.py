"""How each column of an upload is read, batch by batch: the one table of column kinds.

service.datasets.reader streams an upload's record batches through one reader per column.
A feature reader writes the column's (b,) float64 values into the matrix rows and
remembers the column's first problem, by the rules below; the label reader keeps a
4-byte code per row and types the distinct labels at the end. Which reader a column
gets is decided in one place, ``feature_reader``, from the Arrow type it arrives as
(issue 12 adds categorical columns and missing cells here).

The rules (a feature column's type is decided by the whole column, as one cast):

- Numbers (integers, floats, decimals, booleans) are cast to float64 (large integers
  round, booleans are 0 and 1). A missing cell is refused before a non-finite one.
- Text (CSV cells Arrow could not type, Parquet strings) is trimmed of Unicode spaces
  and read as integers if every cell is one, else as numbers, else as booleans; else
  the first cell that is missing or not what the column's first cell is (a number or
  a boolean) is refused. Cells are quoted as written.
- Anything else (dates, binary) is not a number: the first missing cell, else row 1.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.core.errors import Unprocessable
from service.datasets.reader_errors import cell_error, shown

# The kinds a text column may be, in the order tried: the first that every cell is wins.
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


def decoded(values: pa.Array) -> pa.Array:
    """Dictionary-encoded values (Parquet categoricals) as plain values."""
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def value_type(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


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
    """(b,) float64 values of a column without nulls, a view where Arrow's are float64."""
    if values.type != pa.float64():
        values = pc.cast(values, pa.float64(), safe=False)  # large integers round, as NumPy's
    # Array.to_numpy would do, through pyarrow's pandas conversion: tens of MB more.
    return np.frombuffer(values.buffers()[1], np.float64, len(values), values.offset * 8)


@dataclass
class FeatureColumn:
    """A feature column's reader: ``take`` writes a batch's values, ``problem`` says what
    is wrong with the column (once every batch has been taken), or None."""

    name: str
    kind: str = "number"  # integer, number or boolean: the schema's type
    first_missing: int | None = None  # row indices from 0, over the whole file
    first_non_finite: tuple[int, str] | None = None  # (row, the cell as the message shows it)

    @property
    def settled(self) -> bool:
        """Whether the column's problem is known for good: later rows cannot change it."""
        return self.first_missing is not None  # a missing cell is said before a non-finite one

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        raise NotImplementedError

    def problem(self) -> Unprocessable | None:
        if self.first_missing is not None:
            return cell_error(self.name, self.first_missing, "value is missing")
        if self.first_non_finite is not None:
            row, cell = self.first_non_finite
            return cell_error(self.name, row, f"value {cell} is not finite")
        return None

    def _note_missing(self, values: pa.Array, start: int) -> bool:
        if values.null_count and self.first_missing is None:
            self.first_missing = start + first_index(pc.is_null(values))
        return values.null_count > 0


@dataclass
class NumericColumn(FeatureColumn):
    """Integers, floats, decimals or booleans as Arrow typed them. ``strict`` (CSV): a
    missing or non-finite cell is for the text rules, which quote it as written (Retype)."""

    strict: bool = False

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        values = decoded(values)
        if self._note_missing(values, start):
            if self.strict:
                raise Retype(self.name)
            return
        floats = as_floats(values)
        out[:] = floats
        if self.kind == "number" and self.first_non_finite is None:
            bad = np.flatnonzero(~np.isfinite(floats))
            if len(bad):
                if self.strict:
                    raise Retype(self.name)
                self.first_non_finite = (start + int(bad[0]), f"{values[int(bad[0])].as_py()}")


@dataclass
class TextColumn(FeatureColumn):
    """Text whose type the whole column decides: integers, numbers or booleans (TEXT_KINDS
    order), whichever every cell is. ``viable`` holds the kinds every batch so far fits;
    when the kind the rows were written in is ruled out, the stream restarts (keeping
    ``viable``: that reading writes in the right kind from the first row)."""

    viable: list[str] = field(default_factory=lambda: list(TEXT_KINDS))
    first_blank: int | None = None  # missing, or spaces alone
    target: tuple[str, str] | None = None  # what the first cell is: (kind, "a number"...)
    first_bad: tuple[int, str] | None = None  # the first cell that is not the target

    def __post_init__(self) -> None:
        self.kind = self.viable[0] if self.viable else "number"

    @property
    def settled(self) -> bool:
        # A blank cell is refused (unless a bad cell before it is: found in the same batch).
        return self.first_blank is not None or (not self.viable and self.first_bad is not None)

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        values = decoded(values)
        trimmed = pc.utf8_trim_whitespace(values)
        self._note_missing(values, start)
        if self.first_blank is None:
            blank = pc.or_kleene(pc.is_null(values), pc.equal(trimmed, ""))
            if (index := first_index(blank)) is not None:
                self.first_blank = start + index
        self._note_target(trimmed)
        wanted = set(self.viable)  # kinds ruled out are not cast again
        if self.target is not None and self.first_bad is None:
            wanted.add(self.target[0])
        cast = {kind: cast_or_none(trimmed, TEXT_KINDS[kind]) for kind in wanted}
        self._note_first_bad(values, trimmed, cast, start)
        self.viable = [kind for kind in self.viable if cast[kind] is not None]
        if self.viable and self.viable[0] != self.kind and self.first_missing is None:
            raise Restart  # rows so far were written as another kind: write them again
        if self.kind in self.viable and self.first_missing is None:
            numbers = cast[self.kind]
            out[:] = as_floats(numbers)
            index = None
            if self.kind == "number" and self.first_non_finite is None:
                index = first_index(pc.invert(pc.is_finite(numbers)))
            if index is not None:  # quoted as written
                self.first_non_finite = (start + index, f'"{shown(values[index].as_py())}"')

    def _note_target(self, trimmed: pa.Array) -> None:
        """What the column's first cell is: a boolean if it is one and not a number."""
        if self.target is None and (first := first_index(pc.is_valid(trimmed))) is not None:
            cell = trimmed.slice(first, 1)
            boolean = cast_or_none(cell, pa.float64()) is None and (
                cast_or_none(cell, pa.bool_()) is not None
            )
            self.target = ("boolean", "a boolean") if boolean else ("number", "a number")

    def _note_first_bad(
        self, values: pa.Array, trimmed: pa.Array, cast: dict[str, Any], start: int
    ) -> None:
        """The first cell that is not what the column's first cell is, found by halving
        the batch whose cast failed."""
        if self.target is None or self.first_bad is not None or cast[self.target[0]] is not None:
            return
        kind, expected = self.target
        low, high = 0, len(trimmed)  # cells [0, low) cast; [low, high) holds one that does not
        while high - low > 1:
            middle = (low + high) // 2
            if cast_or_none(trimmed.slice(low, middle - low), TEXT_KINDS[kind]) is None:
                high = middle
            else:
                low = middle
        self.first_bad = (start + low, f'"{shown(values[low].as_py())}" is not {expected}')

    def problem(self) -> Unprocessable | None:
        if self.viable:
            return super().problem()
        missing, bad = self.first_blank, self.first_bad
        if missing is not None and (bad is None or missing <= bad[0]):
            return cell_error(self.name, missing, "value is missing")
        if bad is None:  # not expected: some cast failed, yet each cell parses alone
            return Unprocessable(
                f'column "{self.name}" holds values that are not numbers',
                field="file",
                column=self.name,
            )
        return cell_error(self.name, *bad)


@dataclass
class UnusableColumn(FeatureColumn):
    """A column of a type that is not a number (dates, binary): refused at its first
    missing cell, else at row 1, quoting that cell and the type."""

    first_cell: str | None = None

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        values = decoded(values)
        self._note_missing(values, start)
        if self.first_cell is None and len(values):
            self.first_cell = f"{shown(str(values[0].as_py()))} ({values.type})"

    def problem(self) -> Unprocessable | None:
        return super().problem() or cell_error(self.name, 0, f"{self.first_cell} is not a number")


# Which reader a feature column gets, by the Arrow type it arrives as (dictionaries by
# their values' type): the first whose test passes.
FEATURE_READERS: tuple[tuple[Callable[[pa.DataType], bool], Callable[..., FeatureColumn]], ...] = (
    (
        lambda t: numeric_kind(t) is not None,
        lambda name, t, strict: NumericColumn(name, kind=numeric_kind(t), strict=strict),
    ),
    (is_text, lambda name, t, strict: TextColumn(name)),
    (lambda t: True, lambda name, t, strict: UnusableColumn(name)),
)


def feature_reader(name: str, arrow_type: pa.DataType, *, strict: bool = False) -> FeatureColumn:
    """The reader of feature column ``name`` arriving as ``arrow_type``."""
    plain = value_type(arrow_type)
    for fits, reader in FEATURE_READERS:
        if fits(plain):
            return reader(name, plain, strict)
    raise AssertionError("the last reader takes any type")


# Labels ----------------------------------------------------------------------------------------

INT64_MAX = 2**63 - 1  # labels are stored and served as int64


class LabelColumn:
    """The label column as it streams by: each row's code (4 bytes) into the distinct raw
    labels seen, typed and made classes once the file is read (``classes``)."""

    def __init__(self, name: str, arrow_type: pa.DataType, *, from_text: bool):
        self.name = name
        self.type = value_type(arrow_type)
        self.from_text = from_text  # CSV: the type is read from the text
        self.usable = numeric_kind(self.type) is not None or is_text(self.type)
        self.first_missing: int | None = None
        self.code_of: dict[Any, int] = {}  # a raw label -> its code
        self.chunks: list[np.ndarray] = []  # (b,) int32 codes of each batch's rows

    def take(self, values: pa.Array, start: int) -> None:
        if values.null_count and self.first_missing is None:
            self.first_missing = start + first_index(pc.is_null(values))
        if self.first_missing is not None or not self.usable:
            return  # refused at the end: the codes are not needed
        if not pa.types.is_dictionary(values.type):
            values = pc.dictionary_encode(values)
        # The batch's own dictionary is small: map it onto ours.
        ours = [
            self.code_of.setdefault(v, len(self.code_of)) for v in values.dictionary.to_pylist()
        ]
        indices = values.indices.cast(pa.int32())
        self.chunks.append(np.asarray(ours, dtype=np.int32)[indices.to_numpy(zero_copy_only=False)])

    def classes(self, *, max_classes: int) -> tuple[list[Any], np.ndarray, str]:
        """(sorted distinct labels as JSON values, (m,) int32 class of each row, the type)."""
        if self.first_missing is not None:
            raise cell_error(self.name, self.first_missing, "label is missing")
        if not self.usable:
            raise Unprocessable(
                f'label column "{self.name}" has the type {self.type}; '
                "labels must be numbers, strings or booleans",
                field="label",
                column=self.name,
            )
        codes = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int32)
        # A Parquet dictionary may hold values no row uses (an unused category): not labels.
        used = np.flatnonzero(np.bincount(codes, minlength=len(self.code_of)))
        renumbered = np.zeros(len(self.code_of), dtype=np.int32)
        renumbered[used] = np.arange(len(used), dtype=np.int32)
        raw = list(self.code_of)
        distinct = pa.array([raw[i] for i in used], type=self.type)
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
            return distinct.cast(pa.string()), "string", None
        if kind is None:
            trimmed = pc.utf8_trim_whitespace(distinct)
            blank = pc.equal(trimmed, "").to_numpy(zero_copy_only=False)
            if blank.any():  # spaces alone: missing, as features
                return distinct, "", (blank, lambda i: "label is missing")
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
            return floats, kind, (~finite, lambda i: f"label {floats[i].as_py()} is not finite")
        return pc.add(floats, 0.0), kind, None  # -0.0 and 0.0 are the same class


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
