"""The dashboard's model section names a fine-tuned model's parent, and the link opens it."""

import pytest

from tests.browser.helpers import assert_stayed_home, blobs_csv, facts, wait_for_job, wait_for_text

NETWORK = {"type": "two_layer_network", "hidden_units": 4, "activation": "tanh"}


@pytest.fixture(scope="module")
def parent_and_child(api) -> tuple[dict, dict]:
    """(parent job, child job): the child fine-tunes the parent's model on other rows."""
    ids = []
    for seed in (0, 1):
        upload = api.post(
            "/v1/datasets",
            params={"name": f"blobs-{seed}", "label": "label"},
            files={"file": ("blobs.csv", blobs_csv(rows=300, seed=seed), "text/csv")},
        )
        assert upload.status_code == 201, upload.text
        ids.append(upload.json()["id"])
    body = {"dataset_id": ids[0], "model": NETWORK, "training": {"epochs": 20}}
    parent = api.post("/v1/jobs", json=body).json()
    parent = wait_for_job(api, parent["id"], lambda j: j["status"] == "succeeded")
    body = {"dataset_id": ids[1], "training": {"epochs": 5}}
    child = api.post("/v1/jobs", json={**body, "warm_start": {"model_id": parent["model_id"]}})
    assert child.status_code == 202, child.text
    child = wait_for_job(api, child.json()["id"], lambda j: j["status"] == "succeeded")
    return parent, child


@pytest.mark.slow
def test_a_fine_tuned_models_parent_is_a_link_to_the_parents_page(page, service, parent_and_child):
    parent, child = parent_and_child
    page.goto(f"{service.url}/")
    page.click(f'#jobs-table button[data-id="{child["id"]}"]')
    page.locator("#model-section").wait_for(state="visible")
    assert facts(page, "#diagnostics")["Fine-tuned from"] == parent["model_id"][:8]

    page.click("#parent-model")
    wait_for_text(page, "#job-id", parent["id"][:8])
    page.locator("#model-section").wait_for(state="visible")
    page.wait_for_function("() => !document.querySelector('#parent-model')")
    assert "Fine-tuned from" not in facts(page, "#diagnostics")  # trained from fresh weights
    assert page.url.endswith(f"#job={parent['id']}")
    assert_stayed_home(page)
