"""Datasets as the API shows them (uploads arrive as files, so there is no DatasetCreate)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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

DATASET_EXAMPLE = {
    "id": "3f9c2a7be41d4c0f9a55e7d1c2b8a610",
    "name": "cancer",
    "rows": 569,
    "features": CANCER_FEATURES,
    "label": "target",
    "label_type": "integer",
    "classes": [0, 1],
    "class_counts": {"0": 212, "1": 357},
    "schema": [
        *({"name": name, "type": "number", "role": "feature"} for name in CANCER_FEATURES),
        {"name": "target", "type": "integer", "role": "label"},
    ],
    "sha256": "9a3e1c5b7f0d2e4a6c8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a1c3b5d7f9e0a",
    "format": "csv",
    "size_bytes": 121_946,
    "created_at": "2026-11-27T10:15:30.123456Z",
}

ColumnType = Literal["integer", "number", "string", "boolean"]
Label = bool | int | float | str


class ColumnPublic(BaseModel):
    """One column of the uploaded file."""

    name: str
    type: ColumnType = Field(description="How its cells were read")
    role: Literal["feature", "label"]


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
        description="Every column of the file, in order, with its type and role",
    )
    sha256: str = Field(description="SHA-256 of the uploaded bytes")
    format: Literal["csv", "parquet"]
    size_bytes: int = Field(description="Size of the uploaded file")
    created_at: datetime


class DatasetsPublic(BaseModel):
    """A page of datasets, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"data": [DATASET_EXAMPLE], "next_cursor": "WyIyMDI2LTExLTI3VDEw..."}]
        }
    )

    data: list[DatasetPublic]
    next_cursor: str | None = Field(description="null on the last page")
