"""A stored dataset's columns as the engine reads them, and what trains on them.

The stored matrix has a column per name in ``Dataset.features``: numbers (NaN where
missing) or a categorical's level codes into its schema entry's ``levels``
(service.datasets.storage). Columns the upload left out of training (unique per
row, too many levels) are stored but carry the role "ignored" and a warning.
Datasets uploaded before categorical columns have schema entries with no kind:
numeric, every one.
"""

from dataclasses import dataclass, replace
from typing import Any

from engine import CATEGORICAL, NUMERIC, InputColumn, PreprocessingSpec
from service.core.errors import field_problem
from service.core.tables import Dataset

IGNORED = "ignored"


@dataclass(frozen=True)
class TrainingColumns:
    """The engine's view of a dataset: every stored column, and those left out."""

    columns: list[InputColumn]  # one per Dataset.features name, in order
    left_out: list[str]  # stored columns the upload left out of training
    warnings: list[str]  # the dataset's warnings about its columns


def _entries(dataset: Dataset) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in dataset.schema}


def training_columns(dataset: Dataset) -> TrainingColumns:
    """The InputColumns of the stored matrix, from the dataset's schema."""
    entries = _entries(dataset)
    columns, left_out = [], []
    for name in dataset.features:
        entry = entries.get(name, {})
        if entry.get("kind") == CATEGORICAL:
            columns.append(InputColumn(name, CATEGORICAL, tuple(entry.get("levels") or ())))
        else:
            columns.append(InputColumn(name, NUMERIC))
        if entry.get("role") == IGNORED:
            left_out.append(name)
    return TrainingColumns(columns, left_out, dataset_warnings(dataset))


def dataset_warnings(dataset: Dataset) -> list[str]:
    """'column "x": why' for every column the upload warned about, in file order."""
    return [
        f'column "{entry["name"]}": {entry["warning"]}'
        for entry in dataset.schema
        if entry.get("warning")
    ]


def with_left_out(spec: PreprocessingSpec, left_out: list[str]) -> PreprocessingSpec:
    """``spec`` that also ignores the columns the upload left out (unless it makes them
    categorical: a user who names a column wants it)."""
    extra = [name for name in left_out if name not in spec.ignore and name not in spec.categorical]
    if not extra:
        return spec
    return replace(spec, ignore=(*spec.ignore, *extra))


def check_preprocessing(dataset: Dataset, spec: PreprocessingSpec, field: str) -> None:
    """422 naming ``field`` when the spec's column lists name what the dataset lacks:
    ``ignore`` any stored column, ``categorical`` a numeric one."""
    kinds = {column.name: column.kind for column in training_columns(dataset).columns}
    for name in spec.ignore:
        if name not in kinds:
            raise field_problem(
                f"{field}.ignore", f'"{name}" is not a feature column of dataset {dataset.id!r}'
            )
    for name in spec.categorical:
        if name not in kinds:
            raise field_problem(
                f"{field}.categorical",
                f'"{name}" is not a feature column of dataset {dataset.id!r}',
            )
    if len(set(spec.ignore)) == len(kinds):
        raise field_problem(f"{field}.ignore", "leaves no column to train on")
