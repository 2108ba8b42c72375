"""How each feature column of an upload is read, batch by batch: the one table of column kinds.

service.datasets.reader streams an upload's record batches through one reader per column.
A feature reader writes the column's (b,) float64 values into the matrix rows, gathers
what the column holds (service.datasets.reader_summary) and remembers its first problem.
Which reader a column gets is decided in one place, FEATURE_READERS, from the Arrow type
it arrives as and whether the upload named it in ``categorical=``.

The rules (a column's type is decided by the whole column, as one cast):

- **Numeric**: integers, floats and decimals as Arrow typed them, cast to float64 (large
  integers round). A missing cell (null or NaN) is NaN; an infinite one is refused,
  naming the column and row (missing is not broken).
- **Text** (CSV cells Arrow could not type, Parquet strings) is trimmed of Unicode spaces
  (blank cells and NULL_TOKENS are missing) and read as integers if every present cell is
  one, else as numbers, else as booleans, else as strings. Integers and numbers are
  numeric; booleans and strings are categorical.
- **Categorical**: booleans (levels "false", "true", codes 0 and 1), strings (levels in
  the order first seen), Parquet dictionaries of text, and numeric columns named in
  ``categorical=`` (levels the numbers' names, ``engine.columns.level_key``, sorted
  numerically: the file is read again if the first reading met them in another order).
  A cell holds its level's code, NaN where missing. Level names follow
  ``engine.columns.level_key``, so records at prediction time find their codes.
- Anything else (dates, binary) is refused: such a column can only be left out.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.columns import level_key
from service.core.errors import Unprocessable
from service.datasets.reader_errors import cell_error, shown
from service.datasets.reader_summary import (
    BOOLEAN_LEVELS,
    CATEGORICAL,
    NUMERIC,
    LevelTable,
    NumberSummary,
    column_problem,
)
from service.datasets.reader_types import (
    TEXT_KINDS,
    Restart,
    Retype,
    as_floats,
    cast_or_none,
    cell_indices,
    decoded,
    encoded,
    is_text,
    null_tokens,
    numeric_kind,
    value_type,
)

NUMBER_TYPES = ("integer", "number")


def text_keys(words: pa.Array) -> pa.Array:
    """Text cells' levels (d,): trimmed as level_key trims (Arrow's Unicode spaces are
    Python's), null (missing) when blank or a null token."""
    trimmed = pc.utf8_trim_whitespace(words)
    blank = pc.fill_null(pc.or_(pc.equal(trimmed, ""), pc.is_in(trimmed, null_tokens())), True)
    keys = pc.if_else(blank, pa.scalar(None, trimmed.type), trimmed)
    return keys if keys.type == pa.string() else keys.cast(pa.string())


def numbers_out_of_order(type: str, table: LevelTable | None) -> list[str] | None:
    """The levels of numbers sorted numerically, if they were met in another order (a
    column named categorical is coded in their order: the file is read again)."""
    if type not in NUMBER_TYPES or table is None or table.overflowed:
        return None
    in_order = sorted(table.levels, key=float)
    return None if table.levels == in_order else in_order


@dataclass
class FeatureColumn:
    """A feature column's reader: ``take`` writes a batch's values; once every batch has
    been taken, ``entry`` describes the column and ``problem`` says what is wrong with it."""

    name: str
    max_levels: int
    type: str = "number"  # integer, number, boolean or string: the schema's type
    first_non_finite: tuple[int, str] | None = None  # (row, the cell as the message shows it)

    @property
    def kind(self) -> str:
        return NUMERIC if self.type in NUMBER_TYPES else CATEGORICAL

    @property
    def settled(self) -> bool:
        """Whether the column's refusal is known for good: later rows cannot change it."""
        return False

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        raise NotImplementedError

    def stats(self, rows: int) -> dict[str, Any]:
        raise NotImplementedError

    def entry(self, rows: int) -> dict[str, Any]:
        """The column's schema entry (role: feature, or ignored when it carries a warning)."""
        stats = self.stats(rows)
        role = "feature" if stats["warning"] is None else "ignored"
        return {"name": self.name, "role": role, "type": self.type, **stats}

    def problem(self, rows: int) -> Unprocessable | None:
        if self.first_non_finite is not None:
            row, cell = self.first_non_finite
            return cell_error(self.name, row, f"value {cell} is not finite")
        return column_problem(self.name, self.stats(rows), rows)

    def sorted_levels(self) -> list[str] | None:
        """Levels to read the file again with, when they were not met in their order."""
        return None


@dataclass
class NumericColumn(FeatureColumn):
    """Integers, floats or decimals as Arrow typed them. ``strict`` (CSV): a non-finite cell
    is for the text rules, which quote it as written (Retype)."""

    strict: bool = False
    summary: NumberSummary | None = None

    def __post_init__(self) -> None:
        self.summary = NumberSummary(max_distinct=self.max_levels, integer=self.type == "integer")

    @property
    def settled(self) -> bool:
        return self.first_non_finite is not None

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        values = decoded(values)
        floats = as_floats(values)
        out[:] = floats
        bad = self.summary.add(floats, values)
        if bad is not None and self.first_non_finite is None:
            if self.strict:
                raise Retype(self.name)
            self.first_non_finite = (start + bad, f"{values[bad].as_py()}")

    def stats(self, rows: int) -> dict[str, Any]:
        return self.summary.entry(rows)


@dataclass
class CategoricalColumn(FeatureColumn):
    """Levels coded as they come: Parquet dictionaries of text, booleans, and numbers the
    upload named categorical. ``preset``: the level order to code in (booleans', or the
    sorted levels of an earlier reading)."""

    preset: list[str] | None = None
    table: LevelTable | None = None

    def __post_init__(self) -> None:
        preset = BOOLEAN_LEVELS if self.type == "boolean" else self.preset
        self.table = LevelTable(max_levels=self.max_levels, preset=preset)

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        values = encoded(values)
        if self.type == "string":
            keys = text_keys(values.dictionary)
        else:
            keys = pa.array([level_key(v) for v in values.dictionary.to_pylist()], pa.string())
        out[:] = self.table.take(keys, cell_indices(values))

    def stats(self, rows: int) -> dict[str, Any]:
        return self.table.entry(rows)

    def sorted_levels(self) -> list[str] | None:
        return numbers_out_of_order(self.type, self.table)


@dataclass
class TextColumn(FeatureColumn):
    """Text whose type the whole column decides (TEXT_KINDS order, else strings): integers
    or numbers (numeric; categorical if the upload said so), booleans or strings. Each
    batch is decided from its distinct cells. ``viable`` holds the kinds every batch so far
    fits; when the kind the rows were written in is ruled out, the stream restarts (keeping
    ``viable``: that reading writes in the right kind from the first row)."""

    viable: list[str] = field(default_factory=lambda: [*TEXT_KINDS, "string"])
    categorical: bool = False  # named in categorical=: numbers are levels too
    preset: list[str] | None = None
    summary: NumberSummary | None = None
    table: LevelTable | None = None

    def __post_init__(self) -> None:
        self._start_as(self.viable[0])

    def _start_as(self, kind: str) -> None:
        self.type = kind
        self.summary, self.table = None, None
        if self.kind == NUMERIC and not self.categorical:
            self.summary = NumberSummary(max_distinct=self.max_levels, integer=kind == "integer")
        else:
            preset = BOOLEAN_LEVELS if kind == "boolean" else self.preset
            self.table = LevelTable(max_levels=self.max_levels, preset=preset)

    @property
    def kind(self) -> str:
        return CATEGORICAL if self.categorical else super().kind

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        values = encoded(values)
        cleaned = text_keys(values.dictionary)  # (d,) null: missing
        cast = {kind: cast_or_none(cleaned, TEXT_KINDS[kind]) for kind in self.viable[:-1]}
        self.viable = [kind for kind in self.viable if kind == "string" or cast[kind] is not None]
        if self.viable[0] != self.type:
            if start > 0:
                raise Restart  # rows so far were written as another kind: write them again
            self._start_as(self.viable[0])
        indices = cell_indices(values)
        if self.summary is not None:
            numbers = np.append(as_floats(cast[self.type]), np.nan)  # (d + 1,)
            floats = numbers[indices]  # (b,)
            out[:] = floats
            bad = self.summary.add(floats, cast[self.type])
            if bad is not None and self.first_non_finite is None:  # quoted as written
                cell = values.dictionary[int(indices[bad])].as_py()
                self.first_non_finite = (start + bad, f'"{shown(cell)}"')
            return
        if self.type == "string":
            keys = cleaned
        else:
            keys = pa.array([level_key(v) for v in cast[self.type].to_pylist()], pa.string())
        out[:] = self.table.take(keys, indices)

    def stats(self, rows: int) -> dict[str, Any]:
        return self.summary.entry(rows) if self.summary is not None else self.table.entry(rows)

    def sorted_levels(self) -> list[str] | None:
        return numbers_out_of_order(self.type, self.table)


@dataclass
class UnusableColumn(FeatureColumn):
    """A column of a type that is neither numbers, text nor booleans (dates, binary): refused."""

    arrow_type: str = ""
    type: str = "string"

    def take(self, values: pa.Array, start: int, out: np.ndarray) -> None:
        out[:] = np.nan

    def stats(self, rows: int) -> dict[str, Any]:
        return {"kind": CATEGORICAL, "missing": 0, "warning": None}

    def problem(self, rows: int) -> Unprocessable | None:
        return Unprocessable(
            f'column "{self.name}" has the type {self.arrow_type}; feature columns must hold '
            f"numbers, text or booleans: leave it out with ignore={self.name}",
            field="file",
            column=self.name,
        )


Reader = Callable[..., FeatureColumn]
# Which reader a feature column gets, by the Arrow type it arrives as (dictionaries of text
# are categorical; other dictionaries are read as their values) and whether the upload named
# it categorical: the first row whose test passes.
FEATURE_READERS: tuple[tuple[Callable[[pa.DataType, bool], bool], Reader], ...] = (
    (
        lambda t, categorical: pa.types.is_dictionary(t) and is_text(t.value_type),
        lambda name, t, **options: CategoricalColumn(name, options["max_levels"], "string"),
    ),
    (
        lambda t, categorical: (
            numeric_kind(value_type(t)) == "boolean"
            or (categorical and numeric_kind(value_type(t)) is not None)
        ),
        lambda name, t, **options: CategoricalColumn(
            name, options["max_levels"], numeric_kind(value_type(t)), preset=options["preset"]
        ),
    ),
    (
        lambda t, categorical: numeric_kind(value_type(t)) is not None,
        lambda name, t, **options: NumericColumn(
            name, options["max_levels"], numeric_kind(value_type(t)), strict=options["strict"]
        ),
    ),
    (
        lambda t, categorical: is_text(value_type(t)),
        lambda name, t, **options: TextColumn(
            name,
            options["max_levels"],
            categorical=options["categorical"],
            preset=options["preset"],
            **({"viable": list(options["viable"])} if options["viable"] else {}),
        ),
    ),
    (
        lambda t, categorical: True,
        lambda name, t, **options: UnusableColumn(name, options["max_levels"], arrow_type=str(t)),
    ),
)


def feature_reader(
    name: str,
    arrow_type: pa.DataType,
    *,
    max_levels: int,
    strict: bool = False,
    categorical: bool = False,
    viable: list[str] | None = None,
    preset: list[str] | None = None,
) -> FeatureColumn:
    """The reader of feature column ``name`` arriving as ``arrow_type``. ``viable``: the
    kinds an earlier reading left a text column; ``preset``: its level order."""
    if strict:  # CSV: text arrives as a dictionary (Arrow decodes it faster), for the text rules
        arrow_type = value_type(arrow_type)
    options = {
        "max_levels": max_levels,
        "strict": strict,
        "categorical": categorical,
        "viable": viable,
        "preset": preset,
    }
    for fits, reader in FEATURE_READERS:
        if fits(arrow_type, categorical):
            return reader(name, arrow_type, **options)
    raise AssertionError("the last reader takes any type")
