"""Datasets as the API shows them (uploads arrive as files, so there is no DatasetCreate)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

# The canonical example: scikit-learn's breast cancer data with its "target" column.
_CANCER_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
CANCER_FEATURES = [
    *(f"mean {measure}" for measure in _CANCER_MEASURES),
    *(f"{measure} error" for measure in _CANCER_MEASURES),
    *(f"worst {measure}" for measure in _CANCER_MEASURES),
]


def _column(name: str, role: str, type: str, kind: str, **stats: object) -> dict[str, object]:
    """A schema entry of the examples: the fields not given are null."""
    entry = {"name": name, "role": role, "type": type, "kind": kind, "missing": 0}
    entry |= dict.fromkeys(("distinct", "levels", "top_levels", "min", "max", "mean", "warning"))
    return entry | stats


# The canonical example: palmerpenguins' penguins (some of its columns), a table of words,
# numbers and empty cells, uploaded as a CSV with a row number in its first column.
PENGUIN_COLUMNS = [
    _column(
        "rowid",
        "ignored",
        "integer",
        "numeric",
        distinct=344,
        min=1.0,
        max=344.0,
        mean=172.5,
        warning="a row number (each value is the previous one + 1): left out of training",
    ),
    _column(
        "island",
        "feature",
        "string",
        "categorical",
        distinct=3,
        levels=["Torgersen", "Biscoe", "Dream"],
        top_levels=[
            {"level": "Biscoe", "count": 168},
            {"level": "Dream", "count": 124},
            {"level": "Torgersen", "count": 52},
        ],
    ),
    _column(
        "bill_length_mm",
        "feature",
        "number",
        "numeric",
        missing=2,
        distinct=164,
        min=32.1,
        max=59.6,
        mean=43.9219298245614,
    ),
    _column(
        "body_mass_g",
        "feature",
        "number",
        "numeric",
        missing=2,
        distinct=94,
        min=2700.0,
        max=6300.0,
        mean=4201.754385964912,
    ),
    _column(
        "sex",
        "feature",
        "string",
        "categorical",
        missing=11,
        distinct=2,
        levels=["male", "female"],
        top_levels=[{"level": "male", "count": 168}, {"level": "female", "count": 165}],
    ),
    _column(
        "species",
        "label",
        "string",
        "categorical",
        distinct=3,
        levels=["Adelie", "Chinstrap", "Gentoo"],
        top_levels=[
            {"level": "Adelie", "count": 152},
            {"level": "Gentoo", "count": 124},
            {"level": "Chinstrap", "count": 68},
        ],
    ),
]
DATASET_EXAMPLE = {
    "id": "3f9c2a7be41d4c0f9a55e7d1c2b8a610",
    "name": "penguins",
    "rows": 344,
    "features": ["rowid", "island", "bill_length_mm", "body_mass_g", "sex"],
    "label": "species",
    "label_type": "string",
    "classes": ["Adelie", "Chinstrap", "Gentoo"],
    "class_counts": {"Adelie": 152, "Chinstrap": 68, "Gentoo": 124},
    "schema": PENGUIN_COLUMNS,
    "warnings": [
        'column "rowid": a row number (each value is the previous one + 1): left out of training'
    ],
    "sha256": "9a3e1c5b7f0d2e4a6c8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a1c3b5d7f9e0a",
    "format": "csv",
    "size_bytes": 12_486,
    "created_at": "2026-11-27T10:15:30.123456Z",
}

ColumnType = Literal["integer", "number", "string", "boolean"]
Label = bool | int | float | str


# What an entry stored before columns were typed did not count.
UNCOUNTED = ("distinct", "levels", "top_levels", "min", "max", "mean", "warning")


class LevelCount(BaseModel):
    """A level of a categorical column and the rows that hold it."""

    level: str
    count: int


class ColumnPublic(BaseModel):
    """One column of the uploaded file: how it was read and what it holds."""

    @model_validator(mode="before")
    @classmethod
    def _typed(cls, entry: Any) -> Any:
        """An entry stored before columns were typed (and not rewritten by migration 0005:
        an offline `migrate --sql` cannot read rows) read as 0005 would rewrite it."""
        if not isinstance(entry, dict) or "kind" in entry:
            return entry
        entry = {**dict.fromkeys(UNCOUNTED), **entry}
        numeric = entry.get("type") in ("integer", "number")
        if entry.get("role") != "label" and entry.get("type") == "boolean":
            return {**entry, "kind": "categorical", "missing": 0, "levels": ["false", "true"]}
        kind = "numeric" if numeric or entry.get("role") != "label" else "categorical"
        return {**entry, "kind": kind, "missing": 0}

    name: str
    role: Literal["feature", "label", "ignored"] = Field(
        description="ignored: not used in training, named in ignore= (not read: its counts "
        "are null) or left out by the reader (its warning says why)"
    )
    type: ColumnType = Field(description="How its cells were read")
    kind: Literal["numeric", "categorical"] = Field(
        description="numeric: numbers; categorical: levels (strings, booleans, or numbers "
        "named in categorical=). The label's kind is its own, as read"
    )
    missing: int | None = Field(description="Missing cells: empty, NA, NaN, null...")
    distinct: int | None = Field(
        description="Distinct values (levels); null when more than BACKPROP_MAX_LEVELS "
        "(default 10,000), which are not counted"
    )
    levels: list[str] | None = Field(
        description="Categorical: every level, in code order (code i is levels[i]); numeric: null"
    )
    top_levels: list[LevelCount] | None = Field(
        description="Categorical: up to 10 levels, most frequent first"
    )
    min: float | None = Field(description="Numeric: the smallest value (null: none present)")
    max: float | None = Field(description="Numeric: the largest value")
    mean: float | None = Field(description="Numeric: the mean of the values present")
    warning: str | None = Field(description="Why the reader left the column out of training")


class DatasetPublic(BaseModel):
    """An uploaded dataset: its columns, size, classes and where its bytes came from."""

    model_config = ConfigDict(
        from_attributes=True,
        populate_by_name=True,
        json_schema_extra={"examples": [DATASET_EXAMPLE]},
    )

    id: str
    name: str
    rows: int = Field(description="Data rows (the header is not counted)")
    features: list[str] = Field(description="Feature column names, in the file's order")
    label: str = Field(description="The label column's name")
    label_type: ColumnType = Field(description="How the labels were read")
    classes: list[Label] = Field(description="The distinct labels, sorted")
    class_counts: dict[str, int] = Field(description="Rows per class, keyed by str(label)")
    # "schema" would shadow a BaseModel attribute; the field is named columns in Python.
    columns: list[ColumnPublic] = Field(
        validation_alias="schema",
        serialization_alias="schema",
        description="Every column of the file, in order: its role, type, kind, missing "
        "cells, distinct values and levels or range",
    )
    sha256: str = Field(description="SHA-256 of the uploaded bytes")
    format: Literal["csv", "parquet"]
    size_bytes: int = Field(description="Size of the uploaded file")
    created_at: datetime

    @computed_field(description="What the reader left out of training, and why, by column")
    @property
    def warnings(self) -> list[str]:
        # Worded as a job's warnings about its data (service.datasets.input_columns).
        return [f'column "{c.name}": {c.warning}' for c in self.columns if c.warning is not None]


class DatasetsPublic(BaseModel):
    """A page of datasets, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"data": [DATASET_EXAMPLE], "next_cursor": "WyIyMDI2LTExLTI3VDEw..."}]
        }
    )

    data: list[DatasetPublic]
    next_cursor: str | None = Field(description="null on the last page")


class DatasetRow(BaseModel):
    row: int = Field(description="0-based index of the row among the dataset's rows")
    values: dict[str, float | str | None] = Field(
        description="Each stored feature column's cell: a number, a categorical's level, "
        "or null where the file had a missing cell"
    )
    label: Label


class DatasetRowsPublic(BaseModel):
    """A few of a dataset's rows, as the file had them (a model's prediction input)."""

    dataset_id: str
    offset: int
    rows: list[DatasetRow]
    total_rows: int = Field(description="The dataset's row count")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dataset_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
                    "offset": 0,
                    "rows": [
                        {
                            "row": 0,
                            "values": {"island": "Torgersen", "bill_length_mm": 39.1},
                            "label": "Adelie",
                        }
                    ],
                    "total_rows": 344,
                }
            ]
        }
    )
