"""The HTTP service around the engine, packaged by feature.

Each resource is a room with its router, schemas and service functions (datasets, jobs,
models, sweeps); the queue and its worker process have their own (queue); ops and pages
serve operators and browsers; core holds what every room stands on. Dependencies point
down: cli and app, ops and pages, sweeps and models, jobs, queue, datasets, core
(import-linter contracts in pyproject.toml).
"""
