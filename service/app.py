"""The FastAPI application: routers, error handlers, the database, the docs."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from service.core.api_keys import KeyDirectory, database_keys
from service.core.auth import ApiKeyMiddleware, KeyRing, check_binding
from service.core.database import Database
from service.core.errors import install_error_handlers
from service.core.limits import install_limits
from service.core.media_types import install_json_bodies
from service.core.metrics import RequestDurationMiddleware
from service.core.public import PUBLIC_PATHS
from service.core.roles import RoutePolicy, api_operations
from service.core.settings import Settings, get_settings
from service.datasets import router as datasets
from service.jobs import router as jobs
from service.keys import audit_router
from service.keys import router as key_management
from service.models import export as model_export
from service.models import job_deletion, scoring_router
from service.models import router as models
from service.openapi import install_openapi
from service.ops import health, metrics
from service.pages import dashboard, docs
from service.pages.dashboard import STATIC_DIR
from service.project import router as project
from service.registry import router as registry
from service.sweeps import router as sweeps

DESCRIPTION = """
Train and serve the seed note's **logistic regression** and **two-layer neural network**,
trained by backpropagation in NumPy.

1. `POST /v1/datasets`: upload a CSV or Parquet file.
2. `POST /v1/jobs`: train a model on it (202 at once; a worker trains it).
3. `GET /v1/jobs/{id}`, `/history`, `/events`: follow the training.
4. `POST /v1/models/{id}/predictions`: predict with the fitted model.

Every error is `application/problem+json` (RFC 9457).

When the service has API keys (`BACKPROP_API_KEYS`), every operation but the probes
needs one: `Authorization: Bearer <key>` or `X-API-Key: <key>` ("Authorize" above).
"""


def operation_id(route: APIRoute) -> str:
    """OpenAPI operation ids read `tag-name`, e.g. `jobs-create_job`."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def settle_startup_garbage() -> None:
    """Move what start-up allocated (modules, routes, schemas: ~170,000 objects) out of
    the garbage collector's sight.

    Those objects live as long as the process, yet every full collection walked them all:
    pauses of 70-90 ms, every few hundred requests, that showed as the p99 of cheap reads.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings``; refuses (AccessSettingsError) to serve a non-loopback
    BACKPROP_HOST without API keys, or keys that cannot be sent in a header."""
    settings = settings or get_settings()
    keys = KeyRing.from_settings(settings)
    database = Database(settings.database_url)
    keys_in_database = database_keys(database)
    check_binding(settings.host, keys, keys_in_database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle_startup_garbage()
        yield
        await database.point_reads.close_async()
        database.dispose()

    app = FastAPI(
        title="backprop-service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # /docs and /redoc are served by service.pages.docs with local assets.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    install_error_handlers(app)
    install_openapi(app, settings)
    for module in (
        health,
        datasets,
        jobs,
        registry,
        models,
        model_export,
        job_deletion,
        scoring_router,
        sweeps,
        project,
        key_management,
        audit_router,
        docs,
        dashboard,
        metrics,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_limits(app, settings)
    # Outside the body limit: a CSV sent to a JSON route is 415 however large it is.
    install_json_bodies(app)
    # Added after the limits, so outside them: a request without a valid key is answered
    # before any other middleware or route reads its body. Always there: keys made in the
    # database close an open API within a second, without a restart.
    app.add_middleware(
        ApiKeyMiddleware,
        keys=keys,
        directory=KeyDirectory(database.point_reads, known=keys_in_database),
        policy=RoutePolicy(api_operations(app.router.routes), public=PUBLIC_PATHS),
    )
    # Outermost of all: it times the requests the key and limit middlewares refuse too.
    app.add_middleware(RequestDurationMiddleware, routes=app.router.routes)
    return app
