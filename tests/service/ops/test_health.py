"""Probes: /healthz says the process is up; /readyz checks the database and migrations."""

from sqlalchemy import create_engine, text

from service.ops.probes import head_revision


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_migration_at_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["migration"] == head_revision()


def test_readyz_is_503_problem_when_the_schema_is_behind(client, database_url):
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "revision old" in response.json()["detail"]
    finally:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )
        engine.dispose()


def test_unknown_route_is_a_404_problem(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
