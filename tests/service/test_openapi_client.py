"""A third-party generator makes a complete client from the document: nothing dropped.

openapi-python-client 0.29.1 once dropped POST /v1/sweeps with "Unable to process
schema /components/schemas/SearchIn: Invalid property in union", and SearchIn and
SweepCreate with it: an inline schema titled `Range` appeared twice in one union. Such
a generator warns and goes on, so this test fails on any warning, any operation
without its module and any object schema without its model class.

The CLI runs on the served document saved in a temporary folder, with no network:
no post-hooks (its default ones run ruff from the PATH), no project metadata, and the
upload's CSV and Parquet bodies declared binary (`content_type_overrides`), as they are.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.core.settings import Settings

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
CONFIG = """\
post_hooks: []
content_type_overrides:
  text/csv: application/octet-stream
  application/csv: application/octet-stream
  application/vnd.apache.parquet: application/octet-stream
  application/x-parquet: application/octet-stream
"""
# What the generator prints about a part of the document it could not use.
PROBLEMS = re.compile(r"WARNING|Unable to|will not be generated|Could not|Invalid", re.IGNORECASE)


def generate(document: dict[str, Any], folder: Path) -> tuple[str, Path]:
    """Run the generator on ``document``; its output and the client's package folder."""
    (folder / "openapi.json").write_text(json.dumps(document))
    (folder / "config.yaml").write_text(CONFIG)
    command = [str(GENERATOR), "generate", "--path", "openapi.json", "--config", "config.yaml"]
    command += ["--meta", "none", "--output-path", "client"]
    run = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr, folder / "client"


def served_document() -> dict[str, Any]:
    """The document with API keys configured: every response it can declare, declared."""
    return create_app(Settings(database_url="sqlite://", api_keys="a-key")).openapi()


def module_name(operation_id: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", operation_id).lower()


def model_classes(client: Path) -> set[str]:
    text = (client / "models" / "__init__.py").read_text()
    return set(re.findall(r"^from \.\S+ import (\w+)$", text, re.MULTILINE))


@pytest.mark.skipif(not GENERATOR.exists(), reason="openapi-python-client is in the test extra")
def test_openapi_python_client_generates_every_operation_and_schema(tmp_path):
    document = served_document()
    output, client = generate(document, tmp_path)
    assert PROBLEMS.findall(output) == [], output
    modules = {path.stem for path in (client / "api").glob("*/*.py")}
    operation_ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    ]
    assert len(operation_ids) >= 20
    assert [o for o in operation_ids if module_name(o) not in modules] == []
    objects = [
        name for name, schema in document["components"]["schemas"].items() if "properties" in schema
    ]
    assert {"SweepCreate", "RandomSearchIn", "JobCreate"} <= set(objects)
    assert sorted(set(objects) - model_classes(client)) == []


@pytest.mark.skipif(not GENERATOR.exists(), reason="openapi-python-client is in the test extra")
def test_the_check_catches_a_schema_the_generator_drops(tmp_path):
    """The document as it was: one union holding two inline schemas titled `Range`."""
    document = served_document()
    schemas = document["components"]["schemas"]
    space = schemas["RandomSearchIn"]["properties"]["space"]["properties"]
    for name in ("learning_rate", "l2"):
        ref = space[name]["anyOf"][1]["$ref"].removeprefix("#/components/schemas/")
        space[name]["anyOf"][1] = {**schemas.pop(ref), "title": "Range"}
    output, _ = generate(document, tmp_path)
    assert "Unable to process schema /components/schemas/RandomSearchIn" in output
    assert PROBLEMS.findall(output) != []
