"""Every example in the OpenAPI document is true: it validates against the schema it illustrates.

Swagger UI and Redoc show these examples as what the service sends and accepts, and
"Try it out" pre-fills request bodies with them, so each one is checked against its
JSON Schema (OpenAPI 3.1 schemas are JSON Schema 2020-12; `$ref`s resolve into the
document's components). Where examples live:

- request bodies and responses: `content[media].example` and `content[media].examples[*].value`;
- parameters: `example`, `examples[*].value` and their schema's `examples`;
- any schema (components and inline): `examples` (a list) and `example`.

FastAPI renders the document with `exclude_none`, which would also delete every
`"key": null` inside the examples (fastapi/fastapi#5559); the document keeps them.
"""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from service.app import create_app
from service.core.settings import Settings
from service.jobs.schemas import CREATE_EXAMPLES, JOB_EXAMPLE

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# Keywords whose values are data, not schemas: the walk over a schema does not enter them.
DATA_KEYWORDS = {"example", "examples", "default", "const", "enum"}


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict[str, Any]:
    """/openapi.json as the service serves it (building it touches no database)."""
    database = tmp_path_factory.mktemp("openapi") / "unused.db"
    app = create_app(Settings(database_url=f"sqlite:///{database}"))
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its top-level `$ref` followed (components only)."""
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = document["components"]["schemas"][name]
    return schema


def media_examples(media: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """A media type's or a parameter's examples: `example` and each `examples[name].value`."""
    if "example" in media:
        yield "example", media["example"]
    for name, example in media.get("examples", {}).items():
        if "value" in example:
            yield f"examples.{name}", example["value"]


def schema_examples(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, the schema node, an example) for every example written on a schema or inside it."""
    if isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from schema_examples(item, f"{where}[{index}]")
        return
    if not isinstance(schema, dict):
        return
    if isinstance(schema.get("examples"), list):
        for index, example in enumerate(schema["examples"]):
            yield f"{where}.examples[{index}]", schema, example
    if "example" in schema:
        yield f"{where}.example", schema, schema["example"]
    for key, value in schema.items():
        if key not in DATA_KEYWORDS:
            yield from schema_examples(value, f"{where}.{key}")


def every_example(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example in the document."""
    for name, schema in document["components"]["schemas"].items():
        yield from schema_examples(schema, f"components.schemas.{name}")
    for operation_name, operation in operations(document):
        for parameter in operation.get("parameters", []):
            where = f"{operation_name} parameter {parameter['name']}"
            for key, example in media_examples(parameter):
                yield f"{where} {key}", parameter["schema"], example
            yield from schema_examples(parameter["schema"], f"{where} schema")
        contents = [("requestBody", operation.get("requestBody", {}))]
        contents += [(f"response {code}", r) for code, r in operation["responses"].items()]
        for part, body in contents:
            for media_type, media in body.get("content", {}).items():
                where = f"{operation_name} {part} {media_type}"
                schema = media.get("schema", {})
                for key, example in media_examples(media):
                    yield f"{where} {key}", schema, example
                yield from schema_examples(schema, f"{where} schema")


def validation_errors(document: dict[str, Any], schema: dict[str, Any], example: Any) -> list[str]:
    """Why ``example`` does not validate against ``schema`` (empty when it does)."""
    # `components` rides along at the root so that "#/components/schemas/..." resolves.
    rooted = {"components": document["components"], "allOf": [schema]}
    validator = Draft202012Validator(rooted, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(example)
    ]


def test_every_example_validates_against_its_schema(document):
    examples = list(every_example(document))
    assert len(examples) > 40  # the walk found the document's examples
    invalid = {
        where: errors
        for where, schema, example in examples
        if (errors := validation_errors(document, schema, example))
    }
    assert invalid == {}


def test_examples_are_checked_against_the_schema_they_illustrate(document):
    """The check itself: a wrong example is caught, through a $ref and a nested field."""
    job_create = {"$ref": "#/components/schemas/JobCreate"}
    valid = resolve(document, job_create)["examples"][0]
    assert validation_errors(document, job_create, valid) == []
    wrong = {**valid, "training": {**valid["training"], "epochs": "many"}}
    assert validation_errors(document, job_create, wrong) == [
        "training.epochs: 'many' is not of type 'integer'"
    ]


def shown_examples(document: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """What Swagger UI shows for a media type: its own examples, else its schema's."""
    own = [example for _, example in media_examples(media)]
    return own or resolve(document, media.get("schema", {})).get("examples", [])


def test_every_operation_shows_request_and_response_examples(document):
    missing = []
    for name, operation in operations(document):
        body = operation.get("requestBody")
        if body and not any(shown_examples(document, m) for m in body["content"].values()):
            missing.append(f"{name} requestBody")
        for code, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                if not shown_examples(document, media):
                    missing.append(f"{name} response {code} {media_type}")
    assert missing == []


def test_every_error_response_shows_a_problem_with_its_own_status(document):
    wrong = {}
    for name, operation in operations(document):
        for code, response in operation["responses"].items():
            if int(code) < 400:
                continue
            content = response["content"]
            examples = shown_examples(document, content["application/problem+json"])
            statuses = [example["status"] for example in examples]
            if list(content) != ["application/problem+json"] or statuses != [int(code)]:
                wrong[f"{name} {code}"] = (list(content), statuses)
    assert wrong == {}


def test_examples_keep_their_nulls(document):
    """A null in an example is information: `early_stopping: null` turns early stopping off."""
    create = document["paths"]["/v1/jobs"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert examples["adam_minibatch"]["value"] == CREATE_EXAMPLES["adam_minibatch"]["value"]
    assert examples["adam_minibatch"]["value"]["training"]["early_stopping"] is None
    assert document["components"]["schemas"]["JobPublic"]["examples"] == [JOB_EXAMPLE]
