"""The dashboard (GET /): lists, live loss curves, diagnostics, predictions, sweeps, API keys.

The browser tests drive Debian's chromium against the real service (uvicorn and
one worker, see conftest.py) and assert that the page never leaves it and logs
no console error. The sweep and API-key tests answer /v1/sweeps and /v1/* from
Playwright routes (the sweeps API and auth are built by other issues): they test
what the page shows for those answers.

`UPDATE_README_IMAGES=1` copies the final screenshot to docs/images/dashboard.png,
the README's picture; without it the screenshots stay in test-artifacts/ only.
"""

import json
import os
import re
import shutil
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.browser.conftest import ROOT, screenshot
from tests.browser.helpers import (
    FEATURES,
    assert_stayed_home,
    blobs_csv,
    facts,
    submit,
    text_of,
    wait_for_job,
    wait_for_text,
)

STATIC = ROOT / "service" / "pages" / "static"
README_IMAGE = ROOT / "docs" / "images" / "dashboard.png"
NETWORK = {"type": "two_layer_network", "hidden_units": 8, "activation": "tanh"}
# A validation split: the page draws validation curves (the service's default trains on every row).
TRAINING = {"optimizer": "gd", "epochs": 300, "early_stopping": None, "validation_fraction": 0.2}
FAILED_TO_LOAD_401 = "Failed to load resource: the server responded with a status of 401"


# The page as served: HTML that names only this service's assets.


def test_dashboard_is_html_that_loads_only_local_assets(tmp_path):
    from service.app import create_app
    from service.core.settings import Settings

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    client = TestClient(app)

    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    references = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assets = [ref for ref in references if ref.startswith("/static/")]
    assert set(references) - set(assets) == {"/docs", "/redoc", "data:,"}
    assert len(assets) == 6  # uPlot's script and styles, the dashboard's three scripts and styles
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "/" not in app.openapi()["paths"]


def test_shipped_assets_name_no_other_origin():
    own = sorted((STATIC / "dashboard").iterdir())
    assert [path.name for path in own] == [
        *("app.js", "columns.js", "evaluation.js", "index.html", "style.css")
    ]
    for path in own:
        assert not re.search(r"https?://", path.read_text()), path
    for path in (STATIC / "vendor" / "uplot").glob("uPlot.*"):
        code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.DOTALL)  # banners may link
        assert not re.search(r"https?://", code), path
    source = (STATIC / "vendor" / "uplot" / "SOURCE").read_text()
    assert "package: uplot" in source
    assert "version: 1.6.32" in source
    assert "MIT License" in (STATIC / "vendor" / "uplot" / "LICENSE").read_text()


# The real service, in a browser.


@pytest.fixture(scope="module")
def trained(api) -> dict[str, Any]:
    """A dataset and two short jobs that succeeded (trained before any long job is queued)."""
    upload = api.post(
        "/v1/datasets",
        params={"name": "blobs", "label": "label"},
        files={"file": ("blobs.csv", blobs_csv(), "text/csv")},
    )
    assert upload.status_code == 201, upload.text
    dataset = upload.json()
    jobs = [
        submit(api, dataset["id"], NETWORK, TRAINING | {"learning_rate": rate})
        for rate in (0.5, 0.05)
    ]
    jobs = [wait_for_job(api, job["id"], lambda j: j["status"] == "succeeded") for job in jobs]
    return {"dataset": dataset, "jobs": jobs}


@pytest.mark.slow
def test_running_jobs_loss_curve_grows_live_and_follows_it_to_the_end(page, service, api, trained):
    running = submit(
        api,
        trained["dataset"]["id"],
        {"type": "two_layer_network", "hidden_units": 32, "activation": "relu"},
        TRAINING | {"learning_rate": 0.1, "epochs": 200_000},
    )
    try:
        wait_for_job(api, running["id"], lambda j: j["progress"]["epoch"] > 0, timeout=30)
        page.goto(f"{service.url}/")
        page.click(f'#jobs-table button[data-id="{running["id"]}"]')

        page.wait_for_function("() => window.dashboard.chart?.data[0].length > 0")
        assert page.locator("#job-chart canvas").count() == 1
        loaded = page.evaluate("window.dashboard.chart.data[0].length")
        page.wait_for_function(f"() => window.dashboard.chart.data[0].length > {loaded + 100}")
        assert text_of(page, "#job-status") == "running"
        screenshot(page, "dashboard-running")

        assert api.post(f"/v1/jobs/{running['id']}/cancel").status_code == 202
        wait_for_text(page, "#job-status", "cancelled")
        page.wait_for_function("() => window.dashboard.stream === null")  # the stream ended
        wait_for_text(
            page, f'#jobs-table tr:has(button[data-id="{running["id"]}"]) .badge', "cancelled"
        )
    finally:
        api.post(f"/v1/jobs/{running['id']}/cancel")

    final = api.get(f"/v1/jobs/{running['id']}").json()
    epochs, train, val = page.evaluate("window.dashboard.chart.data")
    assert epochs[-1] == final["progress"]["epoch"]  # every epoch up to the last one arrived
    assert epochs == sorted(set(epochs))
    assert all(loss is not None and loss > 0 for loss in train + val)
    assert facts(page, "#job-facts")["Stop reason"] == "cancelled"
    # The accuracy curve beside the loss: one point per epoch drawn, each a fraction.
    accuracy_epochs, *accuracies = page.evaluate("window.dashboard.accuracyChart.data")
    assert accuracy_epochs == epochs
    assert all(0.0 <= value <= 1.0 for curve in accuracies for value in curve)
    assert page.locator("#accuracy-chart canvas").count() == 1
    # The log-scale toggle redraws the loss axis as log10, with the same points.
    assert page.evaluate("window.dashboard.chart.scales.y.distr") == 1
    page.get_by_label("log scale (loss)").check()
    page.wait_for_function("() => window.dashboard.chart.scales.y.distr === 3")
    assert page.evaluate("window.dashboard.chart.data") == [epochs, train, val]
    # A cancelled job keeps its model: the best epoch's parameters so far.
    assert final["model_id"] is not None
    model = api.get(f"/v1/models/{final['model_id']}").json()
    assert model["metrics"]["stop_reason"] == "cancelled"
    assert model["metrics"]["model_epoch"] == model["metrics"]["best_epoch"]
    page.locator("#model-section").wait_for(state="visible")
    kept = facts(page, "#diagnostics")["Parameters of"]
    assert kept.startswith(f"epoch {model['metrics']['model_epoch']:,} (")
    assert_stayed_home(page)


def fake_sweep(trained: dict[str, Any], api: httpx.Client) -> dict[str, Any]:
    """GET /v1/sweeps/{id} (service.sweeps.schemas.SweepPublic) over the two trained jobs."""
    from service.sweeps.schemas import SweepPublic

    leaderboard = []
    for job in trained["jobs"]:
        metrics = api.get(f"/v1/models/{job['model_id']}").json()["metrics"]
        leaderboard.append(
            {
                "job_id": job["id"],
                "status": job["status"],
                "trial": {"learning_rate": job["training"]["learning_rate"]},
                "best_val_loss": metrics["best_val_loss"],
                "best_epoch": metrics["best_epoch"],
                "final_train_loss": metrics["final_train_loss"],
                "model_id": job["model_id"],
            }
        )
    leaderboard.sort(key=lambda trial: trial["best_val_loss"])
    for rank, trial in enumerate(leaderboard, start=1):
        trial["rank"] = rank
    sweep_id = "5eed5eed5eed5eed5eed5eed5eed5eed"
    base = trained["jobs"][0]
    sweep = {
        "id": sweep_id,
        "status": "succeeded",
        "dataset_id": trained["dataset"]["id"],
        "model": base["model"],
        "training": base["training"],
        "search": {
            "strategy": "grid",
            "space": {"learning_rate": [0.5, 0.05]},
            "n_trials": None,
            "seed": None,
        },
        "counts": {
            "total": 2,
            "queued": 0,
            "running": 0,
            "cancelling": 0,
            "succeeded": 2,
            "failed": 0,
            "cancelled": 0,
        },
        "created_at": base["created_at"],
        "links": {
            "self": f"/v1/sweeps/{sweep_id}",
            "cancel": f"/v1/sweeps/{sweep_id}/cancel",
            "jobs": f"/v1/jobs?sweep_id={sweep_id}",
        },
        "leaderboard": leaderboard,
    }
    return SweepPublic.model_validate(sweep).model_dump(mode="json")


@pytest.mark.slow
def test_sweep_draws_every_trials_validation_curve_with_its_leaderboard(
    page, service, api, trained
):
    """The sweeps API answered by a route (its shape is the sweeps schema), the trials real."""
    sweep = fake_sweep(trained, api)
    summary = {key: value for key, value in sweep.items() if key != "leaderboard"}

    def openapi_with_sweeps(route):
        spec = route.fetch().json()
        spec["paths"].setdefault("/v1/sweeps", {"get": {}})
        route.fulfill(json=spec)

    page.route("**/openapi.json", openapi_with_sweeps)
    page.route(
        "**/v1/sweeps?*", lambda route: route.fulfill(json={"data": [summary], "next_cursor": None})
    )
    page.route(f"**/v1/sweeps/{sweep['id']}", lambda route: route.fulfill(json=sweep))

    page.goto(f"{service.url}/")
    row = page.locator(f'#sweeps-table tr:has(button[data-id="{sweep["id"]}"])')
    row.wait_for()
    assert row.locator("td").all_inner_texts()[1:4] == [
        "succeeded",
        "grid: learning rate",
        "2 / 2",
    ]
    row.locator("button").click()
    page.wait_for_function("() => window.dashboard.sweepChart?.series.length === 3")

    assert page.locator("#sweep-chart canvas").count() == 1
    labels = page.evaluate("window.dashboard.sweepChart.series.slice(1).map(s => s.label)")
    assert labels == [
        f"#{trial['rank']} learning rate {trial['trial']['learning_rate']}"
        for trial in sweep["leaderboard"]
    ]
    data = page.evaluate("window.dashboard.sweepChart.data")
    assert data[0] == list(range(1, 301))  # both trials ran 300 epochs
    assert all(all(v is not None for v in curve) for curve in data[1:])
    rows = page.locator("#leaderboard tbody tr")
    assert rows.locator("td:first-child").all_inner_texts() == ["1", "2"]
    assert rows.locator("button").all_inner_texts() == [
        trial["job_id"][:8] for trial in sweep["leaderboard"]
    ]
    assert facts(page, "#sweep-facts")["Trials"] == "2 succeeded (2 in all)"
    screenshot(page, "dashboard-sweep")

    rows.last.locator("button").click()  # a trial's own job
    page.wait_for_function("() => window.dashboard.chart?.data[0].length === 300")
    assert text_of(page, "#job-id") == sweep["leaderboard"][-1]["job_id"][:8]
    assert_stayed_home(page)


@pytest.mark.slow
def test_real_sweeps_trials_are_drawn_together_in_leaderboard_order(page, service, api, trained):
    """The same against the sweeps API itself."""
    search = {"strategy": "grid", "space": {"learning_rate": [0.5, 0.05]}}
    created = api.post(
        "/v1/sweeps",
        json={
            "dataset_id": trained["dataset"]["id"],
            "model": NETWORK,
            "training": TRAINING,
            "search": search,
        },
    )
    assert created.status_code == 202, created.text
    sweep_id = created.json()["id"]
    deadline = time.monotonic() + 60
    while (sweep := api.get(f"/v1/sweeps/{sweep_id}").json())["status"] != "succeeded":
        assert time.monotonic() < deadline, sweep
        time.sleep(0.1)

    page.goto(f"{service.url}/#sweep={sweep_id}")  # the address selects it
    page.wait_for_function("() => window.dashboard.sweepChart?.series.length === 3")

    assert page.locator("#leaderboard tbody button").all_inner_texts() == [
        trial["job_id"][:8] for trial in sweep["leaderboard"]
    ]
    curves = page.evaluate("window.dashboard.sweepChart.data.slice(1)")
    assert all(sum(v is not None for v in curve) == 300 for curve in curves)
    assert_stayed_home(page)


@pytest.mark.slow
def test_succeeded_job_shows_spec_diagnostics_and_predicts_a_row(page, service, api, trained):
    job = trained["jobs"][0]
    model = api.get(f"/v1/models/{job['model_id']}").json()
    record = dict.fromkeys(FEATURES, 1.5)
    expected = api.post(f"/v1/models/{model['id']}/predictions", json={"records": [record]})
    expected_label = str(expected.json()["predictions"][0]["label"])

    page.goto(f"{service.url}/")
    page.click(f'#jobs-table button[data-id="{job["id"]}"]')
    page.locator("#model-section").wait_for(state="visible")

    assert text_of(page, "#job-status") == "succeeded"
    assert page.evaluate("window.dashboard.chart.data[0].length") == 300
    training = facts(page, "#training-spec")
    assert training["learning rate"] == "0.5"
    assert training["epochs"] == "300"
    assert training["early stopping"] == "off"
    assert "momentum" not in training  # gd has none
    assert facts(page, "#model-spec")["hidden units"] == "8"
    norms = page.locator("#gradient-norms tbody th").all_inner_texts()
    assert norms == list(model["diagnostics"]["gradient_norms"])
    diagnostics = model["diagnostics"]
    assert (
        f"{diagnostics['identical_hidden_units']} identical, "
        f"{diagnostics['distinct_hidden_units']} distinct"
    ) in text_of(page, "#diagnostics")

    for name, value in record.items():
        page.get_by_label(name, exact=True).fill(str(value))
    page.get_by_role("button", name="Predict").click()
    wait_for_text(page, "#predicted-label", expected_label)
    probabilities = page.locator(".probabilities").inner_text()
    assert "%" in probabilities

    # Which epoch's parameters the model holds, and the evaluation of them.
    metrics, evaluation = model["metrics"], model["evaluation"]
    assert facts(page, "#diagnostics")["Parameters of"] == (
        f"epoch {metrics['model_epoch']} (the last of {metrics['epochs_run']} run)"
    )
    assert evaluation["split"] == "validation"
    assert (
        text_of(page, "#evaluation-split") == f"on the validation split, {evaluation['rows']} rows"
    )
    shown = facts(page, "#evaluation-facts")
    assert shown["Accuracy"] == f"{100 * evaluation['accuracy']:.1f}".rstrip("0").rstrip(".") + "%"
    cells = page.locator("#confusion-matrix tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.querySelectorAll('td')]"
        ".map(td => Number(td.textContent.replaceAll(',', ''))))"
    )
    assert cells == evaluation["confusion_matrix"]
    assert page.locator("#roc-chart canvas").count() == 1
    roc_x, curve, chance = page.evaluate("window.dashboard.rocChart.data")
    assert sorted(x for x, y in zip(roc_x, curve, strict=True) if y is not None) == sorted(
        evaluation["roc_curve"]["fpr"]
    )
    assert [y for y in chance if y is not None] == [0, 1]

    # The form fills from a stored row; its label is shown to check the prediction against.
    stored = api.get(f"/v1/datasets/{trained['dataset']['id']}/rows", params={"offset": 7})
    row = stored.json()["rows"][0]
    page.locator("#row-number").fill("7")
    page.get_by_role("button", name="Fill from this row").click()
    wait_for_text(page, "#row-status", f"Filled from row 7; its label is {row['label']}.")
    for name in FEATURES:
        assert float(page.get_by_label(name, exact=True).input_value()) == row["values"][name]
    from_row = api.post(
        f"/v1/models/{model['id']}/predictions", json={"records": [row["values"]]}
    ).json()["predictions"][0]
    page.get_by_role("button", name="Predict").click()
    wait_for_text(page, "#predicted-label", str(from_row["label"]))

    body = page.inner_text("body")
    assert "NaN" not in body
    assert "undefined" not in body
    assert page.locator("#sweeps-card").is_visible()
    path = screenshot(page, "dashboard")
    if os.environ.get("UPDATE_README_IMAGES") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_IMAGE)
    assert_stayed_home(page)


@pytest.mark.slow
def test_page_asks_for_an_api_key_when_the_service_answers_401(page, service):
    authorizations = []

    def unauthorized(route, request):
        authorizations.append(request.headers.get("authorization"))
        route.fulfill(
            status=401,
            content_type="application/problem+json",
            headers={"WWW-Authenticate": "Bearer"},
            body=json.dumps(
                {
                    "type": "about:blank",
                    "title": "Unauthorized",
                    "status": 401,
                    "detail": "Authorization: a Bearer API key is required",
                }
            ),
        )

    page.route("**/v1/**", unauthorized)
    page.goto(f"{service.url}/")

    page.locator("#auth").wait_for(state="visible")
    assert text_of(page, "#auth h2") == "This service needs an API key"
    assert authorizations  # the page asked, without a key
    assert set(authorizations) == {None}
    page.get_by_label("API key", exact=True).fill("test-key")
    page.get_by_role("button", name="Use this key").click()
    page.wait_for_function(
        "() => document.querySelector('#auth-message').textContent.includes('refused')"
    )

    screenshot(page, "dashboard-api-key")
    assert "Bearer test-key" in authorizations
    assert page.evaluate("localStorage.getItem('backprop.apiKey')") == "test-key"
    assert page.outside_requests == []
    # The 401 answers themselves are logged by Chromium; nothing else may be.
    assert [e for e in page.console_errors if not e.startswith(FAILED_TO_LOAD_401)] == []
