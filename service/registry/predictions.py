"""Predictions through an alias: resolved from the database on every request, then answered
by service.models.predictions exactly as POST /v1/models/{id}/predictions answers.

The resolution is the request's one database read: it also proves the model is still
stored (a version's row exists only while its model's does: ON DELETE CASCADE), so the
cached model needs no second check. A move made through any API process is therefore
seen by the next request of every process: there is no alias cache to go stale. As by
model id, a few rows by a cached model are computed on the event loop, the read awaited
there (service.core.point_reads); anything else runs in the threadpool.
"""

from collections.abc import Iterator
from typing import NamedTuple

from fastapi.concurrency import run_in_threadpool

from service.core.database import Database
from service.models import predictions
from service.models.predictions import INLINE_PREDICTION_ROWS
from service.models.schemas import PredictionRequest, PredictionResponse
from service.models.service import ModelCache, cached_model
from service.registry.service import resolve_alias_async


class Resolved(NamedTuple):
    model_id: str
    version: int


async def resolve(*, database: Database, name: str, alias: str) -> Resolved:
    """The model and version ``alias`` of ``name`` points at now (404 problem otherwise)."""
    return Resolved(*await resolve_alias_async(reads=database.point_reads, name=name, alias=alias))


async def predict(
    *,
    database: Database,
    cache: ModelCache,
    resolved: Resolved,
    request: PredictionRequest,
    max_rows: int,
) -> PredictionResponse:
    """Predictions of rows or records by the resolved model (loaded on a cache miss)."""
    entry = cache.get(resolved.model_id)
    rows = len(request.rows or ()) + len(request.records or ())
    if entry is not None and rows <= INLINE_PREDICTION_ROWS:
        return predictions.predict_with(entry, request=request, max_rows=max_rows)

    def in_thread() -> PredictionResponse:
        loaded = entry or cached_model(database=database, cache=cache, model_id=resolved.model_id)
        return predictions.predict_with(loaded, request=request, max_rows=max_rows)

    return await run_in_threadpool(in_thread)


async def predict_dataset(
    *, database: Database, cache: ModelCache, resolved: Resolved, dataset_id: str
) -> Iterator[str]:
    """CSV chunks predicting a stored dataset by the resolved model."""
    return await run_in_threadpool(
        predictions.predict_dataset,
        database=database,
        cache=cache,
        model_id=resolved.model_id,
        dataset_id=dataset_id,
    )
