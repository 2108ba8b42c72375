"""Predictions through an alias: resolved from the database on every request, then answered
by service.models.predictions exactly as POST /v1/models/{id}/predictions answers.

The resolution is the request's one database round trip: it also proves the model is still
stored (a version's row exists only while its model's does: ON DELETE CASCADE), so the
cached model needs no second check. A move made through any API process is therefore
seen by the next request of every process: there is no alias cache to go stale.
"""

from collections.abc import Iterator
from typing import NamedTuple

from service.core.database import Database
from service.models import predictions
from service.models.schemas import PredictionRequest, PredictionResponse
from service.models.service import ModelCache, cached_model
from service.registry.service import resolve_alias


class Resolved(NamedTuple):
    model_id: str
    version: int


def resolve(*, database: Database, name: str, alias: str) -> Resolved:
    """The model and version ``alias`` of ``name`` points at now (404 problem otherwise)."""
    with database.engine.connect() as connection:
        return Resolved(*resolve_alias(connection=connection, name=name, alias=alias))


def predict(
    *,
    database: Database,
    cache: ModelCache,
    name: str,
    alias: str,
    request: PredictionRequest,
    max_rows: int,
) -> tuple[PredictionResponse, Resolved]:
    """Predictions of rows or records by the model the alias points at, and which one it was."""
    resolved = resolve(database=database, name=name, alias=alias)
    entry = cache.get(resolved.model_id)
    if entry is None:  # loaded from the database (and cached) on a miss
        entry = cached_model(database=database, cache=cache, model_id=resolved.model_id)
    return predictions.predict_with(entry, request=request, max_rows=max_rows), resolved


def predict_dataset(
    *, database: Database, cache: ModelCache, name: str, alias: str, dataset_id: str
) -> tuple[Iterator[str], Resolved]:
    """CSV chunks predicting a stored dataset by the model the alias points at."""
    resolved = resolve(database=database, name=name, alias=alias)
    chunks = predictions.predict_dataset(
        database=database, cache=cache, model_id=resolved.model_id, dataset_id=dataset_id
    )
    return chunks, resolved
