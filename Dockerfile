# The service's image. `docker run -p 8000:8000 IMAGE` serves the API and workers on SQLite
# in /data; docker-compose.yml runs the same image as migrate, api and worker on PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY engine ./engine
COPY service ./service
COPY migrations ./migrations
# The onnx extra: GET /v1/models/{id}/export?format=onnx (without it, a 501).
RUN pip install ".[onnx]"

# service.core.migrate finds alembic.ini and migrations/ beside the service package, so the
# code runs from /app (ahead of the installed copy, which brings the dependencies and
# the `backprop` command).
ENV PYTHONPATH=/app \
    BACKPROP_HOST=0.0.0.0 \
    BACKPROP_DATABASE_URL=sqlite:////data/backprop.db

RUN useradd --create-home --uid 10001 backprop \
    && mkdir /data \
    && chown backprop /data
USER backprop
VOLUME /data

EXPOSE 8000
CMD ["backprop", "serve"]
