"""The HTTP service around the engine: FastAPI app, database, job queue, workers, CLI."""
