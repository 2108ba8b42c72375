"""API keys: with keys configured nothing but the probes and the docs answers without one.

The app is built with keys (``create_app(settings.model_copy(update=...))``) on the
real databases. Every route the app has is tried without a key, so a route added
later is covered too; the named resources are tried with real ids. Keys are also
checked against what the service logs, in process and from a live `backprop serve`.
"""

import logging
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.core.auth import AccessSettingsError, KeyRing, is_loopback, key_id
from service.core.roles import ROUTE_ROLES, Role
from service.core.settings import Settings
from service.core.tables import Job
from service.openapi import SECURITY_SCHEMES
from tests.service.factories import add_job, assert_problem
from tests.service.live import ROOT, free_port, service_env, wait_until_ready
from tests.service.test_openapi_examples import every_example, validation_errors

# Distinctive enough that finding one in a log cannot be a coincidence.
READ_WRITE_KEY = "rw-6f1d0c9b2e8a4f7d93c15e0b7a2d4c68"
SECOND_KEY = "rw2-0a9e3c7b5d1f4862b7c09e4d3a6f1b25"
READ_ONLY_KEY = "ro-c4b7e2a91f3d4e6c8b5a07d2e9f1c3b6"
WRONG_KEY = "nope-9d2c4e7a1b6f4c3e8a5d0b9f7e2c1a43"
ALL_KEYS = (READ_WRITE_KEY, SECOND_KEY, READ_ONLY_KEY, WRONG_KEY)
KEYS = {"api_keys": f"{READ_WRITE_KEY}, {SECOND_KEY}", "read_only_api_keys": READ_ONLY_KEY}

REALM = 'Bearer realm="backprop"'
ID = "0" * 32  # an id no row has
CSV = b"x0,x1,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"
JOB = {"dataset_id": ID, "model": {"type": "logistic_regression"}, "training": {"epochs": 5}}

# Open without a key: the probes, the docs and their assets, the dashboard page.
PUBLIC = [
    "/healthz",
    "/readyz",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/redoc/redoc.standalone.js",
    "/openapi.json",
    "/",
    "/static/dashboard/app.js",
    "/static/vendor/swagger-ui/swagger-ui.css",
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed_settings(settings) -> Settings:
    return settings.model_copy(update=KEYS)


@pytest.fixture
def keyed_app(keyed_settings):
    return create_app(keyed_settings)


@pytest.fixture
def keyed(keyed_app) -> Iterator[TestClient]:
    with TestClient(keyed_app) as client:
        yield client


@pytest.fixture
def ids(keyed, database) -> dict[str, str]:
    """A dataset (uploaded) and a queued job on it."""
    upload = keyed.post(
        "/v1/datasets", content=CSV, headers={"Content-Type": "text/csv", **bearer(SECOND_KEY)}
    )
    assert upload.status_code == 201, upload.text
    dataset = upload.json()["id"]
    return {"dataset": dataset, "job": add_job(database, dataset)}


def resource_requests(ids: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(method, path, httpx keyword arguments) of a request to each resource."""
    dataset, job = ids["dataset"], ids["job"]
    return [
        ("GET", "/v1/datasets", {}),
        ("POST", "/v1/datasets", {"content": CSV, "headers": {"Content-Type": "text/csv"}}),
        ("POST", "/v1/datasets", {"files": {"file": ("data.csv", CSV, "text/csv")}}),
        ("GET", f"/v1/datasets/{dataset}", {}),
        ("DELETE", f"/v1/datasets/{dataset}", {}),
        ("GET", "/v1/jobs", {}),
        ("POST", "/v1/jobs", {"json": {**JOB, "dataset_id": dataset}}),
        ("GET", f"/v1/jobs/{job}", {}),
        ("GET", f"/v1/jobs/{job}/history", {}),
        ("GET", f"/v1/jobs/{job}/events", {}),
        ("POST", f"/v1/jobs/{job}/cancel", {}),
        ("GET", "/v1/models", {}),
        ("GET", f"/v1/models/{ID}", {}),
        ("POST", f"/v1/models/{ID}/predictions", {"json": {"rows": [[1.0, 2.0]]}}),
        ("GET", "/v1/sweeps", {}),
        ("POST", "/v1/sweeps", {"json": {**JOB, "dataset_id": dataset, "search": {}}}),
        ("GET", f"/v1/sweeps/{ID}", {}),
    ]


def assert_unauthorized(response: httpx.Response, challenge: str = REALM) -> dict:
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == challenge
    assert not any(key in response.text for key in ALL_KEYS)  # a key is never echoed
    return body


# -- who gets in ------------------------------------------------------------------------------


def test_every_resource_without_a_key_is_401_with_www_authenticate(keyed, ids):
    for method, path, kwargs in resource_requests(ids):
        response = keyed.request(method, path, **kwargs)
        body = assert_unauthorized(response)
        assert body["detail"] == (
            "this API needs a key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        ), (method, path)


def test_every_route_of_the_app_needs_a_key_except_the_public_pages(keyed, keyed_app):
    # Deny by default: a route added later is covered without being listed here.
    tried = 0
    for context in iter_route_contexts(keyed_app.routes):
        methods = getattr(context.original_route, "methods", None)
        if not methods:
            continue  # the /static mount: every path under it is public
        path = re.sub(r"\{[^}]+\}", ID, context.path_format)
        for method in methods:
            response = keyed.request(method, path)
            if method in ("GET", "HEAD") and path in PUBLIC:
                assert response.status_code != 401, (method, path)
            else:
                assert_unauthorized(response)
                tried += 1
    assert tried >= 18  # every /v1 operation


def with_headers(kwargs: dict, headers: dict[str, str]) -> dict:
    return {**kwargs, "headers": {**kwargs.get("headers", {}), **headers}}


def test_the_same_requests_with_a_key_get_past_the_check(keyed, ids):
    for method, path, kwargs in resource_requests(ids):
        if path.endswith("/events"):
            continue  # the job is queued: its stream would not end
        response = keyed.request(method, path, **with_headers(kwargs, bearer(READ_WRITE_KEY)))
        assert response.status_code not in (401, 403), (method, path, response.text)


def test_a_wrong_key_is_401_invalid_token(keyed):
    for headers in (bearer(WRONG_KEY), {"X-API-Key": WRONG_KEY}):
        response = keyed.get("/v1/jobs", headers=headers)
        body = assert_unauthorized(response, f'{REALM}, error="invalid_token"')
        assert body["detail"] == "the API key is not valid for this service (unknown or revoked)"


@pytest.mark.parametrize(
    "headers",
    [
        bearer(READ_WRITE_KEY),
        {"Authorization": f"bearer {READ_WRITE_KEY}"},  # the scheme is case-insensitive
        {"X-API-Key": READ_WRITE_KEY},
        {"X-API-Key": SECOND_KEY},
        bearer(SECOND_KEY),
    ],
    ids=["bearer", "lowercase-bearer", "x-api-key", "second-key-x-api-key", "second-key-bearer"],
)
def test_bearer_and_x_api_key_both_let_a_configured_key_in(keyed, headers):
    response = keyed.get("/v1/datasets", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": [], "next_cursor": None}


def test_a_key_a_prefix_or_an_extension_of_a_key_is_not_that_key(keyed):
    for key in (READ_WRITE_KEY[:-1], READ_WRITE_KEY + "x", READ_WRITE_KEY.upper(), " "):
        response = keyed.get("/v1/jobs", headers={"X-API-Key": key})
        assert response.status_code == 401, key


def test_another_authorization_scheme_counts_as_no_key(keyed):
    response = keyed.get("/v1/jobs", headers={"Authorization": f"Basic {READ_WRITE_KEY}"})
    assert_unauthorized(response)


def test_two_different_keys_in_one_request_are_401(keyed):
    headers = {**bearer(READ_WRITE_KEY), "X-API-Key": WRONG_KEY}
    body = assert_unauthorized(
        keyed.get("/v1/jobs", headers=headers), f'{REALM}, error="invalid_request"'
    )
    assert "more than one key" in body["detail"]
    same = {**bearer(READ_WRITE_KEY), "X-API-Key": READ_WRITE_KEY}
    assert keyed.get("/v1/jobs", headers=same).status_code == 200


def test_a_read_only_key_may_read_but_not_write(keyed, ids):
    headers = {"X-API-Key": READ_ONLY_KEY}
    for path in ("/v1/datasets", f"/v1/datasets/{ids['dataset']}", f"/v1/jobs/{ids['job']}"):
        assert keyed.get(path, headers=headers).status_code == 200, path
    for method, path, kwargs in resource_requests(ids):
        if method == "GET":
            continue
        response = keyed.request(method, path, **with_headers(kwargs, headers))
        body = assert_problem(response, 403)
        assert body["detail"].startswith(
            f"this API key is a reader of project 'default': {method} "
        ), body["detail"]
        assert body["detail"].endswith(("needs the trainer role", "needs the admin role"))
    # Nothing was changed: the dataset is still there, the job still queued, no new job.
    assert keyed.get(f"/v1/jobs/{ids['job']}", headers=headers).json()["status"] == "queued"
    assert len(keyed.get("/v1/jobs", headers=headers).json()["data"]) == 1


@pytest.mark.parametrize("path", PUBLIC)
def test_probes_docs_static_assets_and_the_dashboard_page_are_open(keyed, path):
    response = keyed.get(path)
    assert response.status_code == 200, response.text


def test_the_public_paths_are_open_to_get_only(keyed):
    assert_unauthorized(keyed.post("/healthz"))
    assert_unauthorized(keyed.delete("/openapi.json"))


def test_the_upload_is_refused_before_its_body_is_read(settings):
    # The body is over the upload limit: a 401 (not 413) shows auth answered first.
    app = create_app(settings.model_copy(update={**KEYS, "max_upload_bytes": 10}))
    with TestClient(app) as client:
        response = client.post("/v1/datasets", content=CSV, headers={"Content-Type": "text/csv"})
        assert_unauthorized(response)
        with_key = client.post(
            "/v1/datasets", content=CSV, headers={"Content-Type": "text/csv", **bearer(SECOND_KEY)}
        )
        assert with_key.status_code == 413


def test_without_keys_the_api_is_open(client):
    assert client.get("/v1/jobs").status_code == 200
    assert client.get("/v1/jobs", headers=bearer(WRONG_KEY)).status_code == 200


# -- keys in the OpenAPI document ---------------------------------------------------------


def test_openapi_declares_bearer_and_x_api_key_and_documents_401_and_403(keyed):
    document = keyed.get("/openapi.json").json()
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": SECURITY_SCHEMES["bearerAuth"]["description"],
        },
        "apiKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "The same key, sent as `X-API-Key: <key>`",
        },
    }
    assert document["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            if path in ("/healthz", "/readyz"):
                assert operation["security"] == [], path
                assert "401" not in codes, path
                continue
            assert "security" not in operation  # the global requirement applies
            assert "401" in codes, (method, path)
            role = operation["x-required-role"]
            assert role == ROUTE_ROLES[f"{method.upper()} {path}"].name
            assert ("403" in codes) == (role != "reader"), (method, path)
            if method not in ("get", "head"):
                assert role != "reader", (method, path)  # a reader only reads
            unauthorized = operation["responses"]["401"]
            assert "WWW-Authenticate" in unauthorized["headers"]


def test_openapi_examples_of_the_secured_document_validate(keyed):
    document = keyed.get("/openapi.json").json()
    examples = list(every_example(document))
    invalid = {
        where: errors
        for where, schema, example in examples
        if (errors := validation_errors(document, schema, example))
    }
    assert invalid == {}


def test_openapi_without_keys_still_declares_them(client):
    # A key made in the database closes the API without a restart: the document is the same
    # whether keys exist yet or not.
    document = client.get("/openapi.json").json()
    assert document["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}


# -- keys are never logged -----------------------------------------------------------------


def test_keys_are_not_in_the_logs_of_requests_that_carry_them(keyed, caplog, ids):
    caplog.set_level(logging.DEBUG)
    keyed.get("/v1/jobs", headers=bearer(READ_WRITE_KEY))
    keyed.get("/v1/jobs", headers={"X-API-Key": WRONG_KEY})
    keyed.post("/v1/jobs", json=JOB, headers={"X-API-Key": READ_ONLY_KEY})
    keyed.post("/v1/jobs", json={**JOB, "dataset_id": ids["dataset"]}, headers=bearer(SECOND_KEY))
    keyed.post("/v1/jobs", content=b"{not json", headers=bearer(SECOND_KEY))
    assert caplog.records  # the requests were logged at all (httpx logs each one)
    assert not any(key in caplog.text for key in ALL_KEYS)


def test_settings_never_show_their_keys(keyed_settings):
    assert not any(key in repr(keyed_settings) for key in ALL_KEYS)
    assert not any(key in str(keyed_settings) for key in ALL_KEYS)


def test_jobs_record_the_id_of_their_key_never_the_key(keyed, ids, database):
    response = keyed.post(
        "/v1/jobs", json={**JOB, "dataset_id": ids["dataset"]}, headers=bearer(SECOND_KEY)
    )
    assert response.status_code == 202, response.text
    with database.reads() as session:
        row = session.execute(select(Job.__table__).where(Job.id == response.json()["id"]))
        stored = dict(row.mappings().one())
    assert stored["api_key_id"] == key_id(SECOND_KEY.encode())
    assert not any(key in str(stored) for key in ALL_KEYS)


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_loopback_is_127_0_0_0_8_and_ipv6_1_and_localhost(host, loopback):
    assert is_loopback(host) is loopback


def test_create_app_refuses_a_public_host_without_keys(settings):
    for host in ("0.0.0.0", "::", "192.168.1.5"):
        refused = r"no API keys are configured.*Set BACKPROP_API_KEYS"
        with pytest.raises(AccessSettingsError, match=refused):
            create_app(settings.model_copy(update={"host": host}))
    create_app(settings.model_copy(update={"host": "0.0.0.0", **KEYS}))  # keys: allowed
    create_app(settings.model_copy(update={"host": "0.0.0.0", "read_only_api_keys": READ_ONLY_KEY}))


def test_unusable_keys_are_refused_without_showing_them(settings):
    secret = "has space-3b1f9c"
    with pytest.raises(AccessSettingsError) as raised:
        create_app(settings.model_copy(update={"api_keys": f"{READ_WRITE_KEY},{secret}"}))
    assert str(raised.value).startswith("BACKPROP_API_KEYS: key 2 has a space")
    assert "3b1f9c" not in str(raised.value)  # no part of the key either
    both = {"api_keys": READ_WRITE_KEY, "read_only_api_keys": READ_WRITE_KEY}
    with pytest.raises(AccessSettingsError, match="appear in both") as raised:
        create_app(settings.model_copy(update=both))
    assert READ_WRITE_KEY not in str(raised.value)


def test_key_lists_ignore_spaces_and_empty_items():
    keys = Settings(api_keys=f" {READ_WRITE_KEY} ,, {SECOND_KEY},", read_only_api_keys="")
    assert keys.read_write_key_list == (READ_WRITE_KEY, SECOND_KEY)
    assert keys.keys_configured
    assert not Settings(api_keys=" , ").keys_configured
    ring = KeyRing.from_settings(keys)
    assert ring.lookup(READ_WRITE_KEY.encode()).role is Role.admin
    assert ring.lookup(b" " + READ_WRITE_KEY.encode()) is None


# -- live: `backprop serve` ---------------------------------------------------------------


def serve(env: dict[str, str], *args: str, **popen: object) -> subprocess.Popen:
    command = [sys.executable, "-m", "service.cli", "serve", "--workers", "0", *args]
    return subprocess.Popen(command, env=env, cwd=ROOT, **popen)


def test_serve_refuses_a_public_host_without_keys_before_binding_or_migrating(tmp_path):
    database = tmp_path / "never.db"
    env = service_env(f"sqlite:///{database}", log_level="info")
    process = serve(
        env,
        "--host",
        "0.0.0.0",
        "--port",
        str(free_port()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    assert "refusing to serve on '0.0.0.0': no API keys are configured" in stderr
    assert "Set BACKPROP_API_KEYS" in stderr
    assert not database.exists()  # it stopped before migrating, let alone listening
    assert "API at" not in stdout


@pytest.mark.slow
def test_live_serve_with_keys_checks_them_and_never_logs_them(tmp_path):
    port = free_port()
    env = service_env(
        f"sqlite:///{tmp_path / 'live.db'}",
        port=port,
        log_level="debug",
        log_format="text",  # uvicorn's access lines as they read, quotes unescaped
        max_json_body_bytes=1_000,
        **KEYS,
    )
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = serve(env, "--host", "127.0.0.1", stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base)  # /readyz needs no key
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/v1/jobs").status_code == 401
            assert http.get("/v1/jobs", headers={"X-API-Key": WRONG_KEY}).status_code == 401
            assert http.get("/v1/jobs", headers=bearer(READ_WRITE_KEY)).status_code == 200
            assert http.get("/v1/jobs", headers={"X-API-Key": SECOND_KEY}).status_code == 200
            read_only = http.post("/v1/jobs", json=JOB, headers={"X-API-Key": READ_ONLY_KEY})
            assert read_only.status_code == 403

            def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
                yield b'{"dataset_id": "'
                for _ in range(20):
                    yield b"x" * 100
                yield b'"}'

            chunked = http.post(
                "/v1/jobs",
                content=chunks(),
                headers={"Content-Type": "application/json", **bearer(READ_WRITE_KEY)},
            )
            assert chunked.status_code == 413, chunked.text
            assert chunked.json()["setting"] == "max_json_body_bytes"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log.read_text()
    assert '"GET /v1/jobs HTTP/1.1" 200' in output  # the access log was on
    assert '"GET /v1/jobs HTTP/1.1" 401' in output
    assert not any(key in output for key in ALL_KEYS), output


def test_a_key_the_environment_lacks_is_503_while_the_database_is_away():
    # The database holds the keys the environment does not: while it cannot be asked, a key
    # is neither accepted nor called wrong, and the client is told to retry.
    unreachable = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    settings = Settings(database_url=unreachable, api_keys=READ_WRITE_KEY)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/jobs", headers=bearer("bpk_" + "0" * 64))
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        # An environment key needs no database to be recognised: the route answers (503 too).
        assert client.get("/v1/jobs", headers=bearer(READ_WRITE_KEY)).status_code == 503
