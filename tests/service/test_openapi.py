"""The OpenAPI document: every operation summarised, with examples, errors as problem+json."""

import json
import os
from pathlib import Path

import pytest

from service.app import create_app
from service.core.settings import Settings


@pytest.fixture
def document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_has_a_summary_description_and_tag_id(document):
    for path, method, operation in operations(document):
        assert operation.get("summary"), (method, path)
        assert operation.get("description"), (method, path)
        assert operation["operationId"].startswith(operation["tags"][0] + "-"), (method, path)


def test_every_error_response_is_documented_as_problem_json(document):
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                assert "application/json" not in response.get("content", {}), (method, path, code)
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, code)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_every_v1_operation_shows_an_example(document):
    for path, method, operation in operations(document):
        if not path.startswith("/v1"):
            continue
        text = str(operation)
        assert "example" in text, (method, path)


SNAPSHOT = Path(__file__).with_name("openapi.snapshot.json")


def test_the_document_is_the_reviewed_snapshot(tmp_path):
    """The API changes only on purpose: paths, operation ids, schemas and texts as reviewed.

    After a deliberate change, rewrite the snapshot and review its diff with the change:
    ``BACKPROP_WRITE_OPENAPI_SNAPSHOT=1 pytest tests/service/test_openapi.py -k snapshot``.
    """
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'snapshot.db'}")
    document = json.dumps(create_app(settings).openapi(), indent=1, sort_keys=True) + "\n"
    if os.environ.get("BACKPROP_WRITE_OPENAPI_SNAPSHOT"):
        SNAPSHOT.write_text(document)
    assert document == SNAPSHOT.read_text(), "the OpenAPI document differs from the snapshot"
