"""Real tables on the dashboard (issue 12): a dataset's columns, a prediction form that takes
numbers, levels and missing cells and fills itself from a pasted CSV row, and the warnings
of jobs and predictions.

The data is real: palmerpenguins' table (text categories, empty cells) uploaded through the
API of the live service, and the blobs of test_dashboard for an all-numeric model.
"""

from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot
from tests.browser.helpers import (
    FEATURES,
    assert_stayed_home,
    blobs_csv,
    facts,
    submit,
    text_of,
    wait_for_job,
)

LOGISTIC = {"type": "logistic_regression"}
SHORT = {"optimizer": "gd", "learning_rate": 0.5, "epochs": 60, "early_stopping": None}
SCHEMA_HEADER = ["Column", "Role", "Type", "Kind", "Missing", "Distinct", "Values"]


def upload(api: httpx.Client, name: str, csv: bytes, label: str) -> dict[str, Any]:
    response = api.post(
        "/v1/datasets",
        params={"name": name, "label": label},
        files={"file": (f"{name}.csv", csv, "text/csv")},
    )
    assert response.status_code == 201, response.text
    return response.json()


def train(api: httpx.Client, dataset: dict[str, Any]) -> dict[str, Any]:
    """A short logistic regression that succeeded, with its model."""
    job = submit(api, dataset["id"], LOGISTIC, SHORT)
    job = wait_for_job(api, job["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    return {
        "dataset": dataset,
        "job": job,
        "model": api.get(f"/v1/models/{job['model_id']}").json(),
    }


@pytest.fixture(scope="module")
def blobs(api) -> dict[str, Any]:
    return train(api, upload(api, "blobs", blobs_csv(rows=400), "label"))


@pytest.fixture(scope="module")
def penguins(api) -> dict[str, Any]:
    palmerpenguins = pytest.importorskip("palmerpenguins")
    csv = palmerpenguins.load_penguins().to_csv(index=False).encode()
    return train(api, upload(api, "penguins", csv, "species"))


def schema_rows(page) -> dict[str, list[str]]:
    """The columns table as {column: [role, type, kind, missing, distinct, values]}."""
    rows = page.locator("#schema-table tbody tr")
    return {
        row.locator("th").inner_text(): row.locator("td").all_inner_texts() for row in rows.all()
    }


def open_job(page, service, job: dict[str, Any]) -> None:
    page.goto(f"{service.url}/")
    page.click(f'#jobs-table button[data-id="{job["id"]}"]')
    page.locator("#model-section").wait_for(state="visible")


def predict_in_page(page) -> dict[str, Any]:
    """Clicks Predict; returns the record the page sent, once its answer is shown."""
    with page.expect_response("**/predictions") as answer:
        page.get_by_role("button", name="Predict").click()
    page.locator("#predicted-label").wait_for()
    return answer.value.request.post_data_json["records"][0]


# A dataset's columns


def test_dataset_row_opens_its_columns_from_the_keyboard(page, service, blobs):
    dataset = blobs["dataset"]
    page.goto(f"{service.url}/")
    button = page.locator(f'#datasets-table button[data-id="{dataset["id"]}"]')
    button.focus()
    page.keyboard.press("Enter")
    page.locator("#dataset-detail").wait_for(state="visible")

    assert button.get_attribute("aria-current") == "true"
    assert page.url.endswith(f"#dataset={dataset['id']}")
    assert text_of(page, "#dataset-name") == "blobs"
    assert page.locator("#schema-table thead th").all_text_contents()[:6] == SCHEMA_HEADER[:6]
    rows = schema_rows(page)
    assert list(rows) == [*FEATURES, "label"]
    assert [cells[:2] for cells in rows.values()] == [["feature", "number"]] * 4 + [
        ["label", "integer"]
    ]
    assert page.locator("#job-detail").is_hidden()

    page.reload()  # the address names the dataset
    page.locator("#dataset-detail").wait_for(state="visible")
    assert list(schema_rows(page)) == [*FEATURES, "label"]
    assert_stayed_home(page)


def test_columns_of_a_dataset_from_before_summaries_show_dashes(page, service, api, blobs):
    """Schema entries with name, type and role only (or the new fields null): — for the rest."""
    dataset = api.get(f"/v1/datasets/{blobs['dataset']['id']}").json()
    old = dict(
        dataset, schema=[{k: c[k] for k in ("name", "type", "role")} for c in dataset["schema"]]
    )
    old.pop("warnings", None)
    nulls = ("kind", "missing", "distinct", "levels", "top_levels", "min", "max", "mean", "warning")
    old["schema"][0] |= dict.fromkeys(nulls)
    page.route(f"**/v1/datasets/{dataset['id']}", lambda route: route.fulfill(json=old))

    page.goto(f"{service.url}/#dataset={dataset['id']}")
    page.locator("#dataset-detail").wait_for(state="visible")

    rows = schema_rows(page)
    assert rows["x1"] == ["feature", "number", "—", "—", "—", "—"]
    assert rows["label"] == ["label", "integer", "—", "—", "—", "—"]
    assert page.locator("#dataset-warnings").is_hidden()
    assert "undefined" not in page.inner_text("body")
    assert_stayed_home(page)


def test_penguins_columns_show_levels_missing_cells_and_ranges(page, service, penguins):
    dataset = penguins["dataset"]
    page.goto(f"{service.url}/")
    page.get_by_role("button", name="Show the columns of dataset penguins").click()
    page.locator("#dataset-detail").wait_for(state="visible")

    rows = schema_rows(page)
    assert list(rows) == [column["name"] for column in dataset["schema"]]
    assert rows["island"] == [
        "feature",
        "string",
        "categorical",
        "0",
        "3",
        "Biscoe 168 · Dream 124 · Torgersen 52",
    ]
    assert rows["sex"][2:5] == ["categorical", "11 (3.2%)", "2"]
    assert rows["sex"][5] in ("male 168 · female 165", "female 165 · male 168")
    assert rows["bill_length_mm"][2:4] == ["numeric", "2 (0.6%)"]
    assert rows["bill_length_mm"][5] == "32.1 / 43.92 / 59.6"  # min / mean / max
    assert rows["body_mass_g"][5] == "2700 / 4202 / 6300"
    assert rows["year"][2:] == ["numeric", "0", "3", "2007 / 2008 / 2009"]
    assert rows["species"][0] == "label"
    assert facts(page, "#dataset-facts")["Features"] == "7"
    assert facts(page, "#dataset-facts")["Classes"] == "Adelie: 152 · Chinstrap: 68 · Gentoo: 124"
    screenshot(page, "dashboard-dataset-columns")
    assert_stayed_home(page)


# The prediction form


def test_empty_number_box_is_sent_as_a_missing_cell(page, service, api, blobs):
    record = {"x1": 1.5, "x2": None, "x3": 0.25, "x4": 2.0}
    expected = api.post(
        f"/v1/models/{blobs['model']['id']}/predictions", json={"records": [record]}
    )
    assert expected.status_code == 200, expected.text
    open_job(page, service, blobs["job"])

    boxes = page.locator("#predict-inputs input")
    assert boxes.count() == 4
    assert all(box.get_attribute("placeholder") == "empty = missing" for box in boxes.all())
    assert all(box.get_attribute("required") is None for box in boxes.all())
    for name, value in record.items():
        if value is not None:
            page.get_by_label(name, exact=True).fill(str(value))

    assert predict_in_page(page) == record
    assert text_of(page, "#predicted-label") == str(expected.json()["predictions"][0]["label"])
    assert page.locator("#prediction-warnings").count() == 0
    assert_stayed_home(page)


def test_csv_parser_reads_quotes_empty_cells_and_tabs(page, service):
    page.goto(f"{service.url}/")
    cases = {
        "a,b,c\n1,,3": [["a", "b", "c"], ["1", "", "3"]],
        '"x, y","say ""hi""", z \r\n': [["x, y", 'say "hi"', "z"]],
        '" padded ",': [[" padded ", ""]],
        '"two\nlines",2': [["two\nlines", "2"]],
        "a\tb\n1\t\t": [["a", "b"], ["1", "", ""]],
        "\n\n1,2\n\n": [["1", "2"]],
        ",,": [["", "", ""]],
        "": [],
    }
    for text, rows in cases.items():
        assert page.evaluate("(text) => parseCsv(text)", text) == rows, text
    unclosed = page.evaluate(
        "() => { try { parseCsv('1,\"open'); } catch (error) { return error.message; } }"
    )
    assert unclosed == 'A quoted cell is not closed: a " is missing.'

    # A boolean column's levels are "false" and "true": a file's TRUE is "true".
    settings = page.evaluate(
        """() => {
            const flag = levelSelect({ name: "flag", levels: ["true", "false"] }, "t");
            const size = numberBox({ name: "size" }, "n");
            return [controlValue(flag, "TRUE"), controlValue(flag, "maybe"),
                controlValue(flag, "NA"), controlValue(size, " 2.50"),
                [...flag.options].map((o) => o.textContent)];
        }"""
    )
    assert settings == [
        {"value": "true"},
        {"unseen": "maybe"},
        {"missing": True},
        {"value": "2.5"},
        ["(missing)", "false", "true"],
    ]
    assert_stayed_home(page)


def fill_from_csv(page, text: str) -> str:
    page.get_by_label("Fill from a CSV row").fill(text)
    page.get_by_role("button", name="Fill the form").click()
    return text_of(page, "#csv-status")


def form_values(page) -> list[str]:
    return page.locator("#predict-inputs [data-kind]").evaluate_all("(cs) => cs.map(c => c.value)")


def test_pasted_csv_row_fills_the_form_by_header_or_by_order(page, service, blobs):
    open_job(page, service, blobs["job"])

    status = fill_from_csv(page, 'label,x4,x2,x1,x3\n1,"4.5",NA,1e-1, 3 ')
    assert status == "Filled 4 columns, 1 missing, skipped label."
    assert form_values(page) == ["0.1", "", "3", "4.5"]
    assert predict_in_page(page) == {"x1": 0.1, "x2": None, "x3": 3, "x4": 4.5}

    assert fill_from_csv(page, "1,2,,4") == "Filled 4 columns, 1 missing."
    assert form_values(page) == ["1", "2", "", "4"]

    refusals = {
        "1,2": "A row alone needs 4 cells, in this order: x1, x2, x3, x4. It has 2; "
        "or paste the header line above it.",
        "x1,x2,x3,x4": "That is the header line: paste a row under it.",
        "1,abc,3,4": 'x2: "abc" is not a number',
        "x1,x2,x9,x4\n1,2,3,4": "The header line has no column x3.",
        "x1,x2\n1,2,3": "The header line has 2 cells, the row 3.",
        "1,2,3,4\n5,6,7,8\n9,10,11,12": "Found 3 lines: paste one row, alone or under its header "
        "line.",
    }
    for text, message in refusals.items():
        assert fill_from_csv(page, text) == message, text
        assert form_values(page) == ["1", "2", "", "4"]  # a refused paste changes nothing
    assert page.locator("#csv-status.error-text").count() == 1
    assert_stayed_home(page)


def test_penguins_form_has_level_lists_and_predicts_with_missing_cells(
    page, service, api, penguins
):
    model = penguins["model"]
    open_job(page, service, penguins["job"])

    island = page.get_by_label("island", exact=True)
    assert island.evaluate("(s) => s.tagName") == "SELECT"
    assert island.locator("option").all_inner_texts() == [
        "(missing)",
        "Biscoe",
        "Dream",
        "Torgersen",
    ]
    sex = page.get_by_label("sex", exact=True)
    assert sex.locator("option").all_inner_texts()[0] == "(missing)"
    island.select_option("Dream")
    sex.select_option("female")
    numbers = {"bill_depth_mm": 18.5, "flipper_length_mm": 190, "body_mass_g": 3600, "year": 2008}
    for name, value in numbers.items():
        page.get_by_label(name, exact=True).fill(str(value))
    # bill_length_mm stays empty: a missing cell, filled as in training.

    sent = predict_in_page(page)
    assert sent["island"] == "Dream"
    assert sent["sex"] == "female"
    assert sent["bill_length_mm"] is None
    expected = api.post(f"/v1/models/{model['id']}/predictions", json={"records": [sent]}).json()
    label = expected["predictions"][0]["label"]
    assert label in ("Adelie", "Chinstrap", "Gentoo")
    assert text_of(page, "#predicted-label") == label
    assert page.locator("#prediction-warnings").count() == 0
    screenshot(page, "dashboard-penguins-prediction")

    # A pasted level the model never saw is kept as it was pasted; the service says so.
    header = ",".join(model["feature_names"])
    row = {"island": "Atlantis", "bill_length_mm": "", "sex": "", **numbers}
    status = fill_from_csv(
        page, f"{header}\n" + ",".join(str(row[n]) for n in model["feature_names"])
    )
    assert status == "Filled 7 columns, 2 missing, 1 not seen in training."
    assert (
        island.evaluate("(s) => s.selectedOptions[0].textContent")
        == "Atlantis (not seen in training)"
    )
    sent = predict_in_page(page)
    assert sent["island"] == "Atlantis"
    assert sent["sex"] is None
    assert page.locator("#prediction-warnings li").all_inner_texts() == [
        'column "island": 1 value never seen in training (encoded as all zeros)'
    ]
    assert_stayed_home(page)


# Warnings of a dataset and its jobs


def test_left_out_column_warns_on_its_dataset_and_on_the_job_trained_on_it(page, service, api):
    palmerpenguins = pytest.importorskip("palmerpenguins")
    table = palmerpenguins.load_penguins()
    csv = table.to_csv(index=True, index_label="rownames").encode()  # 0, 1, 2, ...: row numbers
    trained = train(api, upload(api, "penguins-numbered", csv, "species"))
    dataset, job = trained["dataset"], trained["job"]
    assert job["warnings"]  # the service's own words, shown as they come
    (column,) = [column for column in dataset["schema"] if column["name"] == "rownames"]
    assert column["role"] == "ignored"

    open_job(page, service, job)
    assert page.locator("#job-warnings li").all_inner_texts() == job["warnings"]
    labels = page.locator("#predict-inputs label").all_inner_texts()
    assert labels == trained["model"]["feature_names"]
    assert "rownames" not in labels

    page.locator("#job-facts").get_by_role("button", name="Show dataset penguins-numbered").click()
    page.locator("#dataset-detail").wait_for(state="visible")
    assert page.locator("#dataset-warnings li").all_inner_texts() == dataset["warnings"]
    assert facts(page, "#dataset-facts")["Features"] == "7, 1 left out"
    rownames = schema_rows(page)["rownames"]
    assert rownames[:3] == ["ignored", "integer", "numeric"]
    assert rownames[5] == f"0 / 171.5 / 343\n{column['warning']}"
    assert page.locator("#schema-table tr.ignored th").all_inner_texts() == ["rownames"]
    screenshot(page, "dashboard-dataset-warnings")
    assert_stayed_home(page)


def test_a_job_without_warnings_lists_none(page, service, blobs):
    open_job(page, service, blobs["job"])
    assert blobs["job"]["warnings"] == []
    assert page.locator("#job-warnings").is_hidden()
    assert page.locator("#job-warnings li").count() == 0
    assert_stayed_home(page)
