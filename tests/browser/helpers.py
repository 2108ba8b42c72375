"""What the browser tests share: the blobs data set, jobs driven through the API, and
reading the page (text, <dl> facts, waiting for a text, nothing loaded from elsewhere)."""

import time
from typing import Any

import httpx
import numpy as np

FEATURES = ["x1", "x2", "x3", "x4"]


def blobs_csv(rows: int = 2000, seed: int = 0) -> bytes:
    """Two Gaussian blobs in 4 features, labels 0 and 1: easy to learn, quick to train."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    features = rng.normal(size=(rows, len(FEATURES))) + 1.5 * labels[:, None]
    lines = [",".join([*FEATURES, "label"])]
    lines += [
        ",".join([*(f"{value:.5f}" for value in row), str(label)])
        for row, label in zip(features, labels, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def wait_for_job(api: httpx.Client, job_id: str, done, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if done(job):
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout} s")


def submit(api: httpx.Client, dataset_id: str, model: dict, training: dict) -> dict[str, Any]:
    response = api.post(
        "/v1/jobs", json={"dataset_id": dataset_id, "model": model, "training": training}
    )
    assert response.status_code == 202, response.text
    return response.json()


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def facts(page, selector: str) -> dict[str, str]:
    """A <dl> as {dt: dd}."""
    return page.evaluate(
        """(selector) => Object.fromEntries([...document.querySelectorAll(`${selector} dt`)]
            .map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))""",
        selector,
    )


def wait_for_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent.trim() === text",
        arg=[selector, text],
    )


def assert_stayed_home(page) -> None:
    assert page.outside_requests == []
    assert page.console_errors == []
