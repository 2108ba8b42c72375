"""/docs (Swagger UI) and /redoc work on a machine without internet.

The pages and every asset they load come from the service itself; in headless
Chromium, fenced to the service's origin, every operation renders and "Try it out"
uploads a dataset and queues a job on it. The first tests read the pages in process.
"""

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.core.settings import Settings
from service.pages.docs import VENDOR_DIR
from tests.browser.conftest import screenshot

LOAD_TIMEOUT_MS = 30_000  # a cold Chromium on a busy 2-core machine
EXECUTE_TIMEOUT_MS = 30_000
DOCS_ROUTES = {"/docs", "/docs/oauth2-redirect", "/redoc", "/redoc/redoc.standalone.js"}


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    """The app in process; the docs pages touch no database."""
    database = tmp_path_factory.mktemp("docs") / "unused.db"
    return TestClient(create_app(Settings(database_url=f"sqlite:///{database}")))


def asset_urls(html: str) -> list[str]:
    """What a page loads: its src= and href= URLs."""
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_docs_page_loads_every_asset_from_this_service(client, page_path):
    response = client.get(page_path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "://" not in response.text  # no CDN, no Google Fonts
    urls = asset_urls(response.text)
    assert "/static/vendor/swagger-ui/favicon-32x32.png" in urls
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url


def test_swagger_ui_asks_no_online_validator(client):
    page = client.get("/docs").text
    assert '"validatorUrl": null' in page
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in asset_urls(page)
    assert "/static/vendor/swagger-ui/swagger-ui.css" in asset_urls(page)


def test_redoc_bundle_is_served_without_its_cdn_logo(client):
    vendored = (VENDOR_DIR / "redoc" / "redoc.standalone.js").read_bytes()
    assert b"https://cdn.redoc.ly/redoc/logo-mini.svg" in vendored  # the package as shipped
    response = client.get("/redoc/redoc.standalone.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert b"cdn.redoc.ly" not in response.content
    assert len(response.content) > 1_000_000
    again = client.get(
        "/redoc/redoc.standalone.js", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("package", ["swagger-ui", "redoc"])
def test_vendored_files_are_the_packages_files(package):
    """Each file is byte for byte what SOURCE.md records from the npm package, license included."""
    folder = VENDOR_DIR / package
    recorded = re.findall(r"^([0-9a-f]{64})  (\S+)$", (folder / "SOURCE.md").read_text(), re.M)
    assert {name for _, name in recorded} == {p.name for p in folder.iterdir()} - {"SOURCE.md"}
    assert "LICENSE" in {name for _, name in recorded}
    for digest, name in recorded:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_swagger_ui_oauth2_redirect_page_is_served(client):
    response = client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "oauth2" in response.text
    assert "://" not in response.text


def test_docs_routes_stay_out_of_the_openapi_document(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths & DOCS_ROUTES == set()


# In Chromium, against the real service (tests/browser/conftest.py).


def operation_ids(service_url: str) -> dict[str, str]:
    """{operationId: its tag} for every operation of the running service."""
    document = httpx.get(f"{service_url}/openapi.json", timeout=10).json()
    return {
        operation["operationId"]: operation["tags"][0]
        for methods in document["paths"].values()
        for operation in methods.values()
    }


def open_swagger_ui(page, service_url: str) -> None:
    page.goto(f"{service_url}/docs")
    page.wait_for_selector(".opblock", timeout=LOAD_TIMEOUT_MS)


def try_it_out(page, tag: str, operation_id: str):
    """Expand an operation in Swagger UI and press "Try it out"; returns its block."""
    operation = page.locator(f"#operations-{tag}-{operation_id}")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    return operation


def execute(page, operation, method: str, url: str) -> httpx.Response:
    """Press "Execute"; returns the service's answer, once Swagger UI shows its status."""
    with page.expect_response(
        lambda r: r.url == url and r.request.method == method, timeout=EXECUTE_TIMEOUT_MS
    ) as answer:
        operation.locator("button.execute").click()
    response = answer.value
    shown = operation.locator(".live-responses-table tbody .response-col_status")
    shown.first.wait_for(timeout=EXECUTE_TIMEOUT_MS)
    assert shown.first.inner_text().strip() == str(response.status)
    return response


def two_feature_csv(path: Path, rows: int = 40) -> Path:
    """A small separable dataset: x1, x2 and a 0/1 label in the last column."""
    lines = ["x1,x2,label"]
    for i in range(rows):
        label = i % 2
        lines.append(f"{(i % 7) / 7 + 2 * label:.3f},{(i % 5) / 5 - label:.3f},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_of_every_tag(page, service):
    expected = {f"operations-{tag}-{op_id}" for op_id, tag in operation_ids(service.url).items()}
    open_swagger_ui(page, service.url)
    rendered = set(page.eval_on_selector_all(".opblock", "blocks => blocks.map(b => b.id)"))
    assert rendered == expected
    assert {"datasets", "jobs", "models", "health"} <= set(operation_ids(service.url).values())
    assert page.outside_requests == []
    assert page.console_errors == []


@pytest.mark.slow
def test_try_it_out_uploads_a_dataset_and_queues_a_job(page, service, tmp_path):
    csv = two_feature_csv(tmp_path / "two_features.csv")
    open_swagger_ui(page, service.url)

    upload = try_it_out(page, "datasets", "datasets-create_dataset")
    file_input = upload.locator(".opblock-section-request-body input[type=file]")
    file_input.set_input_files(csv)  # the multipart body renders as a file picker
    uploaded = execute(page, upload, "POST", f"{service.url}/v1/datasets")
    assert uploaded.status == 201, uploaded.text()
    dataset = uploaded.json()
    assert (dataset["rows"], dataset["features"], dataset["label"]) == (40, ["x1", "x2"], "label")

    create = try_it_out(page, "jobs", "jobs-create_job")
    body = create.locator("textarea.body-param__text")
    example = json.loads(body.input_value())  # the documented example, pre-filled
    body.fill(json.dumps({**example, "dataset_id": dataset["id"]}))
    queued = execute(page, create, "POST", f"{service.url}/v1/jobs")
    assert queued.status == 202, queued.text()
    job = queued.json()
    assert (job["dataset_id"], job["status"]) == (dataset["id"], "queued")
    assert job["model"] == {**job["model"], **example["model"]}

    screenshot(page, "docs")
    assert page.outside_requests == []
    assert page.console_errors == []


@pytest.mark.slow
def test_redoc_renders_every_operation(page, service):
    expected = {f"tag/{tag}/operation/{op_id}" for op_id, tag in operation_ids(service.url).items()}
    page.goto(f"{service.url}/redoc")
    page.wait_for_function(
        "n => document.querySelectorAll('[data-section-id^=\"operation/\"]').length >= n",
        arg=len(expected),
        timeout=LOAD_TIMEOUT_MS,
    )
    rendered = set(
        page.eval_on_selector_all(
            "[data-section-id^='tag/'][data-section-id*='/operation/']",
            "sections => sections.map(s => s.dataset.sectionId)",
        )
    )
    assert rendered == expected
    screenshot(page, "redoc")
    assert page.outside_requests == []
    assert page.console_errors == []
