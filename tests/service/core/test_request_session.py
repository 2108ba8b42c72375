"""A database connection lost after a route's answer does not cost the client its connection.

A request's session closes after the response is sent (a request-scoped dependency), and the
close rolls back on the database. If the database went away in between, that rollback fails;
raised there, uvicorn dropped the keep-alive connection and the client's next request on it
failed unanswered (PostgreSQL restart fault test, CI stop 18). Real uvicorn on 127.0.0.1,
real PostgreSQL: the route cuts its own session's backend off, as a server restart would.
"""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from service.core.deps import SessionDep
from tests.service.live import free_port


@pytest.fixture
def cutting_app(app: FastAPI, database_url: str) -> FastAPI:
    """The app plus a route that reads, then has PostgreSQL end that session's connection."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a connection cut from the server's side is PostgreSQL's (SQLite has none)")
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")

    @app.get("/cut-after-reading")
    def cut_after_reading(session: SessionDep) -> dict[str, int]:
        backend = session.scalar(text("SELECT pg_backend_pid()"))
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        return {"backend": backend}

    yield app
    admin.dispose()


@pytest.fixture
def served(cutting_app: FastAPI) -> Iterator[str]:
    """``cutting_app`` under uvicorn in a thread; its base URL."""
    port = free_port()
    config = uvicorn.Config(cutting_app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as probe:
            for _ in range(200):
                try:
                    probe.get("/healthz")
                    break
                except httpx.TransportError:
                    threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_connection_lost_after_the_answer_keeps_the_client_connection(served, cutting_app):
    with httpx.Client(base_url=served, timeout=10) as client:
        cut = client.get("/cut-after-reading")
        assert cut.status_code == 200
        stream = cut.extensions["network_stream"]
        # The same keep-alive connection answers the next requests, the database included.
        for _ in range(3):
            after = client.get("/v1/jobs")
            assert after.status_code == 200
            assert after.extensions["network_stream"] is stream
    # The lost connection was given back to the pool (and discarded), not leaked. The last
    # request's session closes just after its answer: wait for that, a bounded moment.
    pool = cutting_app.state.database.engine.pool
    deadline = time.monotonic() + 5.0
    while pool.checkedout() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.checkedout() == 0
